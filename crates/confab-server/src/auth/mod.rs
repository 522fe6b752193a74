//! Who may talk to confab, and as whom (docs/security.md).
//!
//! * **The API key admits** (`ELIZA_SERVER_AUTH_TOKEN`, `SERVER_API_KEY`): when one is
//!   configured, every socket and every `/api` request needs it. It is the front ends' shared
//!   credential, so it grants no identity and no authority.
//! * **A presented token is always verified** ([`jwt`]): `auth.token`, `?token=`, or an
//!   `Authorization: Bearer` value that is not a key. A token that fails verification refuses
//!   the request or socket, even when a valid key came with it. A valid token's `sub` is the
//!   entity; a client-sent `entityId` / `X-Entity-Id` never wins over it.
//! * **Without a token** the entity is what the client says: where tokens are configured it is
//!   [`Trust::Unverified`] (never a participant or an owner); in key-only deployments
//!   [`Trust::Asserted`] (as in ElizaOS).
//! * **Operators** hold a token with the admin claim or the operator key (`CONFAB_ADMIN_KEY`),
//!   never the API key. The operator key also admits.
//! * **Nothing configured**: [`Trust::Open`], everything open as in ElizaOS.
//!
//! What a principal may reach is decided in [`crate::access`].

pub mod api_key;
pub mod jwt;
mod principal;

use std::sync::Arc;

use axum::http::HeaderMap;
use confab_protocol::{parse_uuid, texts};
use serde_json::Value;
use uuid::Uuid;

pub use api_key::ApiKeys;
pub use jwt::{JwtSettings, JwtVerifier, TokenClaims};
pub use principal::{Principal, Trust};

use crate::metrics::Refusal;

/// Authentication settings, as resolved by the binary.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// `ELIZA_SERVER_AUTH_TOKEN`, `SERVER_API_KEY` (either is accepted everywhere).
    pub api_keys: Vec<String>,
    /// `CONFAB_ADMIN_KEY`: the operator key, kept on the server side.
    pub admin_keys: Vec<String>,
    pub jwt: JwtSettings,
}

/// Why credentials were refused: a 401 on REST, `connect_error` on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthError {
    pub reason: &'static str,
    pub kind: Refusal,
}

impl AuthError {
    fn key() -> Self {
        AuthError {
            reason: texts::AUTH_INVALID_API_KEY,
            kind: Refusal::Unauthenticated,
        }
    }

    fn token(reason: &'static str) -> Self {
        AuthError {
            reason,
            kind: Refusal::BadToken,
        }
    }
}

/// What a client presented, wherever it put it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Presented<'a> {
    /// `X-API-KEY`, `auth.apiKey`, `?apiKey=`.
    pub key: Option<&'a str>,
    /// `Authorization: Bearer` — a key or a token.
    pub bearer: Option<&'a str>,
    /// `auth.token`, `?token=`.
    pub token: Option<&'a str>,
    /// The entity the client says it is.
    pub entity: Option<Uuid>,
}

/// The configured keys and verifier.
#[derive(Debug, Default)]
pub struct Auth {
    keys: ApiKeys,
    admin: ApiKeys,
    jwt: Option<JwtVerifier>,
}

impl Auth {
    pub fn new(settings: &AuthSettings) -> Result<Arc<Self>, String> {
        let jwt = if settings.jwt.enabled() {
            Some(JwtVerifier::new(settings.jwt.clone())?)
        } else {
            None
        };
        let keys = ApiKeys::new(settings.api_keys.iter().cloned());
        let admin = ApiKeys::new(settings.admin_keys.iter().cloned());
        if settings
            .admin_keys
            .iter()
            .any(|k| !k.is_empty() && keys.matches(k))
        {
            return Err(
                "CONFAB_ADMIN_KEY must differ from the API key: front ends carry the API key"
                    .into(),
            );
        }
        Ok(Arc::new(Auth { keys, admin, jwt }))
    }

