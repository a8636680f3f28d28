//! The bot's decision requests as the emulated service checks them: answer, reject and
//! redirect bodies, validated the way Graph validates them (reference §1–§2).
//!
//! Reading is lenient in the ways Microsoft's SDKs need: property names are matched
//! case-insensitively, enum values (`"Audio"`, `"Busy"`) too, `@odata.type` annotations on
//! nested objects are optional, numbers may be strings and unknown properties are ignored.
//! What Graph rejects is rejected with a message naming the property: a body that is not a
//! JSON object, `acceptedModalities` missing or empty or with an unknown modality,
//! `mediaConfig` missing or of an unknown type, an app-hosted config without `blob`, a
//! `callbackUri` that is not an absolute `https` URL, an unknown reject `reason`, redirect
//! `targets` outside 1..=25 or without an identity, and a redirect `timeout` outside 15–90 s.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::graph::{AnswerRequest, RedirectRequest, RejectRequest};

/// A valid answer body, reduced to what the emulator acts on.
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerBody {
    /// Where later notifications go, if given.
    pub callback_uri: Option<String>,
    /// Accepted modalities, canonical spelling (`audio`, `video`, …).
    pub modalities: Vec<String>,
    /// `#microsoft.graph.appHostedMediaConfig` or `…serviceHostedMediaConfig`.
    pub media_config_type: String,
    /// The body read through the graph wire model.
    pub typed: AnswerRequest,
}

/// A valid reject body.
#[derive(Clone, Debug, PartialEq)]
pub struct RejectBody {
    /// `none`, `busy` or `forbidden` (`none` when absent).
    pub reason: String,
    /// Where later notifications go, if given.
    pub callback_uri: Option<String>,
    /// The body read through the graph wire model.
    pub typed: RejectRequest,
}

/// A valid redirect body.
#[derive(Clone, Debug, PartialEq)]
pub struct RedirectBody {
    /// Number of targets (1..=25).
    pub targets: usize,
    /// Ring timeout in seconds (15..=90), if given.
    pub timeout: Option<u32>,
    /// Where later notifications go, if given.
    pub callback_uri: Option<String>,
    /// The body read through the graph wire model.
    pub typed: RedirectRequest,
}

/// Why a request body was refused (becomes a 400 `invalidRequest` with this message).
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Most redirect targets Graph accepts.
pub const MAX_REDIRECT_TARGETS: usize = 25;
/// Redirect timeout bounds, seconds.
pub const REDIRECT_TIMEOUT_SECS: std::ops::RangeInclusive<u32> = 15..=90;

const MODALITIES: [&str; 5] = [
    "audio",
    "video",
    "videoBasedScreenSharing",
    "data",
    "unknown",
];
const REJECT_REASONS: [&str; 3] = ["none", "busy", "forbidden"];
const APP_HOSTED: &str = "#microsoft.graph.appHostedMediaConfig";
const SERVICE_HOSTED: &str = "#microsoft.graph.serviceHostedMediaConfig";

/// Parses the raw body into a JSON object (an empty body is refused).
pub fn object(body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Invalid(
            "The request body is empty; a JSON object is required.".into(),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Invalid("The request body must be a JSON object.".into())),
        Err(e) => Err(Invalid(format!("The request body is not valid JSON: {e}."))),
    }
}

/// Validates an answer body (reference §1).
pub fn answer(body: &Map<String, Value>) -> Result<AnswerBody, Invalid> {
    let callback_uri = callback_uri(body)?;
    let modalities = match get(body, "acceptedModalities") {
        None | Some(Value::Null) => {
            return Err(Invalid("acceptedModalities is required.".into()));
        }
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(Invalid("acceptedModalities must not be empty.".into()));
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|m| {
                m.as_str()
                    .and_then(|s| canonical(s, &MODALITIES))
                    .map(str::to_owned)
                    .ok_or_else(|| Invalid(format!("acceptedModalities: unknown modality {m}.")))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(Invalid("acceptedModalities must be an array.".into())),
    };
    let media_config = match get(body, "mediaConfig") {
        None | Some(Value::Null) => return Err(Invalid("mediaConfig is required.".into())),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Invalid("mediaConfig must be an object.".into())),
    };
    let blob = get(media_config, "blob");
    let media_config_type = match get(media_config, "@odata.type").and_then(Value::as_str) {
        Some(t) if odata_is(t, APP_HOSTED) => APP_HOSTED,
        Some(t) if odata_is(t, SERVICE_HOSTED) => SERVICE_HOSTED,
        Some(t) => {
            return Err(Invalid(format!(
                "mediaConfig: unsupported @odata.type {t:?}."
            )));
        }
        None if blob.is_some() => APP_HOSTED,
        None => SERVICE_HOSTED,
    };
    if media_config_type == APP_HOSTED {
        match blob {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => {
                return Err(Invalid(
                    "mediaConfig.blob is required for appHostedMediaConfig.".into(),
                ));
            }
        }
    }
    if let Some(c) = get(body, "participantCapacity")
        && !c.is_null()
        && int(c).is_none_or(|n| n < 0)
    {
        return Err(Invalid(
            "participantCapacity must be a non-negative integer.".into(),
        ));
    }
    Ok(AnswerBody {
        callback_uri,
        modalities,
        media_config_type: media_config_type.to_owned(),
        typed: typed(body, "answer")?,
    })
}

