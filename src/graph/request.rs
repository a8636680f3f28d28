//! Request bodies the bot POSTs to Graph: answer, reject, redirect (§1–§2), and the in-call
//! transfer, invite and updateRecordingStatus bodies (§4.2–§4.3).
//!
//! Required properties are still `Option`s so the emulator can read an incomplete request and
//! answer it with Graph's 400 instead of a parse failure.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::call_options::CallOptions;
use super::enums::{Modality, RecordingStatus, RejectReason, RoutingPolicy, TargetDisposition};
use super::lenient;
use super::media_config::MediaConfig;
use super::participant::{InvitationParticipantInfo, ParticipantInfo};

/// Body of `POST /communications/calls/{id}/answer`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerRequest {
    /// Per-call webhook for later notifications (https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_uri: Option<String>,
    /// Required: `audio`, `video`, `videoBasedScreenSharing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_modalities: Option<Vec<Modality>>,
    /// Required: app-hosted or service-hosted media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_config: Option<MediaConfig>,
    /// `incomingCallOptions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_options: Option<CallOptions>,
    /// PBR bot grouping capacity.
    #[serde(
        default,
        deserialize_with = "lenient::opt_i32",
        skip_serializing_if = "Option::is_none"
    )]
    pub participant_capacity: Option<i32>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AnswerRequest {
    /// An audio-only app-hosted answer carrying `blob`.
    pub fn app_hosted_audio(blob: impl Into<String>) -> Self {
        Self {
            accepted_modalities: Some(vec![Modality::Audio]),
            media_config: Some(MediaConfig::app_hosted(blob)),
            ..Self::default()
        }
    }
}

/// Body of `POST /communications/calls/{id}/reject`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectRequest {
    /// `none`, `busy`, `forbidden`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    /// Optional https URI for later notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_uri: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RejectRequest {
    /// A rejection with `reason`.
    pub fn new(reason: RejectReason) -> Self {
        Self {
            reason: Some(reason),
            ..Self::default()
        }
    }
}

/// Body of `POST /communications/calls/{id}/redirect`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectRequest {
    /// One target = forward; several = simultaneous ring (max 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<InvitationParticipantInfo>>,
    /// Seconds, 15–90.
    #[serde(
        default,
        deserialize_with = "lenient::opt_i32",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<i32>,
    /// Optional https URI for later notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_uri: Option<String>,
    /// Beta: hide the callee behind the bot identity.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub mask_callee: Option<bool>,
    /// Beta: hide the caller behind the bot identity.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub mask_caller: Option<bool>,
    /// Beta, deprecated: `default`, `simultaneousRing`, `forward`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_disposition: Option<TargetDisposition>,
    /// Seen in the simulring example (`disableForwarding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_policies: Option<Vec<RoutingPolicy>>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RedirectRequest {
    /// A redirect to `targets` with a timeout in seconds.
    pub fn new(targets: Vec<InvitationParticipantInfo>, timeout: Option<i32>) -> Self {
        Self {
            targets: Some(targets),
            timeout,
            ..Self::default()
        }
    }
}

/// Body of `POST /communications/calls/{id}/transfer`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferRequest {
    /// Where to transfer (`replacesCallId` = consultative transfer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_target: Option<InvitationParticipantInfo>,
    /// Who is transferred (required out of group calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferee: Option<ParticipantInfo>,
    /// Echoed in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /communications/calls/{id}/participants/invite`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteParticipantsRequest {
    /// Who to invite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<InvitationParticipantInfo>>,
    /// Echoed in the operation and its notifications (≤ 256 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /communications/calls/{id}/updateRecordingStatus`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRecordingStatusRequest {
    /// Echoed in the operation (≤ 256 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// `notRecording`, `recording`, `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RecordingStatus>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::identity::IdentitySet;

    #[test]
    fn answer_is_written_like_the_docs() {
        let json = serde_json::to_value(AnswerRequest::app_hosted_audio("b")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "acceptedModalities": ["audio"],
                "mediaConfig": {"@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": "b"}
            })
        );
    }

    #[test]
    fn reject_reason_capitalised_is_read() {
        let r: RejectRequest = serde_json::from_str(r##"{"reason":"Busy"}"##).unwrap();
        assert_eq!(r, RejectRequest::new(RejectReason::Busy));
        assert_eq!(serde_json::to_string(&r).unwrap(), r##"{"reason":"busy"}"##);
    }

    #[test]
    fn redirect_tolerates_beta_fields_and_string_timeout() {
        let r: RedirectRequest = serde_json::from_str(
            r##"{"targets":[{"identity":{"phone":{"id":"+1"}}}],"timeout":"30","maskCallee":true,"targetDisposition":"SimultaneousRing","routingPolicies":["disableForwarding"]}"##,
        )
        .unwrap();
        assert_eq!(r.timeout, Some(30));
        assert_eq!(r.mask_callee, Some(true));
        assert_eq!(
            r.target_disposition,
            Some(TargetDisposition::SimultaneousRing)
        );
        let target = &r.targets.as_ref().unwrap()[0];
        assert_eq!(target.identity, Some(IdentitySet::phone("+1")));
    }
}
