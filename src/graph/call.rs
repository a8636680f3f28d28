//! The `call` resource: what an incoming-call notification carries (§3.3), what create-call
//! sends and returns (§4.1), and the small types only a call holds (`callRoute`,
//! `incomingContext`, `toneInfo`, `callMediaState`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::call_options::CallOptions;
use super::enums::{
    CallDirection, CallState, MediaState, Modality, RoutingPolicy, RoutingType, Tone,
};
use super::identity::IdentitySet;
use super::ids::{CallId, ParticipantId};
use super::lenient::{self, ODataTag, odata};
use super::media_config::MediaConfig;
use super::meeting::{ChatInfo, MeetingInfo};
use super::participant::{InvitationParticipantInfo, ParticipantInfo};
use super::recording::{ApplicationMetadata, BotData};
use super::result_info::ResultInfo;

/// `call`. Every property is optional on the wire: minimal state notifications carry only
/// `@odata.type`, `@odata.id`, `@odata.etag` and `state` (the annotations land in `extra`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    /// Written as `#microsoft.graph.call`.
    #[serde(rename = "@odata.type", default, serialize_with = "odata::call")]
    pub odata_type: ODataTag,
    /// Call id (may be absent; then take it from the notification's `resourceUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<CallId>,
    /// Call state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CallState>,
    /// Direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<CallDirection>,
    /// Where notifications of this call go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_uri: Option<String>,
    /// The caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ParticipantInfo>,
    /// Who was called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<InvitationParticipantInfo>>,
    /// Modalities asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_modalities: Option<Vec<Modality>>,
    /// Modalities in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_modalities: Option<Vec<Modality>>,
    /// How the call was retargeted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_routes: Option<Vec<CallRoute>>,
    /// Tenant of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The bot's own participant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_participant_id: Option<ParticipantId>,
    /// Id shared by all legs of the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_chain_id: Option<String>,
    /// Group call / meeting chat thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_info: Option<ChatInfo>,
    /// Group call / meeting join information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_info: Option<MeetingInfo>,
    /// Who triggered the call, who is observed (PBR), on whose behalf, transferor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming_context: Option<IncomingContext>,
    /// PBR `botData` and other application metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_metadata: Option<ApplicationMetadata>,
    /// Media configuration (create call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_config: Option<MediaConfig>,
    /// Call options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_options: Option<CallOptions>,
    /// Outcome (terminated calls, failed transfers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_info: Option<ResultInfo>,
    /// Who answered a redirected call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<ParticipantInfo>,
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A received DTMF tone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tone_info: Option<ToneInfo>,
    /// Media state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_state: Option<CallMediaState>,
    /// Older revision: why the call ended (e.g. `AppTransferred`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_reason: Option<String>,
    /// Ringing timeout of an outgoing call.
    #[serde(
        default,
        deserialize_with = "lenient::opt_i32",
        skip_serializing_if = "Option::is_none"
    )]
    pub ringing_timeout_in_seconds: Option<i32>,
    /// Routing policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_policies: Option<Vec<RoutingPolicy>>,
    /// Transcription state (kept raw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription: Option<Value>,
    /// Meeting capabilities (kept raw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_capability: Option<Value>,
    /// Unknown properties and annotations (`@odata.id`, `@odata.etag`, `@odata.context`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Call {
    /// The PBR `botData`, if any.
    pub fn bot_data(&self) -> Option<&BotData> {
        self.application_metadata.as_ref()?.bot_data.as_ref()
    }

    /// `true` when `botData.inviteReasons` contains `PolicyBasedRecording` (case-insensitive):
    /// such invitations must be answered within 5 s instead of 15 s.
    pub fn is_policy_based_recording(&self) -> bool {
        self.bot_data()
            .is_some_and(BotData::is_policy_based_recording)
    }

    /// `true` for a group call / meeting invitation (carries `chatInfo` or `meetingInfo`).
    pub fn is_meeting(&self) -> bool {
        self.chat_info.is_some() || self.meeting_info.is_some()
    }
}

/// `callRoute`: how a call was retargeted.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRoute {
    /// Written as `#microsoft.graph.callRoute`.
    #[serde(rename = "@odata.type", default, serialize_with = "odata::call_route")]
    pub odata_type: ODataTag,
    /// Originally called identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<IdentitySet>,
    /// Final identity.
    #[serde(default, rename = "final", skip_serializing_if = "Option::is_none")]
    pub final_: Option<IdentitySet>,
    /// `forwarded`, `lookup`, `selfFork`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_type: Option<RoutingType>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `incomingContext`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingContext {
    /// Written as `#microsoft.graph.incomingContext`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::incoming_context"
    )]
    pub odata_type: ODataTag,
    /// Participant that triggered the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_participant_id: Option<ParticipantId>,
    /// Participant under observation (PBR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_participant_id: Option<ParticipantId>,
    /// Delegate scenarios: on whose behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<IdentitySet>,
    /// After a transfer: who transferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferor: Option<IdentitySet>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `toneInfo`: a DTMF tone received (service-hosted media, after subscribeToTone).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToneInfo {
    /// Written as `#microsoft.graph.toneInfo`.
    #[serde(rename = "@odata.type", default, serialize_with = "odata::tone_info")]
    pub odata_type: ODataTag,
    /// Sequence id.
    #[serde(
        default,
        deserialize_with = "lenient::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub sequence_id: Option<i64>,
    /// The tone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tone: Option<Tone>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `callMediaState`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallMediaState {
    /// Written as `#microsoft.graph.callMediaState`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::call_media_state"
    )]
    pub odata_type: ODataTag,
    /// Audio media state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<MediaState>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_state_update_keeps_annotations() {
        let c: Call = serde_json::from_str(
            r##"{"@odata.type":"#microsoft.graph.call","@odata.id":"/communications/calls/x","@odata.etag":"W/\"5445\"","state":"Established"}"##,
        )
        .unwrap();
        assert_eq!(c.state, Some(CallState::Established));
        assert_eq!(c.extra["@odata.etag"], "W/\"5445\"");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["@odata.type"], "#microsoft.graph.call");
        assert_eq!(json["@odata.id"], "/communications/calls/x");
        assert_eq!(json["state"], "established");
    }

    #[test]
    fn pbr_is_detected_from_bot_data() {
        let c: Call = serde_json::from_str(
            r##"{"applicationMetadata":{"botData":{"inviteReasons":["PolicyBasedRecording"]}}}"##,
        )
        .unwrap();
        assert!(c.is_policy_based_recording());
        assert!(!Call::default().is_policy_based_recording());
    }

    #[test]
    fn call_route_final_keyword_field() {
        let r: CallRoute = serde_json::from_str(
            r##"{"original":{"user":{"id":"a"}},"final":{"user":{"id":"b"}},"routingType":"Forwarded"}"##,
        )
        .unwrap();
        assert_eq!(r.routing_type, Some(RoutingType::Forwarded));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["final"]["user"]["id"], "b");
        assert_eq!(json["routingType"], "forwarded");
    }
}
