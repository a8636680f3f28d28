//! Policy-based-recording bot grouping (§3.8): the `participantJoiningNotification` offered to a
//! bot that answered with `participantCapacity`, and the `participantJoiningResponse` the bot
//! returns in its HTTP response (accept, reject with a reason, or invite a new bot instance).

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::call::Call;
use super::enums::RejectReason;
use super::lenient::odata_is;

/// `#microsoft.graph.participantJoiningNotification`: `{ "call": call }`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantJoiningNotification {
    /// `@odata.type` as read (Graph writes `#microsoft.graph.participantJoiningNotification`).
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// The joining participant's call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<Call>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `participantJoiningResponse`, polymorphic by `@odata.type`.
#[derive(Clone, Debug, PartialEq)]
pub enum ParticipantJoiningResponse {
    /// `#microsoft.graph.acceptJoinResponse` (no properties).
    Accept,
    /// `#microsoft.graph.rejectJoinResponse` with a reason.
    Reject {
        /// `none`, `busy`, `forbidden`.
        reason: Option<RejectReason>,
    },
    /// `#microsoft.graph.inviteNewBotResponse`: resend as an incoming call to `invite_uri`.
    InviteNewBot {
        /// Where to send the incoming call.
        invite_uri: Option<String>,
    },
    /// Another subtype, kept as received.
    Other(Map<String, Value>),
}

const ACCEPT: &str = "#microsoft.graph.acceptJoinResponse";
const REJECT: &str = "#microsoft.graph.rejectJoinResponse";
const INVITE_NEW_BOT: &str = "#microsoft.graph.inviteNewBotResponse";

impl Serialize for ParticipantJoiningResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = Map::new();
        match self {
            Self::Accept => {
                map.insert("@odata.type".into(), ACCEPT.into());
            }
            Self::Reject { reason } => {
                map.insert("@odata.type".into(), REJECT.into());
                if let Some(r) = reason {
                    map.insert("reason".into(), r.as_str().into());
                }
            }
            Self::InviteNewBot { invite_uri } => {
                map.insert("@odata.type".into(), INVITE_NEW_BOT.into());
                if let Some(u) = invite_uri {
                    map.insert("inviteUri".into(), u.as_str().into());
                }
            }
            Self::Other(m) => return m.serialize(s),
        }
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ParticipantJoiningResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        let odata_type = map.get("@odata.type").and_then(Value::as_str).unwrap_or("");
        let string = |key: &str| -> Result<Option<String>, D::Error> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(de::Error::custom(format!("{key} must be a string"))),
            }
        };
        if odata_is(odata_type, "acceptJoinResponse") {
            Ok(Self::Accept)
        } else if odata_is(odata_type, "rejectJoinResponse") {
            Ok(Self::Reject {
                reason: string("reason")?.map(|r| RejectReason::parse(&r)),
            })
        } else if odata_is(odata_type, "inviteNewBotResponse") {
            Ok(Self::InviteNewBot {
                invite_uri: string("inviteUri")?,
            })
        } else {
            Ok(Self::Other(map))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_written_as_documented() {
        let cases = [
            (
                ParticipantJoiningResponse::Accept,
                serde_json::json!({"@odata.type": ACCEPT}),
            ),
            (
                ParticipantJoiningResponse::Reject {
                    reason: Some(RejectReason::Busy),
                },
                serde_json::json!({"@odata.type": REJECT, "reason": "busy"}),
            ),
            (
                ParticipantJoiningResponse::InviteNewBot {
                    invite_uri: Some("https://vm-2/api".into()),
                },
                serde_json::json!({"@odata.type": INVITE_NEW_BOT, "inviteUri": "https://vm-2/api"}),
            ),
        ];
        for (response, json) in cases {
            assert_eq!(serde_json::to_value(&response).unwrap(), json);
            let back: ParticipantJoiningResponse = serde_json::from_value(json).unwrap();
            assert_eq!(back, response);
        }
        let r: ParticipantJoiningResponse = serde_json::from_str(
            r##"{"@odata.type":"#microsoft.graph.rejectJoinResponse","reason":"Forbidden"}"##,
        )
        .unwrap();
        assert_eq!(
            r,
            ParticipantJoiningResponse::Reject {
                reason: Some(RejectReason::Forbidden)
            }
        );
        assert!(
            serde_json::from_str::<ParticipantJoiningResponse>(
                r##"{"@odata.type":"#microsoft.graph.rejectJoinResponse","reason":1}"##
            )
            .is_err()
        );
    }

    #[test]
    fn joining_notification_carries_a_call() {
        let n: ParticipantJoiningNotification = serde_json::from_str(
            r##"{"@odata.type":"#microsoft.graph.participantJoiningNotification","call":{"@odata.type":"#microsoft.graph.call","id":"c","applicationMetadata":{"botData":{"inviteReasons":["PolicyBasedRecording"]}}}}"##,
        )
        .unwrap();
        assert!(n.call.unwrap().is_policy_based_recording());
    }
}
