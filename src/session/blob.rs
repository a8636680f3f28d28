//! The media session descriptor, version 1: what `appHostedMediaConfig.blob` carries.
//!
//! ```json
//! {"v":1,"sessionId":"4f1c…","negotiateUri":"https://bot.example.com:8445/media/v1/sessions/4f1c…",
//!  "token":"<base64url, ≥ 128 random bits, single use>",
//!  "audio":{"codec":"opus","clockRate":48000,"ptime":20},"expiresAt":"2026-11-27T10:00:00Z"}
//! ```
//!
//! Writing is canonical (this key order, RFC 3339 UTC seconds). Reading is strict about what
//! matters and lenient about the rest:
//! - `v` must be present and be `1`; anything else is [`BlobError::UnsupportedVersion`] (a
//!   reader must not guess at a format it does not know);
//! - every v1 field must be present and well formed: `negotiateUri` an absolute `https` (or
//!   `http`) URL, `token` unpadded base64url of at least 16 bytes, `audio.codec` `opus` at
//!   48 kHz, `expiresAt` RFC 3339;
//! - unknown fields, at the top level or in `audio`, are ignored (a v1.x writer may add some).

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::token::{SessionId, SessionToken};

/// The blob version this module writes and reads.
pub const BLOB_VERSION: u64 = 1;
/// Path prefix of session resources: `negotiateUri` is `{base}{NEGOTIATE_PATH}/{sessionId}`.
pub const NEGOTIATE_PATH: &str = "/media/v1/sessions";
/// Longest blob accepted by [`MediaSessionBlob::parse`], in bytes.
pub const MAX_BLOB_BYTES: usize = 8 * 1024;

/// Why a blob could not be read.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum BlobError {
    /// Not a JSON object (or longer than [`MAX_BLOB_BYTES`]).
    #[error("blob is not a JSON object: {0}")]
    NotJson(String),
    /// No `v` field.
    #[error("blob has no version field \"v\"")]
    MissingVersion,
    /// A `v` other than 1 (the JSON text of the value found).
    #[error("unsupported blob version {0} (this reader knows v1)")]
    UnsupportedVersion(String),
    /// A v1 field missing or of the wrong JSON type (serde's message names it).
    #[error("invalid v1 blob: {0}")]
    Invalid(String),
    /// A field present but unusable.
    #[error("invalid blob field {field}: {reason}")]
    BadField {
        /// The field's JSON name.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// The audio the session carries.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioSpec {
    /// Codec name: `opus`.
    pub codec: String,
    /// RTP clock rate: 48000.
    pub clock_rate: u32,
    /// Packet duration in milliseconds: 20.
    pub ptime: u32,
}

impl Default for AudioSpec {
    /// Opus, 48 kHz, 20 ms: the only audio this host sends.
    fn default() -> Self {
        Self {
            codec: "opus".into(),
            clock_rate: 48_000,
            ptime: 20,
        }
    }
}

/// A media session descriptor (blob v1).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct MediaSessionBlob {
    /// The session's id (also the last segment of `negotiate_uri`).
    pub session_id: SessionId,
    /// Where to `POST` the SDP offer.
    pub negotiate_uri: String,
    /// The bearer token for the offer (and for `DELETE`).
    pub token: SessionToken,
    /// What audio flows.
    pub audio: AudioSpec,
    /// After this instant the session can no longer be negotiated (whole seconds, UTC).
    pub expires_at: SystemTime,
}

impl MediaSessionBlob {
    /// A blob for a session, its URI under `base` (scheme, host and port, e.g.
    /// `https://bot.example.com:8445`; a trailing `/` is ignored). `expires_at` is rounded
    /// down to whole seconds, as it is written.
    pub fn new(
        session_id: &SessionId,
        token: &SessionToken,
        base: &str,
        expires_at: SystemTime,
    ) -> Self {
        Self {
            session_id: session_id.clone(),
            negotiate_uri: negotiate_uri(base, session_id),
            token: token.clone(),
            audio: AudioSpec::default(),
            expires_at: whole_seconds(expires_at),
        }
    }

