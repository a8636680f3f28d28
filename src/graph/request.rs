//! Request bodies the bot POSTs to Graph: answer, reject, redirect (§1–§2), and the in-call
//! transfer, invite and updateRecordingStatus bodies (§4.2–§4.3).
//!
//! Required properties are still `Option`s so the emulator can read an incomplete request and
//! answer it with Graph's 400 instead of a parse failure.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use super::call_options::CallOptions;
use super::enums::{Modality, RecordingStatus, RejectReason, RoutingPolicy, TargetDisposition};
use super::error_body::GraphErrorBody;
use super::identity::IdentitySet;
use super::lenient;
use super::media_config::MediaConfig;
use super::participant::{InvitationParticipantInfo, ParticipantInfo};

/// Most targets a redirect may ring at once.
pub const MAX_REDIRECT_TARGETS: usize = 25;
/// Redirect timeout bounds, in seconds (inclusive).
pub const REDIRECT_TIMEOUT_SECONDS: std::ops::RangeInclusive<i32> = 15..=90;

/// Why a request body breaks the documented rules (Graph answers 400 `invalidRequest`).
#[derive(Clone, Debug, Eq, Error, PartialEq)]
#[non_exhaustive]
pub enum RequestError {
    /// A required property is absent or empty.
    #[error("{0} is required")]
    Missing(&'static str),
    /// A property has a value the API does not accept.
    #[error("{field} is invalid: {reason}")]
    Invalid {
        /// The property (JSON name).
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl RequestError {
    /// The Graph error body for this problem (`invalidRequest`).
    pub fn to_error_body(&self) -> GraphErrorBody {
        GraphErrorBody::invalid_request(self.to_string())
    }
}

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

    /// Checks the documented rules: `acceptedModalities` present, non-empty, only `audio`,
    /// `video`, `videoBasedScreenSharing`; `mediaConfig` present, of a known type, app-hosted
    /// with a non-empty `blob`; `callbackUri` (if any) an https URL; `participantCapacity`
    /// (if any) not negative.
    pub fn validate(&self) -> Result<(), RequestError> {
        let modalities = self
            .accepted_modalities
            .as_deref()
            .filter(|m| !m.is_empty())
            .ok_or(RequestError::Missing("acceptedModalities"))?;
        if !modalities.iter().all(|m| {
            matches!(
                m,
                Modality::Audio | Modality::Video | Modality::VideoBasedScreenSharing
            )
        }) {
            return Err(RequestError::Invalid {
                field: "acceptedModalities",
                reason: "allowed values are audio, video, videoBasedScreenSharing",
            });
        }
        match &self.media_config {
            None => return Err(RequestError::Missing("mediaConfig")),
            Some(MediaConfig::AppHosted(c)) if c.blob.as_deref().is_none_or(str::is_empty) => {
                return Err(RequestError::Missing("mediaConfig.blob"));
            }
            Some(MediaConfig::Other(_)) => {
                return Err(RequestError::Invalid {
                    field: "mediaConfig",
                    reason: "unknown @odata.type",
                });
            }
            Some(_) => {}
        }
        if self.participant_capacity.is_some_and(|c| c < 0) {
            return Err(RequestError::Invalid {
                field: "participantCapacity",
                reason: "must not be negative",
            });
        }
        check_callback_uri(self.callback_uri.as_deref())
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

    /// Checks the documented rules: `reason` (if any) one of `none`, `busy`, `forbidden`;
    /// `callbackUri` (if any) an https URL.
    pub fn validate(&self) -> Result<(), RequestError> {
        if matches!(
            self.reason,
            Some(RejectReason::Other(_) | RejectReason::UnknownFutureValue)
        ) {
            return Err(RequestError::Invalid {
                field: "reason",
                reason: "allowed values are none, busy, forbidden",
            });
        }
        check_callback_uri(self.callback_uri.as_deref())
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

    /// Checks the documented rules: 1 to 25 `targets`, each with an identity; `timeout` (if
    /// any) 15–90 s; `callbackUri` (if any) an https URL.
    pub fn validate(&self) -> Result<(), RequestError> {
        let targets = self
            .targets
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or(RequestError::Missing("targets"))?;
        if targets.len() > MAX_REDIRECT_TARGETS {
            return Err(RequestError::Invalid {
                field: "targets",
                reason: "at most 25 targets",
            });
        }
        if targets
            .iter()
            .any(|t| t.identity.as_ref().is_none_or(IdentitySet::is_empty))
        {
            return Err(RequestError::Missing("targets.identity"));
        }
        if self
            .timeout
            .is_some_and(|t| !REDIRECT_TIMEOUT_SECONDS.contains(&t))
        {
            return Err(RequestError::Invalid {
                field: "timeout",
                reason: "must be 15 to 90 seconds",
            });
        }
        check_callback_uri(self.callback_uri.as_deref())
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

/// A `callbackUri`, when given, must be an absolute https URL with a host.
fn check_callback_uri(uri: Option<&str>) -> Result<(), RequestError> {
    let Some(uri) = uri else {
        return Ok(());
    };
    match url::Url::parse(uri) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(()),
        Ok(_) => Err(RequestError::Invalid {
            field: "callbackUri",
            reason: "must be an https URL",
        }),
        Err(_) => Err(RequestError::Invalid {
            field: "callbackUri",
            reason: "not a URL",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn answer_validation_follows_the_docs() {
        let ok = AnswerRequest::app_hosted_audio("blob");
        assert_eq!(ok.validate(), Ok(()));
        let mut r = ok.clone();
        r.accepted_modalities = None;
        assert_eq!(
            r.validate(),
            Err(RequestError::Missing("acceptedModalities"))
        );
        r.accepted_modalities = Some(vec![]);
        assert_eq!(
            r.validate(),
            Err(RequestError::Missing("acceptedModalities"))
        );
        r.accepted_modalities = Some(vec![Modality::Data]);
        assert!(matches!(
            r.validate(),
            Err(RequestError::Invalid {
                field: "acceptedModalities",
                ..
            })
        ));
        let mut r = ok.clone();
        r.media_config = None;
        assert_eq!(r.validate(), Err(RequestError::Missing("mediaConfig")));
        r.media_config = Some(MediaConfig::app_hosted(""));
        assert_eq!(r.validate(), Err(RequestError::Missing("mediaConfig.blob")));
        let mut r = ok.clone();
        r.callback_uri = Some("http://bot.example.com/cb".into());
        assert!(matches!(
            r.validate(),
            Err(RequestError::Invalid {
                field: "callbackUri",
                ..
            })
        ));
        r.callback_uri = Some("not a url".into());
        assert!(r.validate().is_err());
        r.callback_uri = Some("https://bot.example.com/cb".into());
        assert_eq!(r.validate(), Ok(()));
        let body = RequestError::Missing("mediaConfig").to_error_body();
        assert_eq!(body.error.code, "invalidRequest");
        assert_eq!(body.error.message, "mediaConfig is required");
    }

    #[test]
    fn reject_and_redirect_validation() {
        assert_eq!(RejectRequest::new(RejectReason::Busy).validate(), Ok(()));
        assert_eq!(RejectRequest::default().validate(), Ok(()));
        let r: RejectRequest = serde_json::from_str(r#"{"reason":"later"}"#).unwrap();
        assert!(r.validate().is_err());

        let target = || InvitationParticipantInfo::new(IdentitySet::phone("+1"));
        assert_eq!(
            RedirectRequest::new(vec![target()], Some(30)).validate(),
            Ok(())
        );
        assert_eq!(
            RedirectRequest::new(vec![target()], None).validate(),
            Ok(())
        );
        assert_eq!(
            RedirectRequest::default().validate(),
            Err(RequestError::Missing("targets"))
        );
        assert!(
            RedirectRequest::new(vec![target()], Some(14))
                .validate()
                .is_err()
        );
        assert!(
            RedirectRequest::new(vec![target()], Some(91))
                .validate()
                .is_err()
        );
        assert!(
            RedirectRequest::new(vec![target(); 26], Some(30))
                .validate()
                .is_err()
        );
        assert_eq!(
            RedirectRequest::new(vec![InvitationParticipantInfo::default()], None).validate(),
            Err(RequestError::Missing("targets.identity"))
        );
    }
}
