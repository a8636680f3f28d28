//! The Graph error body `{ "error": { "code", "message", "innerError": {…} } }` (§5.3), with
//! constructors for the codes the emulator and the webhook send.
//!
//! `code` is a string: generic codes are words (`itemNotFound`, `TooManyRequests`), calling
//! errors are numeric strings (`"8522"`). Branch on `code`, never on `message`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `{ "error": … }`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
pub struct GraphErrorBody {
    /// The error.
    pub error: GraphErrorDetail,
}

/// The `error` object.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphErrorDetail {
    /// Machine-readable code.
    #[serde(default)]
    pub code: String,
    /// Human-readable message (do not branch on it).
    #[serde(default)]
    pub message: String,
    /// More specific details (request ids, date, nested codes).
    #[serde(default, alias = "innererror", skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<InnerError>,
    /// Unknown properties, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `innerError`: may nest further `code`/`innerError` levels (deeper = more specific).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
pub struct InnerError {
    /// A more specific code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Message (the 429 body repeats one here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// HTTP status as a string (the 429 body has `"status": "429"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `request-id`.
    #[serde(
        rename = "request-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_id: Option<String>,
    /// `client-request-id` (echoes the request header).
    #[serde(
        rename = "client-request-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_request_id: Option<String>,
    /// Date, e.g. `2022-04-11T14:57:59`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// A deeper level.
    #[serde(
        rename = "innerError",
        alias = "innererror",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inner_error: Option<Box<Self>>,
    /// Unknown properties, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Calling error code: the call does not exist (any more), e.g. answer after the window.
pub const CODE_CALL_NOT_FOUND: &str = "8522";
/// Calling error code: insufficient enterprise tenant permissions.
pub const CODE_INSUFFICIENT_PERMISSIONS: &str = "7504";
/// Calling error code: `updateRecordingStatus` on a non-compliance-recording call.
pub const CODE_NOT_COMPLIANCE_RECORDING: &str = "8506";
/// Calling error code: create call with an invalid source identity.
pub const CODE_INVALID_SOURCE_IDENTITY: &str = "7507";

impl GraphErrorBody {
    /// A body with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: GraphErrorDetail {
                code: code.into(),
                message: message.into(),
                ..GraphErrorDetail::default()
            },
        }
    }

    /// 400 `invalidRequest`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new("invalidRequest", message)
    }

    /// 404 `itemNotFound`.
    pub fn item_not_found(message: impl Into<String>) -> Self {
        Self::new("itemNotFound", message)
    }

    /// `8522` "Call not found." (answer/reject/redirect after the window; ops on ended calls).
    pub fn call_not_found() -> Self {
        Self::new(CODE_CALL_NOT_FOUND, "Call not found.")
    }

    /// 429 `TooManyRequests` as Graph sends it (innerError code/status `429`).
    pub fn too_many_requests() -> Self {
        let mut body = Self::new("TooManyRequests", "Please retry again later.");
        body.error.inner_error = Some(InnerError {
            code: Some("429".into()),
            status: Some("429".into()),
            message: Some("Please retry after".into()),
            ..InnerError::default()
        });
        body
    }

    /// 401 `unauthenticated` (a missing or invalid bearer token).
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new("unauthenticated", message)
    }

    /// 403 `accessDenied`.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new("accessDenied", message)
    }

    /// 405/409 `notAllowed` (e.g. a call decided twice).
    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::new("notAllowed", message)
    }

    /// `notSupported`.
    pub fn not_supported(message: impl Into<String>) -> Self {
        Self::new("notSupported", message)
    }

    /// 413 `requestEntityTooLarge` with the limit in the message.
    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            "requestEntityTooLarge",
            format!("Request body exceeds {limit_bytes} bytes."),
        )
    }

    /// 503 `serviceNotAvailable`.
    pub fn service_not_available() -> Self {
        Self::new(
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        )
    }

    /// 500 `generalException`.
    pub fn general_exception() -> Self {
        Self::new(
            "generalException",
            "Unexpected exception returned from the service.",
        )
    }

    /// `7504` insufficient enterprise tenant permissions (403).
    pub fn insufficient_permissions() -> Self {
        Self::new(
            CODE_INSUFFICIENT_PERMISSIONS,
            "Insufficient enterprise tenant permissions, cannot access this API.",
        )
    }

    /// `8506` API call not allowed for non-Compliance Recording call.
    pub fn not_compliance_recording() -> Self {
        Self::new(
            CODE_NOT_COMPLIANCE_RECORDING,
            "API call not allowed for non-Compliance Recording call.",
        )
    }

    /// Adds `innerError` request ids and date (keeps other inner fields).
    #[must_use]
    pub fn with_request_ids(
        mut self,
        request_id: impl Into<String>,
        client_request_id: Option<String>,
        date: impl Into<String>,
    ) -> Self {
        let inner = self
            .error
            .inner_error
            .get_or_insert_with(InnerError::default);
        inner.request_id = Some(request_id.into());
        inner.client_request_id = client_request_id;
        inner.date = Some(date.into());
        self
    }

    /// `true` when the code (or any inner code) is `8522`.
    pub fn is_call_not_found(&self) -> bool {
        self.codes().any(|c| c == CODE_CALL_NOT_FOUND)
    }

    /// The top-level code followed by the inner codes, outermost first (bounded depth).
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        let mut inner = self.error.inner_error.as_ref();
        let mut inner_codes = Vec::new();
        // Bounded: serde_json's recursion limit already caps the nesting of parsed bodies.
        for _ in 0..64 {
            let Some(i) = inner else { break };
            if let Some(c) = i.code.as_deref() {
                inner_codes.push(c);
            }
            inner = i.inner_error.as_deref();
        }
        std::iter::once(self.error.code.as_str()).chain(inner_codes)
    }
}

impl std::fmt::Display for GraphErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error.code, self.error.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_requests_matches_graphs_shape() {
        let json = serde_json::to_value(GraphErrorBody::too_many_requests()).unwrap();
        assert_eq!(json["error"]["code"], "TooManyRequests");
        assert_eq!(json["error"]["innerError"]["status"], "429");
        assert_eq!(json["error"]["innerError"]["code"], "429");
    }

    #[test]
    fn nested_codes_are_found() {
        let body: GraphErrorBody = serde_json::from_str(
            r##"{"error":{"code":"generalException","message":"x","innerError":{"code":"callNotFound","innerError":{"code":"8522"}}}}"##,
        )
        .unwrap();
        assert_eq!(
            body.codes().collect::<Vec<_>>(),
            ["generalException", "callNotFound", "8522"]
        );
        assert!(body.is_call_not_found());
        assert!(GraphErrorBody::call_not_found().is_call_not_found());
        assert!(!GraphErrorBody::item_not_found("gone").is_call_not_found());
    }

    #[test]
    fn request_ids_are_written_with_graph_spelling() {
        let body = GraphErrorBody::invalid_request("bad").with_request_ids(
            "r1",
            Some("c1".into()),
            "2026-01-01T00:00:00",
        );
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["error"]["innerError"]["request-id"], "r1");
        assert_eq!(json["error"]["innerError"]["client-request-id"], "c1");
    }
}