    /// The JSON text for `appHostedMediaConfig.blob`.
    pub fn to_json(&self) -> String {
        let wire = Wire {
            v: BLOB_VERSION,
            session_id: self.session_id.as_str(),
            negotiate_uri: &self.negotiate_uri,
            token: self.token.as_str(),
            audio: &self.audio,
            expires_at: humantime::format_rfc3339_seconds(self.expires_at).to_string(),
        };
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string(&wire).expect("blob serializes")
    }

    /// Reads a blob (see the module docs for what is checked).
    ///
    /// # Errors
    /// A [`BlobError`] naming what is wrong. Never panics, whatever the text.
    pub fn parse(text: &str) -> Result<Self, BlobError> {
        if text.len() > MAX_BLOB_BYTES {
            return Err(BlobError::NotJson(format!(
                "{} bytes, more than {MAX_BLOB_BYTES}",
                text.len()
            )));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| BlobError::NotJson(e.to_string()))?;
        let Value::Object(map) = &value else {
            return Err(BlobError::NotJson("not an object".into()));
        };
        match map.get("v") {
            None => return Err(BlobError::MissingVersion),
            Some(v) if v.as_u64() == Some(BLOB_VERSION) => {}
            Some(v) => return Err(BlobError::UnsupportedVersion(v.to_string())),
        }
        let wire: WireIn =
            serde_json::from_value(value).map_err(|e| BlobError::Invalid(e.to_string()))?;
        let session_id = SessionId::parse(&wire.session_id).ok_or(BlobError::BadField {
            field: "sessionId",
            reason: "not a UUID",
        })?;
        check_uri(&wire.negotiate_uri)?;
        let token = SessionToken::parse(&wire.token).map_err(|reason| BlobError::BadField {
            field: "token",
            reason,
        })?;
        if !wire.audio.codec.eq_ignore_ascii_case("opus") {
            return Err(BlobError::BadField {
                field: "audio.codec",
                reason: "only opus is defined",
            });
        }
        if wire.audio.clock_rate != 48_000 {
            return Err(BlobError::BadField {
                field: "audio.clockRate",
                reason: "opus runs at 48000",
            });
        }
        if !(1..=120).contains(&wire.audio.ptime) {
            return Err(BlobError::BadField {
                field: "audio.ptime",
                reason: "outside 1..=120 ms",
            });
        }
        let expires_at =
            humantime::parse_rfc3339_weak(&wire.expires_at).map_err(|_| BlobError::BadField {
                field: "expiresAt",
                reason: "not an RFC 3339 date-time",
            })?;
        Ok(Self {
            session_id,
            negotiate_uri: wire.negotiate_uri,
            token,
            audio: AudioSpec {
                codec: wire.audio.codec.to_ascii_lowercase(),
                ..wire.audio
            },
            expires_at,
        })
    }
}

/// `{base}/media/v1/sessions/{id}` (a trailing `/` on `base` is ignored).
pub fn negotiate_uri(base: &str, session_id: &SessionId) -> String {
    format!(
        "{}{NEGOTIATE_PATH}/{session_id}",
        base.trim_end_matches('/')
    )
}

