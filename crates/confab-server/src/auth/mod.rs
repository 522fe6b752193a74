//! Who may talk to confab: API keys and JSON Web Tokens, on the socket handshake and on `/api`.
//!
//! * Off (no key, no JWT key configured): everything is open, as in ElizaOS by default.
//! * API key (`ELIZA_SERVER_AUTH_TOKEN` and/or `SERVER_API_KEY`): every `/api/*` request needs
//!   `X-API-KEY` (or `Authorization: Bearer <key>`); every socket needs it in `auth.apiKey`, the
//!   `x-api-key` header or `?apiKey=`. A key holder is an operator; on a socket its entity is
//!   still the handshake's `auth.entityId`.
//! * JWT ([`jwt`]): a token in `auth.token`, `?token=` or `Authorization: Bearer` authenticates
//!   as its `sub`. Either a valid key or a valid token lets a client in.

pub mod api_key;
pub mod jwt;

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::HeaderMap;
use confab_protocol::parse_uuid;
use serde_json::Value;
use uuid::Uuid;

pub use api_key::ApiKeys;
pub use jwt::{JwtSettings, JwtVerifier, TokenClaims};

/// ElizaOS's socket refusal text for a missing or wrong key.
pub const INVALID_API_KEY: &str = confab_protocol::texts::AUTH_INVALID_API_KEY;
/// When only tokens are configured and none was given.
pub const TOKEN_REQUIRED: &str =
    "Authentication required: send a token (auth.token, ?token= or Authorization: Bearer)";
pub const IMPERSONATION: &str = "senderId does not match the authenticated entity";

/// Authentication settings, as resolved by the binary.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// `ELIZA_SERVER_AUTH_TOKEN`, `SERVER_API_KEY` (either is accepted everywhere).
    pub api_keys: Vec<String>,
    pub jwt: JwtSettings,
}

/// How a client authenticated.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    /// Authentication is off.
    Open,
    /// A valid API key.
    Key,
    /// A valid token.
    Token(TokenClaims),
}

/// The authenticated party behind a socket or an HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub credential: Credential,
    /// The entity the party acts as: the token's `sub`; otherwise the handshake's
    /// `auth.entityId` (socket) or the `X-Entity-Id` header (REST), if any.
    pub entity: Option<Uuid>,
}

impl Principal {
    /// Operators may read server logs and metrics and reach every channel over REST.
    pub fn is_operator(&self) -> bool {
        match &self.credential {
            Credential::Open => false,
            Credential::Key => true,
            Credential::Token(c) => c.admin,
        }
    }

    /// The channels a token limits this party to (`None`: no limit).
    pub fn channel_limit(&self) -> Option<&HashSet<Uuid>> {
        match &self.credential {
            Credential::Token(c) => c.channels.as_ref(),
            _ => None,
        }
    }

    /// The token's expiry, seconds since the epoch.
    pub fn expires(&self) -> Option<u64> {
        match &self.credential {
            Credential::Token(c) => c.exp,
            _ => None,
        }
    }

    /// The entity fixed by the credential (a token's `sub`); a client cannot choose another.
    pub fn token_entity(&self) -> Option<Uuid> {
        match &self.credential {
            Credential::Token(c) => Some(c.entity),
            _ => None,
        }
    }
}

/// The configured keys and verifier.
#[derive(Debug, Default)]
pub struct Auth {
    keys: ApiKeys,
    jwt: Option<JwtVerifier>,
}

/// What a client presented.
#[derive(Default)]
struct Presented<'a> {
    key: Option<&'a str>,
    token: Option<&'a str>,
}

impl Auth {
    pub fn new(settings: &AuthSettings) -> Result<Arc<Self>, String> {
        let jwt = if settings.jwt.enabled() {
            Some(JwtVerifier::new(settings.jwt.clone())?)
        } else {
            None
        };
        Ok(Arc::new(Auth {
            keys: ApiKeys::new(settings.api_keys.iter().cloned()),
            jwt,
        }))
    }

