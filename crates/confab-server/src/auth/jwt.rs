//! JSON Web Tokens: HS256/384/512 with a shared secret (`JWT_SECRET`), RS*/PS*/ES*/EdDSA with a
//! PEM public key (`JWT_PUBLIC_KEY_FILE`) or a JWKS file (`JWT_JWKS_FILE`, key chosen by `kid`).
//!
//! Claims: `sub` (required) becomes the entity id (a UUID, or mapped with `stringToUuid`);
//! `exp` (required) is enforced, at the handshake and afterwards; `channels` (optional) lists
//! the channels the token may join and post to (`"*"` = any); `admin: true` or
//! `role: "admin"` grants operator rights (log streaming, `/metrics`, server logs).

use std::collections::HashSet;
use std::path::PathBuf;

use confab_protocol::{ChannelRef, parse_uuid, string_to_uuid, texts};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

pub const TOKEN_EXPIRED: &str = texts::TOKEN_EXPIRED;

/// Where the verification key comes from (resolved from the environment by the binary).
#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    pub secret: Option<String>,
    pub public_key_file: Option<PathBuf>,
    pub jwks_file: Option<PathBuf>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway_secs: u64,
}

impl JwtSettings {
    pub fn enabled(&self) -> bool {
        self.secret.as_deref().is_some_and(|s| !s.is_empty())
            || self.public_key_file.is_some()
            || self.jwks_file.is_some()
    }
}

type PemParser = fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>;

enum Keys {
    /// One key and the algorithms it may verify.
    Single(Box<DecodingKey>, Vec<Algorithm>),
    /// A JWKS: the token's `kid` picks the key (or the only key when there is one).
    Set(Vec<(Option<String>, DecodingKey, Vec<Algorithm>)>),
}

/// Verifies tokens; built once at startup.
pub struct JwtVerifier {
    keys: Keys,
    settings: JwtSettings,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtVerifier")
    }
}

/// A verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenClaims {
    pub entity: Uuid,
    /// Seconds since the epoch.
    pub exp: Option<u64>,
    /// `None`: any channel.
    pub channels: Option<HashSet<Uuid>>,
    pub admin: bool,
}

#[derive(Deserialize)]
struct RawClaims {
    sub: Option<Value>,
    exp: Option<u64>,
    channels: Option<Value>,
    admin: Option<bool>,
    role: Option<String>,
}

fn family_algorithms(alg: Algorithm) -> Vec<Algorithm> {
    use Algorithm::*;
    match alg {
        HS256 | HS384 | HS512 => vec![HS256, HS384, HS512],
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => {
            vec![RS256, RS384, RS512, PS256, PS384, PS512]
        }
        ES384 => vec![ES384],
        EdDSA => vec![EdDSA],
        ES256 => vec![ES256],
        _ => vec![alg],
    }
}

