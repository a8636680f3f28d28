//! Serde helpers for Graph's loose wire habits: integers sent as strings, booleans sent as
//! strings, and `@odata.type` tags that may be missing when read but are always written.
//!
//! Every reader here accepts what reference §0.2 says real payloads contain and turns anything
//! else into a serde error (never a panic).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};

/// The `@odata.type` annotation of a type whose OData type is fixed by the property holding it.
///
/// Reading ignores the value (or its absence: docs omit it on nested objects); writing emits the
/// canonical `#microsoft.graph.<type>` of the containing struct. Being zero-sized, it never makes
/// two parses of the same data unequal.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, PartialEq)]
pub struct ODataTag;

impl<'de> Deserialize<'de> for ODataTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer)?;
        Ok(Self)
    }
}

/// Generates one `serialize_with` writer per fixed OData type name.
macro_rules! odata_writers {
    ($($fn_name:ident => $name:literal),+ $(,)?) => {
        /// `serialize_with` functions writing a fixed `@odata.type` for an [`ODataTag`] field.
        pub(crate) mod odata {
            use super::ODataTag;
            use serde::Serializer;
            $(
                #[doc = concat!("Writes `", $name, "`.")]
                pub(crate) fn $fn_name<S: Serializer>(_: &ODataTag, s: S) -> Result<S::Ok, S::Error> {
                    s.serialize_str($name)
                }
            )+
        }
    };
}

odata_writers! {
    app_hosted_media_config => "#microsoft.graph.appHostedMediaConfig",
    call => "#microsoft.graph.call",
    call_media_state => "#microsoft.graph.callMediaState",
    call_route => "#microsoft.graph.callRoute",
    chat_info => "#microsoft.graph.chatInfo",
    comms_notification => "#microsoft.graph.commsNotification",
    comms_notifications => "#microsoft.graph.commsNotifications",
    delta_participants => "#microsoft.graph.deltaParticipants",
    identity => "#microsoft.graph.identity",
    identity_set => "#microsoft.graph.identitySet",
    incoming_context => "#microsoft.graph.incomingContext",
    invitation_participant_info => "#microsoft.graph.invitationParticipantInfo",
    join_meeting_id_meeting_info => "#microsoft.graph.joinMeetingIdMeetingInfo",
    media_info => "#microsoft.graph.mediaInfo",
    media_stream => "#microsoft.graph.mediaStream",
    organizer_meeting_info => "#microsoft.graph.organizerMeetingInfo",
    participant => "#microsoft.graph.participant",
    participant_info => "#microsoft.graph.participantInfo",
    recording_info => "#microsoft.graph.recordingInfo",
    removed_state => "#microsoft.graph.removedState",
    result_info => "#microsoft.graph.resultInfo",
    service_hosted_media_config => "#microsoft.graph.serviceHostedMediaConfig",
    token_meeting_info => "#microsoft.graph.tokenMeetingInfo",
    tone_info => "#microsoft.graph.toneInfo",
}

/// Reads an optional `i32` written as a number or a numeric string (`200`, `"200"`, `200.0`).
pub(crate) fn opt_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    match opt_i64(d)? {
        None => Ok(None),
        Some(v) => i32::try_from(v)
            .map(Some)
            .map_err(|_| de::Error::custom("integer out of range for Int32")),
    }
}

/// Reads an optional `i64` written as a number or a numeric string.
pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_any(LenientInt)
}

/// Reads an optional boolean written as `true`/`false` or as the strings `"true"`/`"false"`.
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_any(LenientBool)
}

struct LenientInt;

impl<'de> Visitor<'de> for LenientInt {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer or a string holding an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(Some)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // `as` saturates; the round-trip check rejects fractions, NaN and out-of-range values.
        let i = v as i64;
        if v.is_finite() && (i as f64) == v && v.abs() < 9.0e15 {
            Ok(Some(i))
        } else {
            Err(E::custom("expected an integer"))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse::<i64>()
            .map(Some)
            .map_err(|_| E::custom("expected a string holding an integer"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

struct LenientBool;

impl<'de> Visitor<'de> for LenientBool {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean or a string holding a boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.eq_ignore_ascii_case("true") {
            Ok(Some(true))
        } else if t.eq_ignore_ascii_case("false") {
            Ok(Some(false))
        } else if t.is_empty() {
            Ok(None)
        } else {
            Err(E::custom("expected a boolean"))
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// `true` when `odata_type` names `#microsoft.graph.<name>` (case-insensitive, `#` and namespace
/// optional).
pub(crate) fn odata_is(odata_type: &str, name: &str) -> bool {
    odata_name(odata_type).eq_ignore_ascii_case(name)
}

/// The bare type name of an `@odata.type` value: `#microsoft.graph.call` → `call`.
pub(crate) fn odata_name(odata_type: &str) -> &str {
    let t = odata_type.trim().trim_start_matches('#');
    t.rsplit('.').next().unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct N {
        #[serde(default, deserialize_with = "opt_i32")]
        n: Option<i32>,
        #[serde(default, deserialize_with = "opt_bool")]
        b: Option<bool>,
    }

    fn n(json: &str) -> Result<N, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn integers_are_read_from_numbers_and_strings() {
        assert_eq!(n(r##"{"n":200}"##).unwrap().n, Some(200));
        assert_eq!(n(r##"{"n":"5001"}"##).unwrap().n, Some(5001));
        assert_eq!(n(r##"{"n":" -7 "}"##).unwrap().n, Some(-7));
        assert_eq!(n(r##"{"n":200.0}"##).unwrap().n, Some(200));
        assert_eq!(n(r##"{"n":null}"##).unwrap().n, None);
        assert_eq!(n(r##"{}"##).unwrap().n, None);
    }

    #[test]
    fn bad_integers_are_errors() {
        for bad in [
            r##"{"n":"abc"}"##,
            r##"{"n":1.5}"##,
            r##"{"n":99999999999}"##,
            r##"{"n":18446744073709551615}"##,
            r##"{"n":1e400}"##,
            r##"{"n":"99999999999999999999999"}"##,
            r##"{"n":true}"##,
            r##"{"n":[1]}"##,
        ] {
            assert!(n(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn booleans_are_read_from_strings() {
        assert_eq!(n(r##"{"b":"True"}"##).unwrap().b, Some(true));
        assert_eq!(n(r##"{"b":false}"##).unwrap().b, Some(false));
        assert!(n(r##"{"b":"maybe"}"##).is_err());
    }

    #[test]
    fn odata_names_compare_loosely() {
        assert!(odata_is("#microsoft.graph.call", "call"));
        assert!(odata_is("#Microsoft.Graph.Call", "call"));
        assert!(odata_is("call", "call"));
        assert!(!odata_is("#microsoft.graph.callRoute", "call"));
    }
}
