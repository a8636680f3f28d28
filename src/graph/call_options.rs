//! `callOptions`: `incomingCallOptions` (answer) and `outgoingCallOptions` (create call), which
//! share their booleans and differ only in `@odata.type`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient::{self, odata_is};

/// `#microsoft.graph.incomingCallOptions`.
pub const INCOMING_CALL_OPTIONS: &str = "#microsoft.graph.incomingCallOptions";
/// `#microsoft.graph.outgoingCallOptions`.
pub const OUTGOING_CALL_OPTIONS: &str = "#microsoft.graph.outgoingCallOptions";

/// `callOptions` (incoming or outgoing; the subtype is kept in `odata_type`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallOptions {
    /// `@odata.type` as read or set by [`CallOptions::incoming`]/[`CallOptions::outgoing`].
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// Send content-sharing session notifications.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_content_sharing_notification_enabled: Option<bool>,
    /// Send delta roster updates instead of full rosters.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_delta_roster_enabled: Option<bool>,
    /// Filter the delta roster to interactive participants.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_interactive_roster_enabled: Option<bool>,
    /// Hide the bot after the call escalates to a group call.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub hide_bot_after_escalation: Option<bool>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CallOptions {
    /// Empty `incomingCallOptions` (for answer).
    pub fn incoming() -> Self {
        Self {
            odata_type: Some(INCOMING_CALL_OPTIONS.to_owned()),
            ..Self::default()
        }
    }

    /// Empty `outgoingCallOptions` (for create call).
    pub fn outgoing() -> Self {
        Self {
            odata_type: Some(OUTGOING_CALL_OPTIONS.to_owned()),
            ..Self::default()
        }
    }

    /// `true` when typed as `incomingCallOptions`.
    pub fn is_incoming(&self) -> bool {
        self.odata_type
            .as_deref()
            .is_some_and(|t| odata_is(t, "incomingCallOptions"))
    }

    /// `true` when typed as `outgoingCallOptions`.
    pub fn is_outgoing(&self) -> bool {
        self.odata_type
            .as_deref()
            .is_some_and(|t| odata_is(t, "outgoingCallOptions"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_options_round_trip() {
        let o = CallOptions {
            is_delta_roster_enabled: Some(true),
            ..CallOptions::incoming()
        };
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["@odata.type"], INCOMING_CALL_OPTIONS);
        assert_eq!(json["isDeltaRosterEnabled"], true);
        let back: CallOptions = serde_json::from_value(json).unwrap();
        assert_eq!(back, o);
        assert!(back.is_incoming() && !back.is_outgoing());
    }
}
