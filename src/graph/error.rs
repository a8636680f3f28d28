//! `GraphModelError`: why a body could not be read as a Graph calling payload.
//!
//! Messages are short and safe to return to the sender in a 400 response: they name the
//! position or the kind of mismatch, truncated, never a stack of internal context.

use thiserror::Error;

/// Longest message detail kept from the JSON parser.
const MAX_DETAIL: usize = 160;

/// A Graph payload that could not be parsed.
#[derive(Clone, Debug, Eq, Error, PartialEq)]
#[non_exhaustive]
pub enum GraphModelError {
    /// Not JSON: a syntax error at the given position.
    #[error("malformed JSON at line {line} column {column}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The body ended in the middle of a JSON value.
    #[error("truncated JSON")]
    Eof,
    /// Valid JSON of the wrong shape (wrong type, missing required property, too deep, …).
    #[error("invalid {what}: {detail}")]
    Shape {
        /// What was being read (`commsNotifications`, `call`, …).
        what: &'static str,
        /// The parser's description, truncated.
        detail: String,
    },
    /// A legacy (Skype-format) notification: reply 204 so the platform resends it in Graph format.
    #[error("legacy Skype-format notification")]
    LegacyFormat,
}

impl GraphModelError {
    /// Classifies a `serde_json` error met while reading `what`.
    pub fn from_json(what: &'static str, e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax => Self::Syntax {
                line: e.line(),
                column: e.column(),
            },
            Category::Eof => Self::Eof,
            Category::Data | Category::Io => Self::Shape {
                what,
                detail: truncate(&e.to_string()),
            },
        }
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_DETAIL {
        return s.to_owned();
    }
    let mut end = MAX_DETAIL;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        let e = serde_json::from_str::<serde_json::Value>("{\"a\":").unwrap_err();
        assert_eq!(GraphModelError::from_json("x", &e), GraphModelError::Eof);
        let e = serde_json::from_str::<serde_json::Value>("{x}").unwrap_err();
        assert!(matches!(
            GraphModelError::from_json("x", &e),
            GraphModelError::Syntax { line: 1, .. }
        ));
        let e = serde_json::from_str::<Vec<u8>>(&format!("\"{}\"", "é".repeat(400))).unwrap_err();
        let GraphModelError::Shape { detail, .. } = GraphModelError::from_json("x", &e) else {
            panic!("expected shape error");
        };
        assert!(detail.len() <= MAX_DETAIL + '…'.len_utf8());
    }
}
