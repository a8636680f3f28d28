//! The Microsoft Graph calling API as data: serde models for calls, notifications, media
//! configurations, identities, operations and errors. No HTTP here.
//!
//! Reading is lenient (reference §0.2): enums case-insensitively with a catch-all, integers
//! from numbers or numeric strings, `subCode` for `subcode`, `resourceData` as an object or an
//! array, `@odata.type` optional where the property implies it, unknown properties and
//! `@odata.*` annotations kept in each type's `extra`. Writing is canonical: lowerCamelCase,
//! `None` skipped, integers for codes, `@odata.type` where Graph writes it.
//!
//! Entry point for webhook bodies: [`parse_notifications`].
//!
//! ```
//! use mediabot::graph::{AnswerRequest, CallState, ChangeType, parse_notifications};
//!
//! // As the .NET SDK logs it: PascalCase enums, no call id in resourceData.
//! let body = br##"{"value":[{"changeType":"Created",
//!     "resourceUrl":"/communications/calls/c1",
//!     "resourceData":{"@odata.type":"#microsoft.graph.call","state":"Incoming"}}]}"##;
//! let batch = parse_notifications(body)?;
//! let n = &batch.value[0];
//! assert_eq!(n.change_type, Some(ChangeType::Created));
//! assert_eq!(n.call_id().unwrap(), "c1");
//! assert_eq!(n.call_data().and_then(|c| c.state.clone()), Some(CallState::Incoming));
//!
//! let answer = AnswerRequest::app_hosted_audio("<blob>");
//! answer.validate()?;
//! assert_eq!(
//!     serde_json::to_string(&answer)?,
//!     r##"{"acceptedModalities":["audio"],"mediaConfig":{"@odata.type":"#microsoft.graph.appHostedMediaConfig","blob":"<blob>"}}"##
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod call;
pub mod call_options;
pub mod enums;
pub mod error;
pub mod error_body;
pub mod identity;
pub mod ids;
pub mod lenient;
pub mod media_config;
pub mod meeting;
pub mod notification;
pub mod operation;
pub mod participant;
pub mod participant_joining;
pub mod recording;
pub mod request;
pub mod result_info;

pub use call::{Call, CallMediaState, CallRoute, IncomingContext, ToneInfo};
pub use call_options::CallOptions;
pub use enums::{
    CallDirection, CallState, ChangeType, EndpointType, MediaDirection, MediaState, Modality,
    OperationStatus, RecordingStatus, RejectReason, RoutingPolicy, RoutingType, TargetDisposition,
    Tone,
};
pub use error::GraphModelError;
pub use error_body::{GraphErrorBody, GraphErrorDetail, InnerError};
pub use identity::{Identity, IdentityKind, IdentitySet};
pub use ids::{CallId, OperationId, ParticipantId};
pub use lenient::ODataTag;
pub use media_config::{AppHostedMediaConfig, MediaConfig, MediaInfo, ServiceHostedMediaConfig};
pub use meeting::{
    ChatInfo, JoinMeetingIdMeetingInfo, MeetingInfo, OrganizerMeetingInfo, TokenMeetingInfo,
};
pub use notification::{
    CommsNotification, CommsNotifications, ResourceData, ResourceKind, is_legacy_skype_body,
    parse_notifications,
};
pub use operation::{CommsOperation, OperationKind};
pub use participant::{
    DeltaParticipants, InvitationParticipantInfo, MediaStream, Participant, ParticipantInfo,
    RecordingInfo, RemovedState,
};
pub use participant_joining::{ParticipantJoiningNotification, ParticipantJoiningResponse};
pub use recording::{ApplicationMetadata, BotData, BotDataUser, RecorderInfo};
pub use request::{
    AnswerRequest, InviteParticipantsRequest, RedirectRequest, RejectRequest, RequestError,
    TransferRequest, UpdateRecordingStatusRequest,
};
pub use result_info::ResultInfo;
