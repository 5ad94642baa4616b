//! OAUTHBEARER tokens: JWTs signed by a key in a local JWKS file (no network fetch).
//!
//! Fails closed: a token is accepted only if its header names an asymmetric algorithm (RS256/
//! 384/512, PS256/384/512, ES256, ES384; never `none` or HMAC), a key of the JWKS of that type
//! (and that `kid`, when the token names one) verifies its signature, it has an `exp` not past
//! (with `oauthbearer-clock-skew-s` leeway), any `nbf` is reached, `aud` holds an expected
//! audience and `iss` is the expected issuer (when configured), and the principal claim is a
//! non-empty string. Time is passed in (the broker's clock), not read here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::{Mutex, RwLock};

use super::{mtime, SecurityConfig};

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Most keys kept from a JWKS file.
const MAX_KEYS: usize = 256;
/// Largest JWKS file read.
const MAX_JWKS_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OauthError {
    #[error("{path}: {message}")]
    Jwks { path: PathBuf, message: String },
}

/// Why a token was refused (logged; the client only learns that authentication failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too large")]
    TooLarge,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("no key verifies the signature")]
    Signature,
    #[error("token has no exp claim")]
    NoExpiry,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet (nbf)")]
    NotYetValid,
    #[error("audience not accepted")]
    Audience,
    #[error("issuer not accepted")]
    Issuer,
    #[error("no principal claim '{0}'")]
    NoPrincipal(String),
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub principal: String,
    /// `exp`, in milliseconds since the epoch.
    pub expires_at_ms: i64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    Ec,
}

struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    family: Family,
    key: DecodingKey,
}

fn family_of(alg: Algorithm) -> Option<Family> {
    use Algorithm::*;
    match alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(Family::Rsa),
        ES256 | ES384 => Some(Family::Ec),
        _ => None,
    }
}

fn load_keys(path: &Path) -> Result<Vec<Key>, OauthError> {
    let err = |message: String| OauthError::Jwks {
        path: path.to_path_buf(),
        message,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| err(e.to_string()))?
        .len();
    if len > MAX_JWKS_BYTES {
        return Err(err(format!("larger than {MAX_JWKS_BYTES} bytes")));
    }
    let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let set: JwkSet = serde_json::from_slice(&text).map_err(|e| err(format!("not a JWKS: {e}")))?;
    let mut keys = Vec::new();
    for jwk in set.keys.iter().take(MAX_KEYS) {
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Family::Rsa,
            AlgorithmParameters::EllipticCurve(_) => Family::Ec,
            // Symmetric and other keys are never trusted.
            _ => continue,
        };
        let alg = match jwk.common.key_algorithm {
            Some(a) => Some(
                a.to_string()
                    .parse::<Algorithm>()
                    .ok()
                    .filter(|a| family_of(*a) == Some(family))
                    .ok_or_else(|| err(format!("key algorithm {a} not accepted")))?,
            ),
            None => None,
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| err(format!("bad key: {e}")))?;
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            alg,
            family,
            key,
        });
    }
    if keys.is_empty() {
        return Err(err("no RSA or EC key".into()));
    }
    Ok(keys)
}

/// Validates OAUTHBEARER JWTs against a JWKS file (reloadable).
pub struct JwtValidator {
    path: PathBuf,
    keys: RwLock<Arc<Vec<Key>>>,
    loaded_mtime: Mutex<Option<SystemTime>>,
    audience: Vec<String>,
    issuer: Option<String>,
    clock_skew_s: i64,
    principal_claim: String,
}

impl JwtValidator {
    pub fn load(path: &Path, config: &SecurityConfig) -> Result<Self, OauthError> {
        let seen = mtime(path);
        Ok(Self {
            path: path.to_path_buf(),
            keys: RwLock::new(Arc::new(load_keys(path)?)),
            loaded_mtime: Mutex::new(seen),
            audience: config.oauthbearer_expected_audience.clone(),
            issuer: config.oauthbearer_expected_issuer.clone(),
            clock_skew_s: i64::try_from(config.oauthbearer_clock_skew_s).unwrap_or(i64::MAX),
            principal_claim: config.oauthbearer_sub_claim_name.clone(),
        })
    }

