//! `mediaConfig` of answer / create call: app-hosted (the bot hosts media, `blob` describes its
//! media session) or service-hosted (Graph plays prompts, `preFetchMedia`), chosen by
//! `@odata.type` or, when that is missing, by the properties present. Also `mediaInfo`.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::lenient::{self, ODataTag, odata};

/// `mediaConfig`: polymorphic by `@odata.type`.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaConfig {
    /// `#microsoft.graph.appHostedMediaConfig`: the bot hosts the media.
    AppHosted(AppHostedMediaConfig),
    /// `#microsoft.graph.serviceHostedMediaConfig`: Graph hosts the media (IVR).
    ServiceHosted(ServiceHostedMediaConfig),
    /// Another subtype, kept as received (including its `@odata.type`).
    Other(Map<String, Value>),
}

impl MediaConfig {
    /// An app-hosted media config carrying `blob`.
    pub fn app_hosted(blob: impl Into<String>) -> Self {
        Self::AppHosted(AppHostedMediaConfig {
            blob: Some(blob.into()),
            ..AppHostedMediaConfig::default()
        })
    }

    /// A service-hosted media config pre-fetching `media`.
    pub fn service_hosted(media: Vec<MediaInfo>) -> Self {
        Self::ServiceHosted(ServiceHostedMediaConfig {
            pre_fetch_media: Some(media),
            ..ServiceHostedMediaConfig::default()
        })
    }

    /// The app-hosted `blob`, if this is an app-hosted config that has one.
    pub fn blob(&self) -> Option<&str> {
        match self {
            Self::AppHosted(c) => c.blob.as_deref(),
            _ => None,
        }
    }
}

/// `appHostedMediaConfig`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppHostedMediaConfig {
    /// Written as `#microsoft.graph.appHostedMediaConfig`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::app_hosted_media_config"
    )]
    pub odata_type: ODataTag,
    /// Serialized media-session configuration (opaque to Graph; this project defines its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Keep out of the default audio routing group.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub remove_from_default_audio_group: Option<bool>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `serviceHostedMediaConfig`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceHostedMediaConfig {
    /// Written as `#microsoft.graph.serviceHostedMediaConfig`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::service_hosted_media_config"
    )]
    pub odata_type: ODataTag,
    /// Prompts the service should cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_fetch_media: Option<Vec<MediaInfo>>,
    /// Keep out of the default audio routing group.
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub remove_from_default_audio_group: Option<bool>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `mediaInfo`: a prompt file (WAV, mono, 16-bit, 16 kHz) and its cache key.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaInfo {
    /// Written as `#microsoft.graph.mediaInfo`.
    #[serde(rename = "@odata.type", default, serialize_with = "odata::media_info")]
    pub odata_type: ODataTag,
    /// Where the audio is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Cache key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Serialize for MediaConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::AppHosted(c) => c.serialize(s),
            Self::ServiceHosted(c) => c.serialize(s),
            Self::Other(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MediaConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        let app_hosted = match map.get("@odata.type").and_then(Value::as_str) {
            Some(t) if lenient::odata_is(t, "appHostedMediaConfig") => true,
            Some(t) if lenient::odata_is(t, "serviceHostedMediaConfig") => false,
            Some(_) => return Ok(Self::Other(map)),
            None if map.contains_key("blob") => true,
            None if map.contains_key("preFetchMedia") => false,
            None => return Ok(Self::Other(map)),
        };
        let v = Value::Object(map);
        let parsed = if app_hosted {
            serde_json::from_value(v).map(Self::AppHosted)
        } else {
            serde_json::from_value(v).map(Self::ServiceHosted)
        };
        parsed.map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_hosted_is_written_with_its_odata_type() {
        let json = serde_json::to_value(MediaConfig::app_hosted("b")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"@odata.type":"#microsoft.graph.appHostedMediaConfig","blob":"b"})
        );
    }

    #[test]
    fn variant_chosen_by_type_or_properties() {
        let c: MediaConfig = serde_json::from_str(
            r##"{"@odata.type":"#microsoft.graph.serviceHostedMediaConfig","preFetchMedia":[{"uri":"https://x/beep.wav","resourceId":"1D6D"}]}"##,
        )
        .unwrap();
        let MediaConfig::ServiceHosted(s) = &c else {
            panic!("expected service hosted, got {c:?}");
        };
        assert_eq!(
            s.pre_fetch_media.as_ref().unwrap()[0]
                .resource_id
                .as_deref(),
            Some("1D6D")
        );
        let c: MediaConfig =
            serde_json::from_str(r##"{"blob":"x","removeFromDefaultAudioGroup":false}"##).unwrap();
        assert_eq!(c.blob(), Some("x"));
        let c: MediaConfig = serde_json::from_str(r##"{"somethingElse":1}"##).unwrap();
        assert!(matches!(c, MediaConfig::Other(_)));
        assert!(serde_json::from_str::<MediaConfig>(r##""blob""##).is_err());
    }
}
