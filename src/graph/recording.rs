//! Policy-based recording (PBR) data carried by an incoming call: `applicationMetadata` and its
//! `botData` (why the recorder bot was invited, whom it records, the other recorders).

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::ParticipantId;

/// The invite reason marking a compliance-recording invitation (5 s answer window).
pub const POLICY_BASED_RECORDING: &str = "PolicyBasedRecording";

/// `call.applicationMetadata`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationMetadata {
    /// PBR join data. Also read when Graph sends it as a JSON string.
    #[serde(
        default,
        deserialize_with = "bot_data_object_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub bot_data: Option<BotData>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `applicationMetadata.botData` of a policy-based-recording invitation.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BotData {
    /// Where media is hosted (e.g. `USEA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_hosted_region: Option<String>,
    /// The recorded user's side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<BotDataUser>,
    /// The other side of the recorded call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_side_user: Option<BotDataUser>,
    /// Why the bot was invited (`PolicyBasedRecording`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_reasons: Option<Vec<String>>,
    /// The recording policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_identifier: Option<String>,
    /// Recorders paired with this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired_recorders: Option<Vec<RecorderInfo>>,
    /// Other recorders in the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_recorders: Option<Vec<RecorderInfo>>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl BotData {
    /// `true` when `inviteReasons` contains `PolicyBasedRecording` (case-insensitive).
    pub fn is_policy_based_recording(&self) -> bool {
        self.invite_reasons
            .iter()
            .flatten()
            .any(|r| r.eq_ignore_ascii_case(POLICY_BASED_RECORDING))
    }
}

/// `botData.user` / `botData.otherSideUser`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BotDataUser {
    /// User id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Participant id in the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<ParticipantId>,
    /// Tenant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Delegate: on whose behalf the user acts (`{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<Value>,
    /// `callee` or `caller`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participation_method: Option<String>,
    /// Client location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_location: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An entry of `pairedRecorders` / `otherRecorders`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecorderInfo {
    /// Recorder (app) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its participant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<ParticipantId>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Reads `botData` as an object, or as a string holding a JSON object.
fn bot_data_object_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BotData>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbr_reason_is_matched_case_insensitively() {
        let m: ApplicationMetadata = serde_json::from_str(
            r##"{"botData":{"inviteReasons":["policybasedrecording"],"mediaHostedRegion":"USEA"}}"##,
        )
        .unwrap();
        assert!(m.bot_data.as_ref().unwrap().is_policy_based_recording());
        assert!(!BotData::default().is_policy_based_recording());
    }

    #[test]
    fn bot_data_as_json_string_is_read() {
        let m: ApplicationMetadata = serde_json::from_str(
            r##"{"botData":"{\"inviteReasons\":[\"PolicyBasedRecording\"]}"}"##,
        )
        .unwrap();
        assert!(m.bot_data.unwrap().is_policy_based_recording());
        assert!(
            serde_json::from_str::<ApplicationMetadata>(r##"{"botData":"{not json"}"##).is_err()
        );
    }
}
