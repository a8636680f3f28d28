//! Session ids and bearer tokens: random, unguessable, and compared in constant time.
//!
//! A [`SessionToken`] is 256 random bits from the operating system's CSPRNG (aws-lc-rs), written
//! as unpadded base64url (43 characters). The host keeps only its SHA-256 ([`TokenHash`]) and
//! compares presented tokens against it in constant time, so neither a memory dump of the
//! registry nor response timing gives a token away.

use std::fmt;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Random bytes in a freshly generated token (256 bits; the blob format asks for ≥ 128).
pub const TOKEN_BYTES: usize = 32;
/// Fewest random bytes a token read from a blob may carry (128 bits).
pub const MIN_TOKEN_BYTES: usize = 16;
/// Longest token accepted from the network, in characters (anything longer is not ours).
pub const MAX_TOKEN_CHARS: usize = 512;

/// Identifies one media session: a lowercase hyphenated UUID v4, used in the session's URL.
#[derive(Clone, Debug, Deserialize, Eq, Hash, Ord, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Reads an id from a URL path segment or a blob: any UUID, normalized to lowercase
    /// hyphenated form. `None` for anything else (the caller answers 404).
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::try_parse(s)
            .ok()
            .map(|u| Self(u.hyphenated().to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A single-use bearer token for one media session (base64url, no padding).
///
/// `Debug` does not print it.
#[derive(Clone, Deserialize, Eq, PartialEq, Serialize)]
#[serde(transparent)]
pub struct SessionToken(String);

impl SessionToken {
    /// [`TOKEN_BYTES`] fresh random bytes from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        // aws-lc's system RNG fails only if the OS has no entropy source at all; a host
        // without one cannot issue secrets, so this is a broken environment, not bad input.
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("operating system random number generator");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Reads a token from a blob: unpadded base64url of at least [`MIN_TOKEN_BYTES`] bytes.
    ///
    /// # Errors
    /// A static reason when the text is not such a token.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.len() > MAX_TOKEN_CHARS {
            return Err("token is too long");
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "token is not unpadded base64url")?;
        if bytes.len() < MIN_TOKEN_BYTES {
            return Err("token carries fewer than 128 random bits");
        }
        Ok(Self(s.to_owned()))
    }

    /// The token as sent in `Authorization: Bearer …`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the registry stores instead of the token.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

/// SHA-256 of a token: what the registry keeps.
#[derive(Clone, Copy, Eq, PartialEq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes `token` (any text; the network's bytes are fine).
    pub fn of(token: &str) -> Self {
        let d = digest(&SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }

    /// True when `presented` is the token this is the hash of. Hashes `presented` and compares
    /// the digests in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        if presented.len() > MAX_TOKEN_CHARS {
            return false;
        }
        verify_slices_are_equal(&Self::of(presented).0, &self.0).is_ok()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_distinct_and_parse_back() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert_eq!(SessionToken::parse(a.as_str()), Ok(a.clone()));
        assert_eq!(format!("{a:?}"), "SessionToken(…)");
    }

    #[test]
    fn short_or_non_base64url_tokens_are_refused() {
        assert!(SessionToken::parse("c2hvcnQ").is_err());
        assert!(SessionToken::parse("not base64 at all!!!!!!!!!!!!").is_err());
        assert!(SessionToken::parse("AAAAAAAAAAAAAAAAAAAAAA==").is_err());
        assert!(SessionToken::parse(&"A".repeat(600)).is_err());
        assert!(SessionToken::parse("AAAAAAAAAAAAAAAAAAAAAA").is_ok());
    }

    #[test]
    fn hash_matches_only_the_token() {
        let t = SessionToken::generate();
        let h = t.hash();
        assert!(h.matches(t.as_str()));
        assert!(!h.matches(""));
        assert!(!h.matches(&t.as_str()[1..]));
        assert!(!h.matches(SessionToken::generate().as_str()));
    }

    #[test]
    fn session_ids_are_uuids_normalized_to_lowercase() {
        let id = SessionId::generate();
        assert_eq!(SessionId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(
            SessionId::parse(&id.as_str().to_uppercase()),
            Some(id.clone())
        );
        assert_eq!(SessionId::parse("../../etc/passwd"), None);
        assert_eq!(SessionId::parse(""), None);
    }
}