    /// True when clients must authenticate.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty() || !self.admin.is_empty() || self.jwt.is_some()
    }

    pub fn has_api_key(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn has_tokens(&self) -> bool {
        self.jwt.is_some()
    }

    /// Decides who presented `p`, or why not.
    pub fn authenticate(&self, p: Presented<'_>) -> Result<Principal, AuthError> {
        if !self.enabled() {
            return Ok(Principal::open(p.entity));
        }
        let (mut admitted, mut operator) = (false, false);
        // A key that is wrong refuses, whatever else came with it.
        let mut key = |k: &str| -> Result<(), AuthError> {
            if self.admin.matches(k) {
                (admitted, operator) = (true, true);
                Ok(())
            } else if self.keys.matches(k) {
                admitted = true;
                Ok(())
            } else {
                Err(AuthError::key())
            }
        };
        if let Some(k) = p.key {
            key(k)?;
        }
        // A bearer value is a key when it is one (curl, Prometheus) or when the server verifies
        // no tokens (then a wrong one is a wrong key); else a token.
        let bearer_token = match p.bearer {
            Some(b) if self.keys.matches(b) || self.admin.matches(b) || self.jwt.is_none() => {
                key(b)?;
                None
            }
            other => other,
        };
        let mut claims = None;
        for token in [p.token, bearer_token].into_iter().flatten() {
            let verified = match &self.jwt {
                Some(jwt) => jwt.verify(token).map_err(AuthError::token)?,
                None => return Err(AuthError::token(texts::TOKEN_NOT_ACCEPTED)),
            };
            claims.get_or_insert(verified);
        }
        // Where a key is configured, only a key admits; otherwise a valid token does.
        let token_admits = self.keys.is_empty() && claims.is_some();
        if !(admitted || token_admits) {
            return Err(if self.keys.is_empty() {
                AuthError {
                    reason: texts::AUTH_TOKEN_REQUIRED,
                    kind: Refusal::Unauthenticated,
                }
            } else {
                AuthError::key()
            });
        }
        Ok(match claims {
            Some(c) => Principal {
                entity: Some(c.entity),
                trust: Trust::Verified,
                operator: operator || c.admin,
                channels: c.channels,
                expires: c.exp,
            },
            None => Principal {
                entity: p.entity,
                trust: if self.jwt.is_some() {
                    Trust::Unverified
                } else {
                    Trust::Asserted
                },
                operator,
                channels: None,
                expires: None,
            },
        })
    }

    /// A socket handshake: the `auth` object, then the handshake request's headers and query.
    /// The entity is settled by the caller (a token's `sub`, else the handshake's `entityId`).
    pub fn socket(
        &self,
        auth: Option<&Value>,
        req: &axum::http::request::Parts,
    ) -> Result<Principal, AuthError> {
        let from_auth = |name: &str| {
            auth.and_then(|a| a.get(name))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        self.unreadable(&req.headers)?;
        // A credential that is there but is not text is refused, not ignored.
        if self.enabled() {
            let present = |name: &str| {
                auth.and_then(|a| a.get(name))
                    .is_some_and(|v| !v.is_null() && !v.is_string())
            };
            if present("apiKey") {
                return Err(AuthError::key());
            }
            if present("token") {
                return Err(AuthError::token(texts::TOKEN_INVALID));
            }
        }
        let query = req.uri.query().unwrap_or("");
        let key_q = query_param(query, "apiKey").filter(|v| !v.is_empty());
        let token_q = query_param(query, "token").filter(|v| !v.is_empty());
        self.authenticate(Presented {
            key: from_auth("apiKey")
                .or_else(|| header(&req.headers, "x-api-key"))
                .or(key_q.as_deref()),
            bearer: bearer(&req.headers),
            token: from_auth("token").or(token_q.as_deref()),
            entity: None,
        })
    }

    /// An HTTP request: `X-API-KEY`, `Authorization: Bearer` (key or token), `X-Entity-Id`.
    pub fn http(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        self.unreadable(headers)?;
        self.authenticate(Presented {
            key: header(headers, "x-api-key"),
            bearer: bearer(headers),
            token: None,
            entity: header(headers, "x-entity-id").and_then(parse_uuid),
        })
    }
}

impl Auth {
    /// A credential header that is not text is refused, not ignored.
    fn unreadable(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        if !self.enabled() {
            return Ok(());
        }
        let bad = |name| headers.get_all(name).iter().any(|v| v.to_str().is_err());
        if bad("x-api-key") {
            return Err(AuthError::key());
        }
        if bad("authorization") {
            return Err(AuthError::token(texts::TOKEN_INVALID));
        }
        Ok(())
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = header(headers, "authorization")?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// One query parameter, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            let v = v.replace('+', " ");
            percent_encoding::percent_decode_str(&v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> axum::http::request::Parts {
        let mut b = Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn auth(keys: &[&str], admin: &[&str], secret: Option<&str>) -> Arc<Auth> {
        Auth::new(&AuthSettings {
            api_keys: keys.iter().map(|k| k.to_string()).collect(),
            admin_keys: admin.iter().map(|k| k.to_string()).collect(),
            jwt: JwtSettings {
                secret: secret.map(str::to_owned),
                ..JwtSettings::default()
            },
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

    fn exp() -> u64 {
        jsonwebtoken::get_current_timestamp() + 600
    }

    #[test]
    fn open_when_unconfigured() {
        let auth = auth(&[], &[], None);
        assert!(!auth.enabled());
        let p = auth.socket(None, &parts("/socket.io/", &[])).unwrap();
        assert_eq!(p.trust, Trust::Open);
        assert!(!p.operator);
    }

    #[test]
    fn the_key_admits_everywhere_and_grants_nothing() {
        let auth = auth(&["k1"], &[], None);
        let ok = |auth_obj: Option<Value>, uri: &str, h: &[(&str, &str)]| {
            auth.socket(auth_obj.as_ref(), &parts(uri, h))
        };
        for p in [
            ok(Some(json!({"apiKey": "k1"})), "/s", &[]),
            ok(None, "/s", &[("x-api-key", "k1")]),
            ok(None, "/s?EIO=4&apiKey=k1&transport=websocket", &[]),
            ok(None, "/s", &[("authorization", "Bearer k1")]),
        ] {
            let p = p.unwrap();
            assert!(!p.operator);
            assert_eq!(p.trust, Trust::Asserted);
        }
        assert_eq!(ok(None, "/s", &[]).unwrap_err(), AuthError::key());
        assert_eq!(
            ok(Some(json!({"apiKey": "k2"})), "/s", &[]).unwrap_err(),
            AuthError::key()
        );
        // A token where the server verifies none is refused, not ignored.
        assert_eq!(
            ok(Some(json!({"apiKey": "k1", "token": "x.y.z"})), "/s", &[])
                .unwrap_err()
                .reason,
            texts::TOKEN_NOT_ACCEPTED
        );
        let mut h = HeaderMap::new();
        assert!(auth.http(&h).is_err());
        h.insert("x-api-key", "k1".parse().unwrap());
        let id = Uuid::new_v4();
        h.insert("x-entity-id", id.to_string().parse().unwrap());
        let p = auth.http(&h).unwrap();
        assert!(!p.operator);
        assert_eq!(p.member_entity(), Some(id));
    }

    #[test]
    fn tokens_are_always_verified_and_sub_wins() {
        let auth = auth(&["k1"], &["ops"], Some("s"));
        let sub = Uuid::new_v4();
        let good = token(json!({"sub": sub.to_string(), "exp": exp()}), "s");
        let forged = token(json!({"sub": sub.to_string(), "exp": exp()}), "other");
        let h = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            auth.http(&h)
        };
        let other = Uuid::new_v4().to_string();
        let p = h(&[
            ("x-api-key", "k1"),
            ("authorization", &format!("Bearer {good}")),
            ("x-entity-id", &other),
        ])
        .unwrap();
        assert_eq!((p.entity, p.trust), (Some(sub), Trust::Verified));
        let e = h(&[
            ("x-api-key", "k1"),
            ("authorization", &format!("Bearer {forged}")),
        ])
        .unwrap_err();
        assert_eq!(e.reason, texts::TOKEN_BAD_SIGNATURE);
        // A valid token without the key is not admitted where a key is configured.
        assert_eq!(
            h(&[("authorization", &format!("Bearer {good}"))]).unwrap_err(),
            AuthError::key()
        );
        // The key alone: unverified.
        let p = h(&[("x-api-key", "k1"), ("x-entity-id", &other)]).unwrap();
        assert_eq!(p.trust, Trust::Unverified);
        assert_eq!(p.member_entity(), None);
        // The operator key admits and empowers; the admin claim empowers.
        let p = h(&[("authorization", "Bearer ops")]).unwrap();
        assert!(p.operator);
        let admin = token(json!({"sub": "x", "exp": exp(), "admin": true}), "s");
        let p = h(&[
            ("x-api-key", "k1"),
            ("authorization", &format!("Bearer {admin}")),
        ])
        .unwrap();
        assert!(p.operator);
        // On a socket: auth.token with the key; a forged one refuses.
        let s = |a: Value| auth.socket(Some(&a), &parts("/s", &[]));
        assert_eq!(
            s(json!({"apiKey": "k1", "token": good, "entityId": other}))
                .unwrap()
                .entity,
            Some(sub)
        );
        assert!(s(json!({"apiKey": "k1", "token": forged})).is_err());
    }

    #[test]
    fn the_admin_key_must_differ() {
        assert!(
            Auth::new(&AuthSettings {
                api_keys: vec!["same".into()],
                admin_keys: vec!["same".into()],
                ..AuthSettings::default()
            })
            .is_err()
        );
    }

    #[test]
    fn query_params() {
        assert_eq!(
            query_param("a=1&token=x%2By&b", "token").as_deref(),
            Some("x+y")
        );
        assert_eq!(query_param("a=1", "token"), None);
        assert_eq!(query_param("apiKey=%zz", "apiKey").as_deref(), Some("%zz"));
        assert_eq!(
            query_param("apiKey=ab%4", "apiKey").as_deref(),
            Some("ab%4")
        );
    }
}
