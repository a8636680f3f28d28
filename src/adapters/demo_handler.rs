//! `DemoHandler`: a configurable [`CallHandler`] that decides by the kind of caller — answer
//! Teams users and meeting / policy-recording invitations with an app-hosted media blob,
//! redirect phone callers to another number, reject the rest.
//!
//! The media blob has DESIGN.md's shape (`{"v":1,"sessionId",…,"negotiateUri","token","audio",
//! "expiresAt"}`) with a random session id and a 128-bit random token, but **nothing negotiates
//! it yet**: the negotiation endpoint arrives with the media transport issue. A media processor
//! that POSTs an offer to `negotiateUri` today gets a 404.

use std::time::{Duration, SystemTime};

use base64::Engine;
use rand::RngCore;

use crate::call::wire::{InvitationParticipantInfo, MediaConfig, Modality, RejectReason};
use crate::call::{Answer, CallerKind, Decision, IncomingCall};
use crate::graph::IdentitySet;

use super::call_handler::CallHandler;
use super::graph_client::BoxFuture;

/// What the demo does with one kind of call.
#[derive(Clone, Debug, PartialEq)]
pub enum DemoAction {
    /// Answer with a fresh app-hosted media blob.
    Answer,
    /// Reject with this reason.
    Reject(RejectReason),
    /// Redirect to this phone number (E.164).
    RedirectToPhone(String),
    /// Never decide (the default decision applies): for deadline demos and tests.
    Ignore,
}

/// Per-kind policy of the [`DemoHandler`].
#[derive(Clone, Debug)]
pub struct DemoHandlerConfig {
    /// Calls from Teams users (P2P).
    pub teams_user: DemoAction,
    /// Calls from phone numbers.
    pub phone: DemoAction,
    /// Meeting / group-call invitations.
    pub meeting: DemoAction,
    /// Policy-based-recording invitations.
    pub policy_recording: DemoAction,
    /// Everyone else (guests, applications, encrypted or unknown callers).
    pub other: DemoAction,
    /// Base URL for the blob's `negotiateUri` (`{media_base_url}/media/v1/sessions/{id}`).
    pub media_base_url: String,
    /// How long the blob's token is valid.
    pub blob_lifetime: Duration,
}

impl Default for DemoHandlerConfig {
    fn default() -> Self {
        Self {
            teams_user: DemoAction::Answer,
            phone: DemoAction::RedirectToPhone("+15555550100".into()),
            meeting: DemoAction::Answer,
            policy_recording: DemoAction::Answer,
            other: DemoAction::Reject(RejectReason::Busy),
            media_base_url: "https://127.0.0.1:8445".into(),
            blob_lifetime: Duration::from_secs(60),
        }
    }
}

/// The demo application.
#[derive(Clone, Debug, Default)]
pub struct DemoHandler {
    cfg: DemoHandlerConfig,
}

impl DemoHandler {
    /// A demo handler with this policy.
    pub fn new(cfg: DemoHandlerConfig) -> Self {
        Self { cfg }
    }

    /// The action for a call (policy recording first, then meetings, then the caller kind).
    pub fn action_for(&self, call: &IncomingCall) -> &DemoAction {
        if call.policy_recording {
            &self.cfg.policy_recording
        } else if call.is_meeting {
            &self.cfg.meeting
        } else {
            match call.caller {
                CallerKind::TeamsUser => &self.cfg.teams_user,
                CallerKind::Phone => &self.cfg.phone,
                _ => &self.cfg.other,
            }
        }
    }

    /// The decision for a call; `None` for [`DemoAction::Ignore`].
    pub fn decision_for(&self, call: &IncomingCall) -> Option<Decision> {
        match self.action_for(call) {
            DemoAction::Answer => Some(Decision::Answer(Answer {
                media_config: MediaConfig::app_hosted(placeholder_media_blob(
                    &self.cfg.media_base_url,
                    SystemTime::now() + self.cfg.blob_lifetime,
                )),
                accepted_modalities: vec![Modality::Audio],
                participant_capacity: None,
            })),
            DemoAction::Reject(reason) => Some(Decision::Reject {
                reason: reason.clone(),
            }),
            DemoAction::RedirectToPhone(number) => Some(Decision::Redirect {
                targets: vec![InvitationParticipantInfo {
                    identity: Some(IdentitySet::phone(number.clone())),
                    ..InvitationParticipantInfo::default()
                }],
                timeout: Some(Duration::from_secs(30)),
            }),
            DemoAction::Ignore => None,
        }
    }
}

impl CallHandler for DemoHandler {
    fn on_incoming(&self, call: IncomingCall) -> BoxFuture<'static, Decision> {
        match self.decision_for(&call) {
            Some(decision) => Box::pin(std::future::ready(decision)),
            None => Box::pin(std::future::pending()),
        }
    }
}

/// A media session descriptor in DESIGN.md's shape with a random session id and token.
/// Placeholder: nothing serves `negotiateUri` yet.
pub fn placeholder_media_blob(media_base_url: &str, expires_at: SystemTime) -> String {
    let session_id = uuid::Uuid::new_v4().to_string();
    let mut token = [0u8; 16];
    rand::rng().fill_bytes(&mut token);
    let blob = serde_json::json!({
        "v": 1,
        "sessionId": session_id,
        "negotiateUri": format!(
            "{}/media/v1/sessions/{session_id}",
            media_base_url.trim_end_matches('/')
        ),
        "token": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token),
        "audio": {"codec": "opus", "clockRate": 48000, "ptime": 20},
        "expiresAt": humantime::format_rfc3339_seconds(expires_at).to_string(),
    });
    blob.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_has_the_design_shape_and_fresh_secrets() {
        let a: serde_json::Value = serde_json::from_str(&placeholder_media_blob(
            "https://h:1/",
            SystemTime::UNIX_EPOCH,
        ))
        .expect("json");
        let b: serde_json::Value = serde_json::from_str(&placeholder_media_blob(
            "https://h:1",
            SystemTime::UNIX_EPOCH,
        ))
        .expect("json");
        assert_eq!(a["v"], 1);
        assert_eq!(a["audio"]["codec"], "opus");
        assert_eq!(a["expiresAt"], "1970-01-01T00:00:00Z");
        let sid = a["sessionId"].as_str().expect("session id");
        assert_eq!(
            a["negotiateUri"],
            format!("https://h:1/media/v1/sessions/{sid}")
        );
        assert_ne!(a["token"], b["token"]);
        assert_ne!(a["sessionId"], b["sessionId"]);
        assert_eq!(a["token"].as_str().map(str::len), Some(22));
    }
}
