//! Graph calling enums, read case-insensitively and written in lowerCamelCase.
//!
//! The docs spell enum values in lowerCamelCase (`incoming`, `sendReceive`), the .NET SDK logs
//! PascalCase (`Incoming`, `SendReceive`); both parse to the same variant. Every enum has
//! Graph's `unknownFutureValue` sentinel and an `Other(String)` catch-all that keeps a value this
//! crate does not know, so a new service-side value never fails a whole notification.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

macro_rules! graph_enum {
    (
        $(#[$m:meta])*
        $name:ident { $($variant:ident = $wire:literal),+ $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Clone, Debug, Eq, Hash, PartialEq)]
        pub enum $name {
            $(
                #[doc = concat!("`", $wire, "`")]
                $variant,
            )+
            /// `unknownFutureValue`: Graph's evolvable-enum sentinel.
            UnknownFutureValue,
            /// A value this crate does not know, kept as received.
            Other(String),
        }

        impl $name {
            /// The canonical (lowerCamelCase) wire spelling; `Other` gives back what was read.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::UnknownFutureValue => "unknownFutureValue",
                    Self::Other(s) => s,
                }
            }

            /// Parses a wire value case-insensitively; unknown values become `Other`.
            pub fn parse(s: &str) -> Self {
                $(
                    if s.eq_ignore_ascii_case($wire) {
                        return Self::$variant;
                    }
                )+
                if s.eq_ignore_ascii_case("unknownFutureValue") {
                    return Self::UnknownFutureValue;
                }
                Self::Other(s.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::parse(s))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " string"))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::parse(v))
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

graph_enum! {
    /// `callState`: where a call is in its life.
    CallState {
        Incoming = "incoming",
        Establishing = "establishing",
        Ringing = "ringing",
        Established = "established",
        Hold = "hold",
        Transferring = "transferring",
        TransferAccepted = "transferAccepted",
        Redirecting = "redirecting",
        Terminating = "terminating",
        Terminated = "terminated",
    }
}

impl CallState {
    /// `true` for `terminated` (the authoritative end of a call).
    pub fn is_terminated(&self) -> bool {
        matches!(self, Self::Terminated)
    }

    /// `true` for `establishing` or `established` (answered, in either order).
    pub fn is_answered(&self) -> bool {
        matches!(self, Self::Establishing | Self::Established)
    }
}

graph_enum! {
    /// `callDirection`.
    CallDirection {
        Incoming = "incoming",
        Outgoing = "outgoing",
    }
}

graph_enum! {
    /// `changeType` of a `commsNotification`.
    ChangeType {
        Created = "created",
        Updated = "updated",
        Deleted = "deleted",
    }
}

graph_enum! {
    /// `modality` (also `mediaStream.mediaType`).
    Modality {
        Unknown = "unknown",
        Audio = "audio",
        Video = "video",
        VideoBasedScreenSharing = "videoBasedScreenSharing",
        Data = "data",
    }
}

graph_enum! {
    /// `endpointType` of a participant.
    EndpointType {
        Default = "default",
        Voicemail = "voicemail",
        SkypeForBusiness = "skypeForBusiness",
        SkypeForBusinessVoipPhone = "skypeForBusinessVoipPhone",
    }
}

graph_enum! {
    /// `rejectReason` for `call: reject` (and `rejectJoinResponse`).
    RejectReason {
        None = "none",
        Busy = "busy",
        Forbidden = "forbidden",
    }
}

graph_enum! {
    /// `operationStatus` of a `commsOperation`.
    OperationStatus {
        NotStarted = "notStarted",
        Running = "running",
        Completed = "completed",
        Failed = "failed",
    }
}

graph_enum! {
    /// `recordingStatus` (`updateRecordingStatus`, `recordingInfo`).
    RecordingStatus {
        Unknown = "unknown",
        NotRecording = "notRecording",
        Recording = "recording",
        Failed = "failed",
    }
}

graph_enum! {
    /// `mediaDirection` of a `mediaStream`.
    MediaDirection {
        Inactive = "inactive",
        SendOnly = "sendOnly",
        ReceiveOnly = "receiveOnly",
        SendReceive = "sendReceive",
    }
}

graph_enum! {
    /// `mediaState` (`callMediaState.audio`).
    MediaState {
        Active = "active",
        Inactive = "inactive",
    }
}

graph_enum! {
    /// `routingType` of a `callRoute`.
    RoutingType {
        Forwarded = "forwarded",
        Lookup = "lookup",
        SelfFork = "selfFork",
    }
}

graph_enum! {
    /// `routingPolicy` (`call.routingPolicies`, redirect's simulring example).
    RoutingPolicy {
        None = "none",
        NoMissedCall = "noMissedCall",
        DisableForwardingExceptPhone = "disableForwardingExceptPhone",
        DisableForwarding = "disableForwarding",
        PreferSkypeForBusiness = "preferSkypeForBusiness",
    }
}

graph_enum! {
    /// `tone` (DTMF) in `toneInfo` and `sendDtmfTones`.
    Tone {
        Tone0 = "tone0",
        Tone1 = "tone1",
        Tone2 = "tone2",
        Tone3 = "tone3",
        Tone4 = "tone4",
        Tone5 = "tone5",
        Tone6 = "tone6",
        Tone7 = "tone7",
        Tone8 = "tone8",
        Tone9 = "tone9",
        Star = "star",
        Pound = "pound",
        A = "a",
        B = "b",
        C = "c",
        D = "d",
        Flash = "flash",
    }
}

graph_enum! {
    /// Beta `targetDisposition` of a redirect (deprecated; the service infers it).
    TargetDisposition {
        Default = "default",
        SimultaneousRing = "simultaneousRing",
        Forward = "forward",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_case_insensitively_and_write_camel_case() {
        let s: CallState = serde_json::from_str(r##""Terminated""##).unwrap();
        assert_eq!(s, CallState::Terminated);
        let s: CallState = serde_json::from_str(r##""TRANSFERACCEPTED""##).unwrap();
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r##""transferAccepted""##
        );
        let m: Modality = serde_json::from_str(r##""VideoBasedScreenSharing""##).unwrap();
        assert_eq!(m.as_str(), "videoBasedScreenSharing");
    }

    #[test]
    fn unknown_values_are_kept() {
        let s: CallState = serde_json::from_str(r##""parked""##).unwrap();
        assert_eq!(s, CallState::Other("parked".into()));
        assert_eq!(serde_json::to_string(&s).unwrap(), r##""parked""##);
        let u: ChangeType = serde_json::from_str(r##""UnknownFutureValue""##).unwrap();
        assert_eq!(u, ChangeType::UnknownFutureValue);
        assert_eq!(u.to_string(), "unknownFutureValue");
    }

    #[test]
    fn non_strings_are_errors() {
        assert!(serde_json::from_str::<CallState>("3").is_err());
        assert!(serde_json::from_str::<CallState>("null").is_err());
        assert!(
            serde_json::from_str::<Option<CallState>>("null")
                .unwrap()
                .is_none()
        );
    }
}
