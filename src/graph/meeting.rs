//! Meetings and group calls: `chatInfo` and the three `meetingInfo` subtypes
//! (`organizerMeetingInfo`, `joinMeetingIdMeetingInfo`, `tokenMeetingInfo`), chosen by
//! `@odata.type` or, when that is missing, by the properties present.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::identity::IdentitySet;
use super::lenient::{self, ODataTag, odata};

/// `chatInfo`: the meeting/group chat thread a call belongs to.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatInfo {
    /// Written as `#microsoft.graph.chatInfo`.
    #[serde(rename = "@odata.type", default, serialize_with = "odata::chat_info")]
    pub odata_type: ODataTag,
    /// Thread id (`19:meeting_…@thread.v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Message id (`"0"` for scheduled meetings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Reply-chain message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_chain_message_id: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `meetingInfo`: how to join a meeting. Polymorphic by `@odata.type`.
#[derive(Clone, Debug, PartialEq)]
pub enum MeetingInfo {
    /// `#microsoft.graph.organizerMeetingInfo` (pair with `chatInfo`).
    Organizer(Box<OrganizerMeetingInfo>),
    /// `#microsoft.graph.joinMeetingIdMeetingInfo`.
    JoinMeetingId(JoinMeetingIdMeetingInfo),
    /// `#microsoft.graph.tokenMeetingInfo` (invitations, PBR).
    Token(TokenMeetingInfo),
    /// Another subtype, kept as received (including its `@odata.type`).
    Other(Map<String, Value>),
}

/// `organizerMeetingInfo`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizerMeetingInfo {
    /// Written as `#microsoft.graph.organizerMeetingInfo`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::organizer_meeting_info"
    )]
    pub odata_type: ODataTag,
    /// The meeting organizer (usually a `user` with `tenantId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer: Option<IdentitySet>,
    /// Beta: let the bot stay without a host.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_conversation_without_host: Option<bool>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `joinMeetingIdMeetingInfo`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinMeetingIdMeetingInfo {
    /// Written as `#microsoft.graph.joinMeetingIdMeetingInfo`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::join_meeting_id_meeting_info"
    )]
    pub odata_type: ODataTag,
    /// The numeric join id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_meeting_id: Option<String>,
    /// Passcode, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `tokenMeetingInfo`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenMeetingInfo {
    /// Written as `#microsoft.graph.tokenMeetingInfo`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::token_meeting_info"
    )]
    pub odata_type: ODataTag,
    /// Signed join token (a JWT); keep it with `chatInfo` to rejoin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Serialize for MeetingInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Organizer(m) => m.serialize(s),
            Self::JoinMeetingId(m) => m.serialize(s),
            Self::Token(m) => m.serialize(s),
            Self::Other(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MeetingInfo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        let odata_type = map.get("@odata.type").and_then(Value::as_str);
        let kind = match odata_type {
            Some(t) if lenient::odata_is(t, "organizerMeetingInfo") => 1,
            Some(t) if lenient::odata_is(t, "joinMeetingIdMeetingInfo") => 2,
            Some(t) if lenient::odata_is(t, "tokenMeetingInfo") => 3,
            Some(_) => 0,
            None if map.contains_key("organizer") => 1,
            None if map.contains_key("joinMeetingId") => 2,
            None if map.contains_key("token") => 3,
            None => 0,
        };
        if kind == 0 {
            return Ok(Self::Other(map));
        }
        let v = Value::Object(map);
        let parsed = match kind {
            1 => serde_json::from_value(v).map(|m| Self::Organizer(Box::new(m))),
            2 => serde_json::from_value(v).map(Self::JoinMeetingId),
            _ => serde_json::from_value(v).map(Self::Token),
        };
        parsed.map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtype_chosen_by_odata_type_or_properties() {
        let m: MeetingInfo = serde_json::from_str(
            r##"{"@odata.type":"#microsoft.graph.tokenMeetingInfo","token":"eyJ"}"##,
        )
        .unwrap();
        assert!(matches!(&m, MeetingInfo::Token(t) if t.token.as_deref() == Some("eyJ")));
        let m: MeetingInfo =
            serde_json::from_str(r##"{"joinMeetingId":"1234567","passcode":"psw123"}"##).unwrap();
        assert!(
            matches!(&m, MeetingInfo::JoinMeetingId(j) if j.passcode.as_deref() == Some("psw123"))
        );
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json["@odata.type"],
            "#microsoft.graph.joinMeetingIdMeetingInfo"
        );
        let m: MeetingInfo = serde_json::from_str(
            r##"{"@odata.type":"#microsoft.graph.organizerMeetingInfo","organizer":{"user":{"id":"o"}},"allowConversationWithoutHost":true}"##,
        )
        .unwrap();
        assert!(
            matches!(&m, MeetingInfo::Organizer(o) if o.allow_conversation_without_host == Some(true))
        );
    }

    #[test]
    fn unknown_subtype_is_kept() {
        let m: MeetingInfo =
            serde_json::from_str(r##"{"@odata.type":"#microsoft.graph.futureMeetingInfo","x":1}"##)
                .unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["@odata.type"], "#microsoft.graph.futureMeetingInfo");
        assert_eq!(json["x"], 1);
    }
}
