//! `CallId`: the Graph call id that keys the calls table and appears in every call URL.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id Graph gives a call (`resourceData.id`, or the last segment of `resourceUrl`).
#[derive(Clone, Debug, Deserialize, Eq, Hash, Ord, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct CallId(pub String);

impl CallId {
    /// Wraps a call id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for CallId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for CallId {
    fn from(s: String) -> Self {
        Self(s)
    }
}
