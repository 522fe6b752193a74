//! The HTTP edge of the identity model: the `/api` authentication layer (401 before any
//! handler), the [`Principal`] extractor the handlers take, the REST shapes of refusals, and
//! `GET /metrics`. Who is who is decided in [`crate::auth`]; what they may reach in
//! [`crate::access`]; how fast in [`crate::limits`].

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use socketioxide::SocketIo;

use crate::access::{Access, Action, Denied, Resource};
use crate::auth::{Auth, AuthError, AuthSettings, Principal};
use crate::http::AppState;
use crate::http::envelope::ApiError;
use crate::limits::{LimitSettings, Limits};

/// Settings, as resolved by the binary (see [`crate::options`]).
#[derive(Debug, Clone, Default)]
pub struct SecuritySettings {
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    /// Every channel private (`ENABLE_DATA_ISOLATION=true`).
    pub data_isolation: bool,
    /// Clock skew tolerated when a token's expiry closes its socket, in seconds.
    pub jwt_leeway_secs: u64,
}

pub struct Security {
    pub auth: Arc<Auth>,
    pub access: Access,
    pub limits: Arc<Limits>,
    pub io: Option<SocketIo>,
    pub settings: SecuritySettings,
}

impl Security {
    pub async fn new(
        settings: SecuritySettings,
        hub: confab_hub::Hub,
        io: Option<SocketIo>,
    ) -> anyhow::Result<Arc<Self>> {
        crate::metrics::install();
        let auth = Auth::new(&settings.auth).map_err(anyhow::Error::msg)?;
        let access = Access::load(hub, io.clone(), settings.data_isolation).await?;
        if auth.enabled() {
            tracing::info!(
                api_key = auth.has_api_key(),
                tokens = auth.has_tokens(),
                operator_key = !settings.auth.admin_keys.is_empty(),
                "authentication on: sockets and /api need credentials"
            );
        }
        Ok(Arc::new(Security {
            auth,
            access,
            limits: Limits::new(settings.limits.clone()),
            io,
            settings,
        }))
    }

    /// The one access decision, for a REST handler: a refusal is its 403.
    pub async fn allow(
        &self,
        p: &Principal,
        resource: Resource,
        action: Action,
    ) -> Result<(), ApiError> {
        self.access
            .decide(p, resource, action)
            .await
            .map_err(ApiError::from)
    }

    /// Whether `p` may see a channel at all (lists leave out what it may not).
    pub async fn sees(&self, p: &Principal, channel: uuid::Uuid) -> bool {
        self.access
            .permits(p, Resource::Channel(channel), Action::Read)
            .await
    }
}

/// ElizaOS's 401 body for a missing or wrong key (compat spec §2.1), verbatim.
#[derive(Serialize)]
struct AuthRequired {
    error: &'static str,
    message: &'static str,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = if self.reason == confab_protocol::texts::AUTH_INVALID_API_KEY {
            AuthRequired {
                error: "API key required",
                message: "Missing or invalid X-API-KEY header",
            }
        } else {
            AuthRequired {
                error: "Authentication required",
                message: self.reason,
            }
        };
        let mut res = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        res.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        res
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        ApiError::forbidden(d.reason)
    }
}

/// The `/api` layer: every request is authenticated before any handler (or the not-found
/// fallback) runs; a refusal is a 401. The [`Principal`] is left in the request's extensions
/// for the extractor.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    let principal = match state.security.auth.http(req.headers()) {
        Ok(p) => p,
        Err(e) => {
            crate::metrics::refused(e.kind);
            return e.into_response();
        }
    };
    req.extensions_mut().insert(principal);
    let res = next.run(req).await;
    metrics::counter!(crate::metrics::HTTP_REQUESTS, "status" => status_class(res.status()))
        .increment(1);
    res
}

/// The caller of a REST handler, as the `/api` layer authenticated it.
impl FromRequestParts<AppState> for Principal {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        match parts.extensions.get::<Principal>() {
            Some(p) => Ok(p.clone()),
            // Outside the layer (never in the served router): authenticate here.
            None => state.security.auth.http(&parts.headers),
        }
    }
}

fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// `GET /metrics`: Prometheus text; operators only when authentication is on.
pub async fn metrics_route(State(security): State<Arc<Security>>, req: Request) -> Response {
    let principal = match security.auth.http(req.headers()) {
        Ok(p) => p,
        Err(e) => {
            crate::metrics::refused(e.kind);
            return e.into_response();
        }
    };
    if let Err(d) = security
        .access
        .decide(&principal, Resource::Administration, Action::Read)
        .await
    {
        return (StatusCode::FORBIDDEN, format!("{}\n", d.reason)).into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(security.io.clone()).await,
    )
        .into_response()
}

/// A REST caller with operator rights (administration, logs): the handlers that take it are
/// for operators only (403 otherwise, 401 without credentials).
pub struct Operator(pub Principal);

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let p = Principal::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        state
            .security
            .allow(&p, Resource::Administration, Action::Write)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Operator(p))
    }
}