fn check_uri(uri: &str) -> Result<(), BlobError> {
    let bad = |reason| BlobError::BadField {
        field: "negotiateUri",
        reason,
    };
    let url = url::Url::parse(uri).map_err(|_| bad("not an absolute URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("scheme is not https or http"));
    }
    if url.host().is_none() {
        return Err(bad("no host"));
    }
    Ok(())
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    v: u64,
    session_id: &'a str,
    negotiate_uri: &'a str,
    token: &'a str,
    audio: &'a AudioSpec,
    expires_at: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireIn {
    session_id: String,
    negotiate_uri: String,
    token: String,
    audio: AudioSpec,
    expires_at: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn blob() -> MediaSessionBlob {
        MediaSessionBlob::new(
            &SessionId::generate(),
            &SessionToken::generate(),
            "https://bot.example.com:8445/",
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_500),
        )
    }

    #[test]
    fn writes_the_design_shape_and_reads_it_back() {
        let b = blob();
        let json = b.to_json();
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(
            v["audio"],
            json!({"codec":"opus","clockRate":48000,"ptime":20})
        );
        assert_eq!(
            v["negotiateUri"],
            format!(
                "https://bot.example.com:8445/media/v1/sessions/{}",
                b.session_id
            )
        );
        assert_eq!(v["expiresAt"], "2026-11-18T11:06:40Z");
        assert_eq!(v["token"], b.token.as_str());
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 6);
        assert!(json.starts_with(r#"{"v":1,"sessionId":"#));
        assert_eq!(MediaSessionBlob::parse(&json), Ok(b));
    }

    fn with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut v: Value = serde_json::from_str(&blob().to_json()).unwrap();
        f(v.as_object_mut().unwrap());
        v.to_string()
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let text = with(|m| {
            m.insert("future".into(), json!({"x": [1, 2]}));
            m["audio"]
                .as_object_mut()
                .unwrap()
                .insert("channels".into(), json!(1));
        });
        assert!(MediaSessionBlob::parse(&text).is_ok());
    }

    #[test]
    fn versions_other_than_1_are_refused_clearly() {
        let two = with(|m| {
            m.insert("v".into(), json!(2));
        });
        assert_eq!(
            MediaSessionBlob::parse(&two),
            Err(BlobError::UnsupportedVersion("2".into()))
        );
        let text = with(|m| {
            m.insert("v".into(), json!("1"));
        });
        assert_eq!(
            MediaSessionBlob::parse(&text),
            Err(BlobError::UnsupportedVersion("\"1\"".into()))
        );
        let none = with(|m| {
            m.remove("v");
        });
        assert_eq!(
            MediaSessionBlob::parse(&none),
            Err(BlobError::MissingVersion)
        );
        assert!(
            BlobError::UnsupportedVersion("2".into())
                .to_string()
                .contains("version 2")
        );
    }

    #[test]
    fn missing_or_bad_fields_are_named() {
        let no_token = with(|m| {
            m.remove("token");
        });
        let Err(BlobError::Invalid(msg)) = MediaSessionBlob::parse(&no_token) else {
            panic!("expected Invalid");
        };
        assert!(msg.contains("token"), "{msg}");
        let cases: [(&str, Value, &str); 7] = [
            ("token", json!("c2hvcnQ"), "token"),
            ("negotiateUri", json!("/relative/path"), "negotiateUri"),
            ("negotiateUri", json!("ftp://h/x"), "negotiateUri"),
            ("sessionId", json!("x"), "sessionId"),
            ("expiresAt", json!("tomorrow"), "expiresAt"),
            (
                "audio",
                json!({"codec":"pcmu","clockRate":8000,"ptime":20}),
                "audio.codec",
            ),
            (
                "audio",
                json!({"codec":"opus","clockRate":16000,"ptime":20}),
                "audio.clockRate",
            ),
        ];
        for (key, value, field) in cases {
            let text = with(|m| {
                m.insert(key.into(), value.clone());
            });
            match MediaSessionBlob::parse(&text) {
                Err(BlobError::BadField { field: f, .. }) => assert_eq!(f, field, "{key}"),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "null",
            "[]",
            "\"blob\"",
            "{",
            "{\"v\":1}",
            "{\"v\":1e400}",
            "{\"v\":-1}",
            "{\"v\":1,\"audio\":[]}",
        ] {
            assert!(MediaSessionBlob::parse(text).is_err(), "{text}");
        }
        let huge = format!("{{\"v\":1,\"x\":\"{}\"}}", "a".repeat(MAX_BLOB_BYTES));
        assert!(matches!(
            MediaSessionBlob::parse(&huge),
            Err(BlobError::NotJson(_))
        ));
    }
}