/// Validates a reject body (reference §2.1).
pub fn reject(body: &Map<String, Value>) -> Result<RejectBody, Invalid> {
    let callback_uri = callback_uri(body)?;
    let reason = match get(body, "reason") {
        None | Some(Value::Null) => "none",
        Some(Value::String(s)) => canonical(s, &REJECT_REASONS)
            .ok_or_else(|| Invalid(format!("reason: unknown reject reason {s:?}.")))?,
        Some(other) => return Err(Invalid(format!("reason: expected a string, got {other}."))),
    };
    Ok(RejectBody {
        reason: reason.to_owned(),
        callback_uri,
        typed: typed(body, "reject")?,
    })
}

/// Validates a redirect body (reference §2.2).
pub fn redirect(body: &Map<String, Value>) -> Result<RedirectBody, Invalid> {
    let callback_uri = callback_uri(body)?;
    let targets = match get(body, "targets") {
        Some(Value::Array(t)) => t,
        None | Some(Value::Null) => return Err(Invalid("targets is required.".into())),
        Some(_) => return Err(Invalid("targets must be an array.".into())),
    };
    if targets.is_empty() || targets.len() > MAX_REDIRECT_TARGETS {
        return Err(Invalid(format!(
            "targets must hold 1 to {MAX_REDIRECT_TARGETS} entries, got {}.",
            targets.len()
        )));
    }
    for (i, t) in targets.iter().enumerate() {
        let has_identity = t
            .as_object()
            .and_then(|o| get(o, "identity"))
            .and_then(Value::as_object)
            .is_some_and(|id| id.iter().any(|(k, v)| !k.starts_with('@') && v.is_object()));
        if !has_identity {
            return Err(Invalid(format!("targets[{i}].identity is required.")));
        }
    }
    let timeout = match get(body, "timeout") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let secs = int(v)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| REDIRECT_TIMEOUT_SECS.contains(n))
                .ok_or_else(|| Invalid(format!("timeout must be 15 to 90 seconds, got {v}.")))?;
            Some(secs)
        }
    };
    Ok(RedirectBody {
        targets: targets.len(),
        timeout,
        callback_uri,
        typed: typed(body, "redirect")?,
    })
}

/// Property lookup: exact name first, then case-insensitive (SDKs differ in casing).
pub fn get<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Reads the (already checked) body through the graph wire model.
fn typed<T: DeserializeOwned>(body: &Map<String, Value>, what: &str) -> Result<T, Invalid> {
    serde_json::from_value(Value::Object(body.clone()))
        .map_err(|e| Invalid(format!("The {what} body is malformed: {e}.")))
}

/// The optional `callbackUri`: an absolute `https` URL.
fn callback_uri(body: &Map<String, Value>) -> Result<Option<String>, Invalid> {
    match get(body, "callbackUri") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match url::Url::parse(s) {
            Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(Some(s.clone())),
            _ => Err(Invalid(format!(
                "callbackUri must be an absolute https URL, got {s:?}."
            ))),
        },
        Some(other) => Err(Invalid(format!(
            "callbackUri must be a string, got {other}."
        ))),
    }
}

/// The canonical spelling of `value` among `allowed`, compared case-insensitively.
fn canonical<'a>(value: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(value))
        .copied()
}

/// `#microsoft.graph.x` matches `#microsoft.graph.x`, `microsoft.graph.x`, any casing.
fn odata_is(value: &str, canonical: &str) -> bool {
    value
        .trim_start_matches('#')
        .eq_ignore_ascii_case(canonical.trim_start_matches('#'))
}