    /// Re-reads the JWKS file; on error the old keys stay.
    pub fn reload(&self) -> Result<bool, OauthError> {
        let seen = mtime(&self.path);
        let keys = load_keys(&self.path)?;
        *self.keys.write() = Arc::new(keys);
        *self.loaded_mtime.lock() = seen;
        Ok(true)
    }

    pub fn file_changed(&self) -> bool {
        mtime(&self.path) != *self.loaded_mtime.lock()
    }

    /// Checks `token` at `now_ms`.
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<ValidToken, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let family = family_of(header.alg)
            .ok_or_else(|| TokenError::Algorithm(format!("{:?}", header.alg)))?;
        let mut validation = Validation::new(header.alg);
        // Time, audience and issuer are checked below with the broker's clock and Kafka's rules.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let keys = self.keys.read().clone();
        let claims = keys
            .iter()
            .filter(|k| k.family == family)
            .filter(|k| k.alg.is_none_or(|a| a == header.alg))
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .find_map(|k| {
                jsonwebtoken::decode::<serde_json::Value>(token, &k.key, &validation).ok()
            })
            .ok_or(TokenError::Signature)?
            .claims;
        self.check_claims(&claims, now_ms)
    }

    fn check_claims(
        &self,
        claims: &serde_json::Value,
        now_ms: i64,
    ) -> Result<ValidToken, TokenError> {
        let now_s = now_ms.div_euclid(1000);
        let number = |name: &str| claims.get(name).and_then(|v| v.as_f64());
        let exp = number("exp").ok_or(TokenError::NoExpiry)?;
        if !exp.is_finite() || (exp as i64).saturating_add(self.clock_skew_s) <= now_s {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_f64().ok_or(TokenError::NotYetValid)?;
            if !nbf.is_finite() || (nbf as i64).saturating_sub(self.clock_skew_s) > now_s {
                return Err(TokenError::NotYetValid);
            }
        }
        if !self.audience.is_empty() {
            let ok = match claims.get("aud") {
                Some(serde_json::Value::String(a)) => self.audience.contains(a),
                Some(serde_json::Value::Array(list)) => list
                    .iter()
                    .filter_map(|a| a.as_str())
                    .any(|a| self.audience.iter().any(|want| want == a)),
                _ => false,
            };
            if !ok {
                return Err(TokenError::Audience);
            }
        }
        if let Some(want) = &self.issuer {
            if claims.get("iss").and_then(|v| v.as_str()) != Some(want.as_str()) {
                return Err(TokenError::Issuer);
            }
        }
        let principal = claims
            .get(&self.principal_claim)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TokenError::NoPrincipal(self.principal_claim.clone()))?;
        Ok(ValidToken {
            principal: principal.to_string(),
            expires_at_ms: (exp as i64).saturating_mul(1000),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use base64::Engine;
    use jsonwebtoken::{encode, EncodingKey, Header};

    /// An EC P-256 key pair as (JWKS JSON with kid "k1", signing key).
    pub(crate) fn es256_keys() -> (String, EncodingKey) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let public = key.public_key_raw(); // 0x04 || x || y
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
            "x": B64URL.encode(&public[1..33]), "y": B64URL.encode(&public[33..65]),
        }]});
        let enc = EncodingKey::from_ec_der(&key.serialize_der());
        (jwks.to_string(), enc)
    }

    pub(crate) fn token(enc: &EncodingKey, kid: &str, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_string());
        encode(&header, &claims, enc).expect("encode")
    }

    fn validator(jwks: &str, config: SecurityConfig) -> (tempfile::TempDir, JwtValidator) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks).expect("write");
        let v = JwtValidator::load(&path, &config).expect("load");
        (dir, v)
    }

    const NOW_MS: i64 = 1_700_000_000_000;

    #[test]
    fn a_good_token_names_its_subject() {
        let (jwks, enc) = es256_keys();
        let (_d, v) = validator(
            &jwks,
            SecurityConfig {
                oauthbearer_expected_audience: vec!["weir".into()],
                oauthbearer_expected_issuer: Some("https://idp".into()),
                ..SecurityConfig::default()
            },
        );
        let t = token(
            &enc,
            "k1",
            serde_json::json!({"sub": "alice", "exp": 1_700_000_600, "nbf": 1_699_999_990,
                "aud": ["other", "weir"], "iss": "https://idp"}),
        );
        assert_eq!(
            v.validate(&t, NOW_MS),
            Ok(ValidToken {
                principal: "alice".into(),
                expires_at_ms: 1_700_000_600_000
            })
        );
    }

    #[test]
    fn every_claim_check_fails_closed() {
        let (jwks, enc) = es256_keys();
        let (_d, v) = validator(
            &jwks,
            SecurityConfig {
                oauthbearer_expected_audience: vec!["weir".into()],
                oauthbearer_expected_issuer: Some("idp".into()),
                ..SecurityConfig::default()
            },
        );
        let base =
            serde_json::json!({"sub": "alice", "exp": 1_700_000_600, "aud": "weir", "iss": "idp"});
        let with = |k: &str, val: serde_json::Value| {
            let mut c = base.clone();
            c[k] = val;
            token(&enc, "k1", c)
        };
        let without = |k: &str| {
            let mut c = base.clone();
            c.as_object_mut().expect("object").remove(k);
            token(&enc, "k1", c)
        };
        assert_eq!(
            v.validate(&with("exp", 1_699_999_000.into()), NOW_MS),
            Err(TokenError::Expired)
        );
        assert_eq!(
            v.validate(&without("exp"), NOW_MS),
            Err(TokenError::NoExpiry)
        );
        assert_eq!(
            v.validate(&with("nbf", 1_700_000_100.into()), NOW_MS),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            v.validate(&with("aud", "other".into()), NOW_MS),
            Err(TokenError::Audience)
        );
        assert_eq!(
            v.validate(&without("aud"), NOW_MS),
            Err(TokenError::Audience)
        );
        assert_eq!(
            v.validate(&with("iss", "evil".into()), NOW_MS),
            Err(TokenError::Issuer)
        );
        assert!(matches!(
            v.validate(&without("sub"), NOW_MS),
            Err(TokenError::NoPrincipal(_))
        ));
        // Within the default 30 s skew an expired token still passes; beyond it, it does not.
        assert!(v
            .validate(&with("exp", 1_699_999_990.into()), NOW_MS)
            .is_ok());
    }

    #[test]
    fn signatures_keys_and_algorithms_fail_closed() {
        let (jwks, _) = es256_keys();
        let (_, other_enc) = es256_keys();
        let (_d, v) = validator(&jwks, SecurityConfig::default());
        let claims = serde_json::json!({"sub": "a", "exp": 1_700_000_600});
        assert_eq!(
            v.validate(&token(&other_enc, "k1", claims.clone()), NOW_MS),
            Err(TokenError::Signature)
        );
        // Unsigned and HMAC tokens are refused whatever they say.
        let none = format!(
            "{}.{}.",
            B64URL.encode(r#"{"alg":"none","typ":"JWT"}"#),
            B64URL.encode(claims.to_string())
        );
        assert!(matches!(
            v.validate(&none, NOW_MS),
            Err(TokenError::Malformed(_) | TokenError::Algorithm(_))
        ));
        let hs = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(jwks.as_bytes()),
        )
        .expect("encode");
        assert!(matches!(
            v.validate(&hs, NOW_MS),
            Err(TokenError::Algorithm(_))
        ));
        assert!(matches!(
            v.validate("a.b.c", NOW_MS),
            Err(TokenError::Malformed(_))
        ));
        assert_eq!(
            v.validate(&"x".repeat(MAX_TOKEN_BYTES + 1), NOW_MS),
            Err(TokenError::TooLarge)
        );
    }
}
