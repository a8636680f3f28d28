//! Identifier newtypes for the calling API: call, participant and operation ids.
//!
//! Graph ids are opaque strings (usually GUIDs, sometimes longer); these types only keep them
//! apart in signatures. They serialize as plain strings.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, Deserialize, Eq, Hash, Ord, PartialEq, PartialOrd, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id as received or generated.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

string_id! {
    /// A call id: the `{id}` of `/communications/calls/{id}`.
    CallId
}

string_id! {
    /// A participant id within a call (`myParticipantId`, `participant.id`).
    ParticipantId
}

string_id! {
    /// A long-running operation id: the `{opId}` of `/communications/calls/{id}/operations/{opId}`.
    OperationId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = CallId::new("abc");
        assert_eq!(serde_json::to_string(&id).unwrap(), r##""abc""##);
        let back: CallId = serde_json::from_str(r##""abc""##).unwrap();
        assert_eq!(back, "abc");
        assert_eq!(back.to_string(), "abc");
    }
}
