//! Parties of a call: `participantInfo` (caller/answerer), `invitationParticipantInfo` (who is
//! called, redirected to, invited, transferred to) and the roster's `participant` with its
//! `mediaStream`s, `recordingInfo` and `removedState`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::enums::{EndpointType, MediaDirection, Modality, RecordingStatus};
use super::identity::IdentitySet;
use super::ids::{CallId, ParticipantId};
use super::lenient::{self, ODataTag, odata};

/// `participantInfo`: identity and location of a party (`call.source`, `answeredBy`, roster
/// `participant.info`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantInfo {
    /// Written as `#microsoft.graph.participantInfo`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::participant_info"
    )]
    pub odata_type: ODataTag,
    /// Who the party is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentitySet>,
    /// Kind of endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_type: Option<EndpointType>,
    /// Home region (`amer`, `westus`, `emea`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Language (`en-US`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_id: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    /// Participant id in the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<ParticipantId>,
    /// Beta: client platform id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_id: Option<String>,
    /// Id echoed by payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ParticipantInfo {
    /// A participant info holding only an identity.
    pub fn new(identity: IdentitySet) -> Self {
        Self {
            identity: Some(identity),
            ..Self::default()
        }
    }
}

/// `invitationParticipantInfo`: a party to call, redirect to, invite or transfer to.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationParticipantInfo {
    /// Written as `#microsoft.graph.invitationParticipantInfo`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::invitation_participant_info"
    )]
    pub odata_type: ODataTag,
    /// Who to invite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentitySet>,
    /// The call the target currently belongs to (consultative transfer, invite-replace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces_call_id: Option<CallId>,
    /// Participant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<ParticipantId>,
    /// Hide from the roster.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub hidden: Option<bool>,
    /// Keep out of the default audio routing group.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub remove_from_default_audio_routing_group: Option<bool>,
    /// Beta/payloads: kind of endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_type: Option<EndpointType>,
    /// Id echoed by payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Region echoed by payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Language echoed by payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_id: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl InvitationParticipantInfo {
    /// An invitation of `identity`.
    pub fn new(identity: IdentitySet) -> Self {
        Self {
            identity: Some(identity),
            ..Self::default()
        }
    }
}

/// `participant`: one roster entry (participants notifications, `GET …/participants`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    /// Written as `#microsoft.graph.participant`.
    #[serde(rename = "@odata.type", default, serialize_with = "odata::participant")]
    pub odata_type: ODataTag,
    /// Participant id (may be null right after an invite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ParticipantId>,
    /// Identity, endpoint type, region, language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<ParticipantInfo>,
    /// The participant's media streams (with their media source ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_streams: Option<Vec<MediaStream>>,
    /// Muted by the client or the server.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_muted: Option<bool>,
    /// Waiting in the lobby.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_in_lobby: Option<bool>,
    /// Blob the participant put into the roster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Recording state of this participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_info: Option<RecordingInfo>,
    /// Why the participant left the roster (delta roster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_state: Option<RemovedState>,
    /// `onlineMeetingRestricted`: why media is restricted (kept raw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted_experience: Option<Value>,
    /// Roster version in which this participant last changed (delta roster).
    #[serde(
        default,
        deserialize_with = "lenient::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub roster_sequence_number: Option<i64>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `mediaStream`: one stream of a roster participant.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaStream {
    /// Written as `#microsoft.graph.mediaStream`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::media_stream"
    )]
    pub odata_type: ODataTag,
    /// Audio, video, screen sharing, data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<Modality>,
    /// Media source id (MSI) used for unmixed audio, dominant speaker, video subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// Direction of the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<MediaDirection>,
    /// Muted by the server.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub server_muted: Option<bool>,
    /// Stream label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `recordingInfo`: who started recording a participant and its status.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingInfo {
    /// Written as `#microsoft.graph.recordingInfo`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::recording_info"
    )]
    pub odata_type: ODataTag,
    /// Who initiated the recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<IdentitySet>,
    /// Recording status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_status: Option<RecordingStatus>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `removedState`: why a participant left the roster.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedState {
    /// Written as `#microsoft.graph.removedState`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::removed_state"
    )]
    pub odata_type: ODataTag,
    /// Reason text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `deltaParticipants`: participants changed since the previous roster update (delta roster).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaParticipants {
    /// Written as `#microsoft.graph.deltaParticipants`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::delta_participants"
    )]
    pub odata_type: ODataTag,
    /// Roster version of this update.
    #[serde(
        default,
        deserialize_with = "lenient::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub sequence_number: Option<i64>,
    /// Changed participants; removed ones carry `removedState`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<Participant>>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::identity::IdentityKind;

    #[test]
    fn roster_participant_reads_streams_and_keeps_undocumented_fields() {
        let p: Participant = serde_json::from_str(
            r##"{"@odata.type":"#microsoft.graph.participant","id":"p1",
                "info":{"identity":{"user":{"id":"u1"}},"endpointType":"Default"},
                "mediaStreams":[{"mediaType":"Audio","sourceId":"1","direction":"SendReceive","serverMuted":false}],
                "isMuted":"false","isInLobby":false,"rosterSequenceNumber":"7",
                "isIdentityAnonymized":false,"replacementLink":null}"##,
        )
        .unwrap();
        assert_eq!(p.id.as_ref().unwrap(), "p1");
        let stream = &p.media_streams.as_ref().unwrap()[0];
        assert_eq!(stream.media_type, Some(Modality::Audio));
        assert_eq!(stream.direction, Some(MediaDirection::SendReceive));
        assert_eq!(p.is_muted, Some(false));
        assert_eq!(p.roster_sequence_number, Some(7));
        assert!(p.extra.contains_key("isIdentityAnonymized"));
        let kind = p
            .info
            .as_ref()
            .unwrap()
            .identity
            .as_ref()
            .unwrap()
            .primary()
            .unwrap()
            .0;
        assert_eq!(kind, IdentityKind::User);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["mediaStreams"][0]["direction"], "sendReceive");
        assert_eq!(json["rosterSequenceNumber"], 7);
    }

    #[test]
    fn invitation_writes_odata_types_on_every_level() {
        let target = InvitationParticipantInfo::new(IdentitySet::phone("+12345678901"));
        let json = serde_json::to_value(&target).unwrap();
        assert_eq!(
            json["@odata.type"],
            "#microsoft.graph.invitationParticipantInfo"
        );
        assert_eq!(
            json["identity"]["@odata.type"],
            "#microsoft.graph.identitySet"
        );
        assert_eq!(
            json["identity"]["phone"]["@odata.type"],
            "#microsoft.graph.identity"
        );
        assert_eq!(json["identity"]["phone"]["id"], "+12345678901");
    }
}