    /// True when clients must authenticate.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty() || self.jwt.is_some()
    }

    pub fn has_api_key(&self) -> bool {
        !self.keys.is_empty()
    }

    fn check(&self, p: Presented<'_>) -> Result<Credential, &'static str> {
        if !self.enabled() {
            return Ok(Credential::Open);
        }
        if p.key.is_some_and(|k| self.keys.matches(k)) {
            return Ok(Credential::Key);
        }
        // A bearer value may be the API key itself (Prometheus scrapers, curl).
        if p.token.is_some_and(|t| self.keys.matches(t)) {
            return Ok(Credential::Key);
        }
        match (&self.jwt, p.token) {
            (Some(jwt), Some(token)) => jwt.verify(token).map(Credential::Token),
            (Some(_), None) if self.keys.is_empty() => Err(TOKEN_REQUIRED),
            _ => Err(INVALID_API_KEY),
        }
    }

    /// A socket handshake: the `auth` object, then the handshake request's headers and query.
    pub fn socket(
        &self,
        auth: Option<&Value>,
        req: &axum::http::request::Parts,
    ) -> Result<Principal, &'static str> {
        let from_auth = |name: &str| auth.and_then(|a| a.get(name)).and_then(Value::as_str);
        let query = req.uri.query().unwrap_or("");
        let key_q = query_param(query, "apiKey");
        let token_q = query_param(query, "token");
        let presented = Presented {
            key: from_auth("apiKey")
                .or_else(|| header(&req.headers, "x-api-key"))
                .or(key_q.as_deref()),
            token: from_auth("token")
                .or_else(|| bearer(&req.headers))
                .or(token_q.as_deref()),
        };
        let credential = self.check(presented)?;
        Ok(Principal {
            entity: match &credential {
                Credential::Token(c) => Some(c.entity),
                _ => None,
            },
            credential,
        })
    }

    /// An HTTP request: `X-API-KEY` or `Authorization: Bearer` (key or token). The entity is the
    /// token's `sub`, else the `X-Entity-Id` header.
    pub fn http(&self, headers: &HeaderMap) -> Result<Principal, &'static str> {
        let credential = self.check(Presented {
            key: header(headers, "x-api-key"),
            token: bearer(headers),
        })?;
        let entity = match &credential {
            Credential::Token(c) => Some(c.entity),
            _ => header(headers, "x-entity-id").and_then(parse_uuid),
        };
        Ok(Principal { credential, entity })
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

    fn parts(uri: &str, headers: &[(&str, &str)]) -> axum::http::request::Parts {
        let mut b = Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn keyed() -> Arc<Auth> {
        Auth::new(&AuthSettings {
            api_keys: vec!["k1".into()],
            ..AuthSettings::default()
        })
        .unwrap()
    }

    #[test]
    fn open_when_unconfigured() {
        let auth = Auth::new(&AuthSettings::default()).unwrap();
        assert!(!auth.enabled());
        let p = auth.socket(None, &parts("/socket.io/", &[])).unwrap();
        assert_eq!(p.credential, Credential::Open);
        assert!(!p.is_operator());
    }

    #[test]
    fn api_key_everywhere() {
        let auth = keyed();
        let ok = |auth_obj: Option<Value>, uri: &str, h: &[(&str, &str)]| {
            auth.socket(auth_obj.as_ref(), &parts(uri, h))
        };
        assert!(ok(Some(serde_json::json!({"apiKey": "k1"})), "/s", &[]).is_ok());
        assert!(ok(None, "/s", &[("x-api-key", "k1")]).is_ok());
        assert!(ok(None, "/s?EIO=4&apiKey=k1&transport=websocket", &[]).is_ok());
        assert!(ok(None, "/s", &[("authorization", "Bearer k1")]).is_ok());
        assert_eq!(ok(None, "/s", &[]).unwrap_err(), INVALID_API_KEY);
        assert_eq!(
            ok(Some(serde_json::json!({"apiKey": "k2"})), "/s", &[]).unwrap_err(),
            INVALID_API_KEY
        );
        let mut h = HeaderMap::new();
        assert!(auth.http(&h).is_err());
        h.insert("x-api-key", "k1".parse().unwrap());
        let p = auth.http(&h).unwrap();
        assert!(p.is_operator());
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
