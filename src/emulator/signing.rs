//! The emulator's token signing keys: RSA-2048 key pairs that sign RS256 JWTs the way the
//! calling service signs its notification tokens, and publish themselves as a JWKS.
//!
//! A [`JwtSigner`] is generated at start (aws-lc-rs, whose RSA code is optimised C even in debug
//! builds: key generation ~50–250 ms, signing < 1 ms, measured in a debug build on a loaded
//! 2-core machine). It signs:
//! - notification tokens ([`JwtSigner::sign_notification_token`] with [`NotificationClaims`]:
//!   `iss` `https://api.botframework.com`, `aud` the bot's app id, `tid`, `iat`, `nbf`, `exp`
//!   ≈ 65 minutes — every field can be changed or removed for tests);
//! - anything else ([`JwtSigner::sign_claims`], [`JwtSigner::sign_with_header`]), e.g. the
//!   identity service's access tokens, which it checks back with [`JwtSigner::verify`].
//!
//! [`jwks`] and [`openid_configuration`] produce the documents the bot fetches
//! (the `api.aps.skype.com` shapes, see reference §5.1).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The issuer the calling service puts in notification tokens.
pub const NOTIFICATION_ISSUER: &str = "https://api.botframework.com";

/// Lifetime of a notification token as seen in real ones (`exp - nbf`).
pub const NOTIFICATION_TOKEN_LIFETIME: Duration = Duration::from_secs(65 * 60);

/// Errors of key generation, signing and verification.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigningError {
    /// The RSA key pair could not be generated.
    #[error("cannot generate an RSA-2048 key pair")]
    KeyGeneration,
    /// Header or claims could not be serialised.
    #[error("cannot serialise the token: {0}")]
    Serialize(String),
    /// The RSA signing operation failed.
    #[error("RSA signing failed")]
    Sign,
    /// The token is not three base64url parts with a JSON header and claims.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not `RS256`.
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(String),
    /// The signature does not verify with this key (or `kid` names another key).
    #[error("bad signature")]
    BadSignature,
}

/// Claims of a notification token. Every field is public so tests can forge any variant:
/// `tid: None` drops the claim, `exp` in the past makes an expired token, and `extra` adds
/// anything else.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub struct NotificationClaims {
    /// Issuer (`https://api.botframework.com`).
    pub iss: String,
    /// Audience: the bot's Microsoft App ID.
    pub aud: String,
    /// Tenant of the call; `None` omits the claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// Issued at (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expiry (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Further claims, written as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NotificationClaims {
    /// Claims like the calling service's for `app_id` and `tenant_id`, valid from `now` for
    /// [`NOTIFICATION_TOKEN_LIFETIME`].
    pub fn new(app_id: &str, tenant_id: &str, now: SystemTime) -> Self {
        let now = unix_seconds(now);
        Self {
            iss: NOTIFICATION_ISSUER.to_owned(),
            aud: app_id.to_owned(),
            tid: Some(tenant_id.to_owned()),
            iat: Some(now),
            nbf: Some(now),
            exp: Some(now + NOTIFICATION_TOKEN_LIFETIME.as_secs() as i64),
            extra: Map::new(),
        }
    }
}

/// An RSA-2048 signing key with its `kid`.
#[derive(Debug)]
pub struct JwtSigner {
    kid: String,
    key: KeyPair,
    n: Vec<u8>,
    e: Vec<u8>,
    /// Base64 (standard) DER of a self-signed certificate for the key, for `x5c`.
    x5c: Option<String>,
    /// `x5t`: base64url SHA-1 of that certificate.
    x5t: Option<String>,
}

