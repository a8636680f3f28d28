//! `resultInfo`: the outcome of a call or operation as `{code, subcode, message}`.
//!
//! Read leniently (numbers as strings, `subCode` for `subcode`); written with integers and
//! `subcode`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient::{self, ODataTag, odata};

/// `resultInfo`: 2xx success, 4xx client, 5xx server; `subcode` refines it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultInfo {
    /// Written as `#microsoft.graph.resultInfo`.
    #[serde(rename = "@odata.type", default, serialize_with = "odata::result_info")]
    pub odata_type: ODataTag,
    /// Main code (HTTP-like).
    #[serde(
        default,
        deserialize_with = "lenient::opt_i32",
        skip_serializing_if = "Option::is_none"
    )]
    pub code: Option<i32>,
    /// Refining code (e.g. 5001 "conversation ended", 8522 "call not found").
    #[serde(
        default,
        alias = "subCode",
        deserialize_with = "lenient::opt_i32",
        skip_serializing_if = "Option::is_none"
    )]
    pub subcode: Option<i32>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResultInfo {
    /// A result with code, subcode and message.
    pub fn new(code: i32, subcode: i32, message: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            subcode: Some(subcode),
            message: Some(message.into()),
            ..Self::default()
        }
    }

    /// `true` when `code` is 0 or in 200..300 (transfer completion reports code 0).
    pub fn is_success(&self) -> bool {
        matches!(self.code, Some(0) | Some(200..=299))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_sub_code_spelling_are_accepted() {
        let r: ResultInfo =
            serde_json::from_str(r##"{"code":"200","subCode":"5001","message":"ended"}"##).unwrap();
        assert_eq!(r, ResultInfo::new(200, 5001, "ended"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["code"], 200);
        assert_eq!(json["subcode"], 5001);
        assert!(json.get("subCode").is_none());
        assert_eq!(json["@odata.type"], "#microsoft.graph.resultInfo");
        assert!(r.is_success());
        assert!(!ResultInfo::new(408, 1106, "x").is_success());
    }
}