/// An integer, also from a numeric string (`"30"`).
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn accepts_a_documented_answer() {
        let a = answer(&obj(json!({
            "callbackUri": "https://bot.example.com/api/calls/vm-3",
            "acceptedModalities": ["audio"],
            "mediaConfig": {"@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": "x"},
            "callOptions": {"@odata.type": "#microsoft.graph.incomingCallOptions", "isDeltaRosterEnabled": true},
            "participantCapacity": 200
        })))
        .unwrap();
        assert_eq!(a.modalities, ["audio"]);
        assert_eq!(
            a.callback_uri.as_deref(),
            Some("https://bot.example.com/api/calls/vm-3")
        );
    }

    #[test]
    fn accepts_sdk_style_answer() {
        // PascalCase enum values, extra fields, type without '#', string numbers.
        let a = answer(&obj(json!({
            "@odata.type": "#microsoft.graph.answerPostRequestBody",
            "AcceptedModalities": ["Audio", "VIDEO"],
            "mediaConfig": {"@odata.type": "microsoft.graph.AppHostedMediaConfig", "blob": "{}"},
            "participantCapacity": "100",
            "additionalData": {}
        })))
        .unwrap();
        assert_eq!(a.modalities, ["audio", "video"]);
        assert_eq!(a.media_config_type, APP_HOSTED);
        assert_eq!(a.typed.participant_capacity, Some(100));
    }

    #[test]
    fn answer_errors_name_the_property() {
        let cases = [
            (
                json!({"mediaConfig": {"blob": "x"}}),
                "acceptedModalities is required",
            ),
            (
                json!({"acceptedModalities": [], "mediaConfig": {"blob": "x"}}),
                "must not be empty",
            ),
            (
                json!({"acceptedModalities": ["smell"], "mediaConfig": {"blob": "x"}}),
                "unknown modality",
            ),
            (
                json!({"acceptedModalities": ["audio"]}),
                "mediaConfig is required",
            ),
            (
                json!({"acceptedModalities": ["audio"], "mediaConfig": {"@odata.type": "#microsoft.graph.appHostedMediaConfig"}}),
                "blob is required",
            ),
            (
                json!({"acceptedModalities": ["audio"], "mediaConfig": {"blob": "x"}, "callbackUri": "http://bot/cb"}),
                "https",
            ),
            (
                json!({"acceptedModalities": ["audio"], "mediaConfig": {"blob": "x"}, "callbackUri": "/relative"}),
                "https",
            ),
        ];
        for (body, want) in cases {
            let err = answer(&obj(body.clone())).unwrap_err();
            assert!(err.0.contains(want), "{body}: {err}");
        }
    }

    #[test]
    fn service_hosted_needs_no_blob() {
        let a = answer(&obj(
            json!({"acceptedModalities": ["audio"], "mediaConfig": {}}),
        ))
        .unwrap();
        assert_eq!(a.media_config_type, SERVICE_HOSTED);
    }

    #[test]
    fn reject_reasons() {
        assert_eq!(
            reject(&obj(json!({"reason": "Busy"}))).unwrap().reason,
            "busy"
        );
        assert_eq!(reject(&obj(json!({}))).unwrap().reason, "none");
        assert!(reject(&obj(json!({"reason": "bored"}))).is_err());
    }

    #[test]
    fn redirect_limits() {
        let target = json!({"identity": {"@odata.type": "#microsoft.graph.identitySet", "phone": {"id": "+1"}}});
        let ok = redirect(&obj(json!({"targets": [target.clone()], "timeout": "30"}))).unwrap();
        assert_eq!((ok.targets, ok.timeout), (1, Some(30)));
        let many: Vec<Value> = (0..26).map(|_| target.clone()).collect();
        assert!(redirect(&obj(json!({"targets": many}))).is_err());
        assert!(redirect(&obj(json!({"targets": []}))).is_err());
        assert!(redirect(&obj(json!({"targets": [target.clone()], "timeout": 14}))).is_err());
        assert!(redirect(&obj(json!({"targets": [target], "timeout": 91}))).is_err());
        assert!(redirect(&obj(json!({"targets": [{"identity": {}}]}))).is_err());
    }

    #[test]
    fn bodies_that_are_not_objects() {
        assert!(object(b"").is_err());
        assert!(object(b"[1]").is_err());
        assert!(object(b"{\"a\":").is_err());
        assert!(object(b"{}").is_ok());
    }
}
