//! `IncomingCall`: the typed summary of an incoming-call notification the application decides
//! on, with the raw Graph call kept alongside.

use std::time::Instant;

use crate::graph::{Call, IdentityKind, Modality};

use crate::graph::CallId;

/// Who is calling, as far as the notification tells.
#[derive(Clone, Copy, Debug, Eq, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CallerKind {
    /// A Teams (Entra ID) user.
    TeamsUser,
    /// A phone number (PSTN).
    Phone,
    /// A guest.
    Guest,
    /// Another application or bot.
    Application,
    /// The caller's identity is encrypted (the app lacks calling permissions).
    Encrypted,
    /// Anything else or nothing.
    Unknown,
}

/// What the application needs to decide on an incoming call.
#[derive(Clone, Debug)]
pub struct IncomingCall {
    /// The call id used in answer/reject/redirect URLs.
    pub call_id: CallId,
    /// Kind of caller.
    pub caller: CallerKind,
    /// Caller's id (user object id, E.164 number, …).
    pub caller_id: Option<String>,
    /// Caller's display name.
    pub caller_name: Option<String>,
    /// Tenant of the call.
    pub tenant_id: Option<String>,
    /// A group call or meeting invitation (`chatInfo`/`meetingInfo` present).
    pub is_meeting: bool,
    /// A policy-based-recording invitation (`botData.inviteReasons` has
    /// `PolicyBasedRecording`): 5 s to decide.
    pub policy_recording: bool,
    /// Modalities the caller requested.
    pub requested_modalities: Vec<Modality>,
    /// Graph's deadline for the decision (15 s / 5 s after arrival).
    pub deadline: Instant,
    /// When the default decision is applied if the application stays silent.
    pub decide_by: Instant,
    /// The call as Graph sent it.
    pub call: Box<Call>,
}

impl IncomingCall {
    /// Summarises a Graph call. `deadline` and `decide_by` start as `received`; the caller
    /// (the call driver) sets them from the [`Call`](super::Call) the table created.
    pub fn from_graph(call_id: CallId, call: Call, received: Instant) -> Self {
        let primary = call
            .source
            .as_ref()
            .and_then(|s| s.identity.as_ref())
            .and_then(|set| {
                set.primary()
                    .map(|(k, i)| (k, i.id.clone(), i.display_name.clone()))
            });
        let (caller, caller_id, caller_name) = match primary {
            Some((kind, id, name)) => (caller_kind(kind), id, name),
            None => (CallerKind::Unknown, None, None),
        };
        let policy_recording = is_policy_recording(&call);
        Self {
            call_id,
            caller,
            caller_id,
            caller_name,
            tenant_id: call.tenant_id.clone(),
            is_meeting: call.chat_info.is_some() || call.meeting_info.is_some(),
            policy_recording,
            requested_modalities: call.requested_modalities.clone().unwrap_or_default(),
            deadline: received,
            decide_by: received,
            call: Box::new(call),
        }
    }
}

/// True when `applicationMetadata.botData.inviteReasons` contains `PolicyBasedRecording`
/// (case-insensitively).
pub fn is_policy_recording(call: &Call) -> bool {
    call.application_metadata
        .as_ref()
        .and_then(|m| m.bot_data.as_ref())
        .is_some_and(|b| b.is_policy_based_recording())
}

fn caller_kind(kind: IdentityKind) -> CallerKind {
    match kind {
        IdentityKind::User | IdentityKind::OnPremises => CallerKind::TeamsUser,
        IdentityKind::Phone => CallerKind::Phone,
        IdentityKind::Guest | IdentityKind::AzureCommunicationServicesUser => CallerKind::Guest,
        IdentityKind::Application | IdentityKind::ApplicationInstance => CallerKind::Application,
        IdentityKind::Encrypted => CallerKind::Encrypted,
        _ => CallerKind::Unknown,
    }
}