impl JwtVerifier {
    /// Reads the key material. Errors name the file and what was wrong with it.
    pub fn new(settings: JwtSettings) -> Result<Self, String> {
        let keys = if let Some(path) = &settings.jwks_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading JWT_JWKS_FILE {}: {e}", path.display()))?;
            let set: JwkSet = serde_json::from_str(&text)
                .map_err(|e| format!("parsing JWT_JWKS_FILE {}: {e}", path.display()))?;
            let mut keys = Vec::new();
            for jwk in &set.keys {
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|e| format!("JWT_JWKS_FILE {}: unusable key: {e}", path.display()))?;
                let algs = match jwk
                    .common
                    .key_algorithm
                    .and_then(|a| a.to_string().parse::<Algorithm>().ok())
                {
                    Some(alg) => vec![alg],
                    None => match &jwk.algorithm {
                        jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => {
                            family_algorithms(Algorithm::RS256)
                        }
                        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(p) => match p.curve {
                            jsonwebtoken::jwk::EllipticCurve::P384 => vec![Algorithm::ES384],
                            _ => vec![Algorithm::ES256],
                        },
                        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => {
                            vec![Algorithm::EdDSA]
                        }
                        _ => family_algorithms(Algorithm::HS256),
                    },
                };
                keys.push((jwk.common.key_id.clone(), key, algs));
            }
            if keys.is_empty() {
                return Err(format!("JWT_JWKS_FILE {} has no keys", path.display()));
            }
            Keys::Set(keys)
        } else if let Some(path) = &settings.public_key_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading JWT_PUBLIC_KEY_FILE {}: {e}", path.display()))?;
            let text = String::from_utf8_lossy(&pem);
            let attempts: [(PemParser, Vec<Algorithm>); 3] = [
                (
                    DecodingKey::from_rsa_pem,
                    family_algorithms(Algorithm::RS256),
                ),
                (
                    DecodingKey::from_ec_pem,
                    vec![Algorithm::ES256, Algorithm::ES384],
                ),
                (DecodingKey::from_ed_pem, vec![Algorithm::EdDSA]),
            ];
            let found = attempts
                .into_iter()
                .find_map(|(parse, algs)| parse(&pem).ok().map(|k| (k, algs)));
            match found {
                // An EC key verifies only its own curve's algorithm; keep both and let the
                // library reject the wrong one.
                Some((key, algs)) => Keys::Single(Box::new(key), algs),
                None if text.contains("BEGIN") => {
                    return Err(format!(
                        "JWT_PUBLIC_KEY_FILE {}: not an RSA, EC or Ed25519 public key",
                        path.display()
                    ));
                }
                None => {
                    return Err(format!(
                        "JWT_PUBLIC_KEY_FILE {}: expected a PEM public key",
                        path.display()
                    ));
                }
            }
        } else if let Some(secret) = settings.secret.as_deref().filter(|s| !s.is_empty()) {
            Keys::Single(
                Box::new(DecodingKey::from_secret(secret.as_bytes())),
                family_algorithms(Algorithm::HS256),
            )
        } else {
            return Err("no JWT key configured".into());
        };
        Ok(JwtVerifier { keys, settings })
    }

    /// Verifies signature, algorithm, `exp` (and `nbf`, `iss`, `aud` when configured).
    pub fn verify(&self, token: &str) -> Result<TokenClaims, &'static str> {
        let header = decode_header(token).map_err(|_| texts::TOKEN_INVALID)?;
        let (key, algs) = match &self.keys {
            Keys::Single(key, algs) => (key.as_ref(), algs),
            Keys::Set(keys) => {
                let found = match &header.kid {
                    Some(kid) => keys.iter().find(|(k, ..)| k.as_deref() == Some(kid)),
                    None if keys.len() == 1 => keys.first(),
                    None => None,
                };
                let (_, key, algs) = found.ok_or(texts::TOKEN_UNKNOWN_KEY)?;
                (key, algs)
            }
        };
        if !algs.contains(&header.alg) {
            return Err(texts::TOKEN_ALGORITHM);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.settings.leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.settings.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.settings.issuer {
            validation.set_issuer(&[iss]);
        }
        let data = decode::<RawClaims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => TOKEN_EXPIRED,
                ErrorKind::ImmatureSignature => texts::TOKEN_NOT_YET_VALID,
                ErrorKind::InvalidSignature => texts::TOKEN_BAD_SIGNATURE,
                ErrorKind::InvalidIssuer => texts::TOKEN_WRONG_ISSUER,
                ErrorKind::InvalidAudience => texts::TOKEN_WRONG_AUDIENCE,
                ErrorKind::MissingRequiredClaim(_) => texts::TOKEN_MISSING_CLAIM,
                _ => texts::TOKEN_INVALID,
            }
        })?;
        let c = data.claims;
        let entity = match c.sub {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                parse_uuid(&s).unwrap_or_else(|| string_to_uuid(&s))
            }
            Some(Value::Number(n)) => string_to_uuid(&n.to_string()),
            _ => return Err(texts::TOKEN_MISSING_CLAIM),
        };
        let channels = match c.channels {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) => {
                let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                if names.contains(&"*") {
                    None
                } else {
                    Some(names.iter().map(|n| ChannelRef::parse(n).id).collect())
                }
            }
            Some(Value::String(s)) if s == "*" => None,
            Some(Value::String(s)) => Some(
                s.split([',', ' '])
                    .filter(|n| !n.is_empty())
                    .map(|n| ChannelRef::parse(n).id)
                    .collect(),
            ),
            Some(_) => return Err(texts::TOKEN_BAD_CHANNELS),
        };
        Ok(TokenClaims {
            entity,
            exp: c.exp,
            channels,
            admin: c.admin == Some(true) || c.role.as_deref() == Some("admin"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(JwtSettings {
            secret: Some("s3cret".into()),
            ..JwtSettings::default()
        })
        .unwrap()
    }

    fn token(claims: Value, secret: &str) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn hs256_claims() {
        let v = verifier();
        let id = Uuid::new_v4();
        let c = v
            .verify(&token(
                json!({"sub": id.to_string(), "exp": now() + 60, "channels": ["room-1", id.to_string()], "admin": true}),
                "s3cret",
            ))
            .unwrap();
        assert_eq!(c.entity, id);
        assert!(c.admin);
        let channels = c.channels.unwrap();
        assert!(channels.contains(&string_to_uuid("room-1")));
        assert!(channels.contains(&id));
        let plain = v
            .verify(&token(json!({"sub": "alice", "exp": now() + 60}), "s3cret"))
            .unwrap();
        assert_eq!(plain.entity, string_to_uuid("alice"));
        assert_eq!(plain.channels, None);
        assert!(!plain.admin);
    }

    #[test]
    fn refusals() {
        let v = verifier();
        let id = Uuid::new_v4().to_string();
        assert_eq!(
            v.verify(&token(json!({"sub": id, "exp": now() - 10}), "s3cret"))
                .unwrap_err(),
            "Token expired"
        );
        assert!(
            v.verify(&token(json!({"sub": id, "exp": now() + 60}), "wrong"))
                .unwrap_err()
                .contains("signature")
        );
        assert!(
            v.verify(&token(json!({"sub": id}), "s3cret"))
                .unwrap_err()
                .contains("missing")
        );
        assert!(
            v.verify(&token(json!({"exp": now() + 60}), "s3cret"))
                .unwrap_err()
                .contains("missing")
        );
        assert!(v.verify("not a token").is_err());
        assert!(v.verify("").is_err());
        // alg=none is never accepted.
        let none = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            "eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ"
        );
        assert!(v.verify(&none).is_err());
    }
}
