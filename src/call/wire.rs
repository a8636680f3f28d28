//! The Graph wire types the call core uses, re-exported from [`crate::graph`] in one place.

pub use crate::graph::{
    CallState, InvitationParticipantInfo, MediaConfig, Modality, RejectReason, ResultInfo,
};