impl JwtSigner {
    /// Generates a key with a random `kid`.
    pub fn generate() -> Result<Self, SigningError> {
        Self::generate_with_kid(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Generates a key with the given `kid`.
    pub fn generate_with_kid(kid: impl Into<String>) -> Result<Self, SigningError> {
        let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| SigningError::KeyGeneration)?;
        let public = key.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let cert = self_signed_der(&key);
        let x5t = cert.as_ref().map(|der| {
            let digest =
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
            URL_SAFE_NO_PAD.encode(digest.as_ref())
        });
        Ok(Self {
            kid: kid.into(),
            key,
            n,
            e,
            x5c: cert.map(|der| STANDARD.encode(der)),
            x5t,
        })
    }

    /// The key id written in token headers and the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs a notification token (header `{"alg":"RS256","typ":"JWT","kid":…,"x5t":…}`).
    pub fn sign_notification_token(
        &self,
        claims: &NotificationClaims,
    ) -> Result<String, SigningError> {
        self.sign_claims(claims)
    }

    /// Signs any claims with the standard RS256 header for this key.
    pub fn sign_claims(&self, claims: &impl Serialize) -> Result<String, SigningError> {
        let mut header = json!({ "alg": "RS256", "typ": "JWT", "kid": self.kid });
        if let (Some(x5t), Some(obj)) = (&self.x5t, header.as_object_mut()) {
            obj.insert("x5t".into(), Value::String(x5t.clone()));
        }
        self.sign_with_header(&header, claims)
    }

    /// Signs with this key (RSASSA-PKCS1-v1_5 SHA-256) whatever `header` says — tests use it
    /// to forge headers (another `kid`, a lying `alg`).
    pub fn sign_with_header(
        &self,
        header: &impl Serialize,
        claims: &impl Serialize,
    ) -> Result<String, SigningError> {
        let signing_input = signing_input(header, claims)?;
        let mut sig = vec![0; self.key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| SigningError::Sign)?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// Checks an RS256 token signed by this key and returns its claims. Only the signature,
    /// `alg` and (when present) `kid` are checked; claim checks are the caller's.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, SigningError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SigningError::Malformed(
                "expected three dot-separated parts",
            ));
        };
        let header: Map<String, Value> = decode_json(h).ok_or(SigningError::Malformed("header"))?;
        match header.get("alg").and_then(Value::as_str) {
            Some("RS256") => {}
            other => return Err(SigningError::Algorithm(other.unwrap_or("").to_owned())),
        }
        if let Some(kid) = header.get("kid").and_then(Value::as_str)
            && kid != self.kid
        {
            return Err(SigningError::BadSignature);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| SigningError::Malformed("signature is not base64url"))?;
        let signed = &token[..h.len() + 1 + c.len()];
        PublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &sig,
        )
        .map_err(|_| SigningError::BadSignature)?;
        decode_json(c).ok_or(SigningError::Malformed("claims"))
    }

    /// This key as a JWK: `kty`, `use`, `kid`, `alg`, `n`, `e`, and `x5t`/`x5c` when a
    /// certificate could be made.
    pub fn jwk(&self) -> Value {
        let mut jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
        });
        if let (Some(x5t), Some(x5c), Some(obj)) = (&self.x5t, &self.x5c, jwk.as_object_mut()) {
            obj.insert("x5t".into(), json!(x5t));
            obj.insert("x5c".into(), json!([x5c]));
        }
        jwk
    }
}

/// A JWKS document `{"keys":[…]}` publishing `signers`.
pub fn jwks<'a>(signers: impl IntoIterator<Item = &'a JwtSigner>) -> Value {
    json!({ "keys": signers.into_iter().map(JwtSigner::jwk).collect::<Vec<_>>() })
}

/// The OpenID metadata document in the shape `api.aps.skype.com` publishes.
pub fn openid_configuration(issuer: &str, jwks_uri: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": "https://invalid.botframework.com",
        "jwks_uri": jwks_uri,
        "id_token_signing_alg_values_supported": ["RSA256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    })
}

/// An unsigned token (`{"alg":"none"}`, empty signature) — for tests of rejection.
pub fn unsigned_token(claims: &impl Serialize) -> Result<String, SigningError> {
    Ok(format!(
        "{}.",
        signing_input(&json!({ "alg": "none", "typ": "JWT" }), claims)?
    ))
}

/// Seconds since the Unix epoch (negative before it).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn signing_input(header: &impl Serialize, claims: &impl Serialize) -> Result<String, SigningError> {
    let header = serde_json::to_vec(header).map_err(|e| SigningError::Serialize(e.to_string()))?;
    let claims = serde_json::to_vec(claims).map_err(|e| SigningError::Serialize(e.to_string()))?;
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    ))
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A self-signed certificate for `key` (for `x5c`), or `None` if it cannot be made.
fn self_signed_der(key: &KeyPair) -> Option<Vec<u8>> {
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(key).ok()?;
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_ref());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).ok()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).ok()?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "mediabot emulator notification signing",
    );
    Some(params.self_signed(&kp).ok()?.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_its_own_tokens_only() {
        let a = JwtSigner::generate_with_kid("a").expect("key a");
        let b = JwtSigner::generate_with_kid("b").expect("key b");
        let claims = NotificationClaims::new("app", "tenant", SystemTime::now());
        let token = a.sign_notification_token(&claims).expect("sign");
        let back = a.verify(&token).expect("verify");
        assert_eq!(back.get("tid"), Some(&json!("tenant")));
        assert_eq!(back.get("iss"), Some(&json!(NOTIFICATION_ISSUER)));
        assert_eq!(b.verify(&token), Err(SigningError::BadSignature));
        let forged = b
            .sign_with_header(&json!({"alg":"RS256","kid":"a"}), &claims)
            .expect("sign");
        assert_eq!(a.verify(&forged), Err(SigningError::BadSignature));
        let none = unsigned_token(&claims).expect("unsigned");
        assert_eq!(a.verify(&none), Err(SigningError::Algorithm("none".into())));
    }

    #[test]
    fn jwk_publishes_modulus_exponent_and_certificate() {
        let a = JwtSigner::generate_with_kid("k1").expect("key");
        let jwk = a.jwk();
        assert_eq!(jwk["kid"], "k1");
        assert_eq!(jwk["e"], "AQAB");
        let n = URL_SAFE_NO_PAD
            .decode(jwk["n"].as_str().expect("n"))
            .expect("b64");
        assert_eq!(n.len(), 256);
        assert!(jwk["x5c"][0].is_string(), "{jwk}");
        assert_eq!(jwks([&a])["keys"][0]["kid"], "k1");
    }
}
