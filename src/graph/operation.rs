//! `commsOperation` and its subtypes: the status of a long-running call action (invite,
//! playPrompt, updateRecordingStatus, …), returned synchronously and, when not finished,
//! completed later by a `deleted` notification on `…/operations/{opId}`.
//!
//! One struct for every subtype: the subtype stays in `odata_type` (see [`CommsOperation::kind`])
//! and subtype-specific properties (`participants`, `recordingLocation`, …) stay in `extra`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::enums::OperationStatus;
use super::ids::OperationId;
use super::lenient::odata_name;
use super::result_info::ResultInfo;

/// `commsOperation` (any subtype).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommsOperation {
    /// `@odata.type`, e.g. `#microsoft.graph.updateRecordingStatusOperation`.
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// Operation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<OperationId>,
    /// `notStarted`, `running`, `completed`, `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OperationStatus>,
    /// The caller's context string, echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_context: Option<String>,
    /// Outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_info: Option<ResultInfo>,
    /// Subtype properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Which `commsOperation` subtype an operation is.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub enum OperationKind {
    /// `inviteParticipantsOperation`.
    InviteParticipants,
    /// `playPromptOperation`.
    PlayPrompt,
    /// `recordOperation`.
    Record,
    /// `muteParticipantOperation`.
    MuteParticipant,
    /// `unmuteParticipantOperation`.
    UnmuteParticipant,
    /// `subscribeToToneOperation`.
    SubscribeToTone,
    /// `updateRecordingStatusOperation`.
    UpdateRecordingStatus,
    /// `cancelMediaProcessingOperation`.
    CancelMediaProcessing,
    /// `sendDtmfTonesOperation`.
    SendDtmfTones,
    /// `commsOperation` itself, or no `@odata.type`.
    Generic,
    /// Another subtype, by bare name.
    Other(String),
}

impl OperationKind {
    /// The `@odata.type` Graph writes for this kind (`Other` names are taken as given).
    pub fn odata_type(&self) -> String {
        let name = match self {
            Self::InviteParticipants => "inviteParticipantsOperation",
            Self::PlayPrompt => "playPromptOperation",
            Self::Record => "recordOperation",
            Self::MuteParticipant => "muteParticipantOperation",
            Self::UnmuteParticipant => "unmuteParticipantOperation",
            Self::SubscribeToTone => "subscribeToToneOperation",
            Self::UpdateRecordingStatus => "updateRecordingStatusOperation",
            Self::CancelMediaProcessing => "cancelMediaProcessingOperation",
            Self::SendDtmfTones => "sendDtmfTonesOperation",
            Self::Generic => "commsOperation",
            Self::Other(name) => name,
        };
        format!("#microsoft.graph.{name}")
    }

    fn from_name(name: &str) -> Self {
        const KNOWN: [(&str, OperationKind); 10] = [
            (
                "inviteParticipantsOperation",
                OperationKind::InviteParticipants,
            ),
            ("playPromptOperation", OperationKind::PlayPrompt),
            ("recordOperation", OperationKind::Record),
            ("muteParticipantOperation", OperationKind::MuteParticipant),
            (
                "unmuteParticipantOperation",
                OperationKind::UnmuteParticipant,
            ),
            ("subscribeToToneOperation", OperationKind::SubscribeToTone),
            (
                "updateRecordingStatusOperation",
                OperationKind::UpdateRecordingStatus,
            ),
            (
                "cancelMediaProcessingOperation",
                OperationKind::CancelMediaProcessing,
            ),
            ("sendDtmfTonesOperation", OperationKind::SendDtmfTones),
            ("commsOperation", OperationKind::Generic),
        ];
        KNOWN
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or_else(|| Self::Other(name.to_owned()), |(_, k)| k)
    }
}

impl CommsOperation {
    /// A new operation of `kind` with `status`.
    pub fn new(kind: &OperationKind, id: OperationId, status: OperationStatus) -> Self {
        Self {
            odata_type: Some(kind.odata_type()),
            id: Some(id),
            status: Some(status),
            ..Self::default()
        }
    }

    /// The subtype, from `@odata.type`.
    pub fn kind(&self) -> OperationKind {
        match self.odata_type.as_deref() {
            None => OperationKind::Generic,
            Some(t) => OperationKind::from_name(odata_name(t)),
        }
    }

    /// `true` once `completed` or `failed` (no further notification follows).
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status,
            Some(OperationStatus::Completed | OperationStatus::Failed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case_status_and_subtype_are_read() {
        let op: CommsOperation = serde_json::from_str(
            r##"{"@odata.type":"#microsoft.graph.inviteParticipantsOperation","id":"op1","status":"Running","clientContext":"c","participants":[]}"##,
        )
        .unwrap();
        assert_eq!(op.kind(), OperationKind::InviteParticipants);
        assert_eq!(op.status, Some(OperationStatus::Running));
        assert!(!op.is_finished());
        assert!(op.extra.contains_key("participants"));
    }

    #[test]
    fn new_operation_writes_its_type() {
        let op = CommsOperation::new(
            &OperationKind::UpdateRecordingStatus,
            OperationId::new("o"),
            OperationStatus::Completed,
        );
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(
            json["@odata.type"],
            "#microsoft.graph.updateRecordingStatusOperation"
        );
        assert_eq!(json["status"], "completed");
        assert!(op.is_finished());
        assert_eq!(CommsOperation::default().kind(), OperationKind::Generic);
    }
}
