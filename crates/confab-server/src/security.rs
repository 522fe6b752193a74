//! Everything issue 5 adds in one place the socket and HTTP layers share: [`Auth`], [`Access`]
//! and [`Limits`], plus the `/api` guard (authentication, operator-only routes, private
//! channels, no impersonation) and `GET /metrics`.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use confab_hub::Hub;
use confab_protocol::{ChannelRef, parse_uuid};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use uuid::Uuid;

use crate::access::{Access, Op};
use crate::auth::{Auth, AuthSettings, Principal};
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
    /// Largest request body the guard reads to check who a message is from.
    pub max_body: usize,
}

impl Security {
    pub async fn new(
        settings: SecuritySettings,
        hub: Hub,
        io: Option<SocketIo>,
        max_body: usize,
    ) -> anyhow::Result<Arc<Self>> {
        crate::metrics::install();
        let auth = Auth::new(&settings.auth).map_err(anyhow::Error::msg)?;
        let access = Access::load(hub, io.clone(), settings.data_isolation).await?;
        if auth.enabled() {
            tracing::info!(
                api_key = auth.has_api_key(),
                jwt = settings.auth.jwt.enabled(),
                "authentication on: sockets and /api need credentials"
            );
        }
        Ok(Arc::new(Security {
            auth,
            access,
            limits: Limits::new(settings.limits.clone()),
            io,
            settings,
            max_body,
        }))
    }

    /// Security with everything off (tests).
    pub async fn open(hub: Hub) -> anyhow::Result<Arc<Self>> {
        Self::new(SecuritySettings::default(), hub, None, 2 * 1024 * 1024).await
    }
}

fn unauthorized(auth: &Auth, reason: &str) -> Response {
    let body = if auth.has_api_key() {
        // ElizaOS's body, verbatim (compat spec §2.1).
        json!({"error": "API key required", "message": "Missing or invalid X-API-KEY header"})
    } else {
        json!({"error": "Authentication required", "message": reason})
    };
    let mut res = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    res.headers_mut().insert(
        "www-authenticate",
        axum::http::HeaderValue::from_static("Bearer"),
    );
    res
}

/// The channel a `/messaging/...` path names, and what the request does with it.
fn channel_route(path: &str, method: &Method) -> Option<(Uuid, Op)> {
    let rest = path
        .strip_prefix("/api/messaging/channels/")
        .or_else(|| path.strip_prefix("/api/messaging/central-channels/"))?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if id.is_empty() {
        return None;
    }
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    let channel = ChannelRef::parse(&id).id;
    let op = if *method == Method::POST && tail == "messages" {
        Op::Send
    } else {
        Op::Read
    };
    Some((channel, op))
}

/// The `/api` guard, before any handler: 401 without valid credentials; operator-only server
/// logs; 403 for private channels the caller does not belong to; no posting as someone else.
/// The [`Principal`] is left in the request's extensions.
pub async fn api_guard(
    State(security): State<Arc<Security>>,
    mut req: Request,
    next: Next,
) -> Response {
    let on_api = req.uri().path() == "/api" || req.uri().path().starts_with("/api/");
    if req.method() == Method::OPTIONS || !on_api {
        return next.run(req).await;
    }
    let auth = &security.auth;
    let principal = match auth.http(req.headers()) {
        Ok(p) => p,
        Err(reason) => {
            crate::metrics::error("auth");
            return unauthorized(auth, reason);
        }
    };
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.0.path().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let method = req.method().clone();
    if auth.enabled() && path.starts_with("/api/server/logs") && !principal.is_operator() {
        return ApiError::forbidden(
            "Access denied: server logs need the API key or an admin token",
        )
        .into_response();
    }
    let mut changed_channel = None;
    if let Some((channel, op)) = channel_route(&path, &method) {
        if let Err(denied) = security
            .access
            .check(&principal, principal.entity, channel, op, true)
            .await
        {
            crate::metrics::error("access");
            return ApiError::forbidden(denied).into_response();
        }
        if method != Method::GET {
            changed_channel = Some(channel);
        }
    }
    // Posting: the author must be the caller (unless an operator), and private channels apply
    // to the agent-reply routes too.
    let posts = method == Method::POST
        && (matches!(
            path.as_str(),
            "/api/messaging/submit" | "/api/messaging/action" | "/api/messaging/ingest-external"
        ) || (path.ends_with("/messages") && changed_channel.is_some()));
    if posts && (auth.enabled() || security.access.isolation()) && !principal.is_operator() {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = to_bytes(body, security.max_body).await else {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
                .into_response();
        };
        if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&bytes) {
            let uuid = |k: &str| body.get(k).and_then(Value::as_str).and_then(parse_uuid);
            let author = uuid("author_id").or_else(|| uuid("authorId"));
            if auth.enabled()
                && let (Some(author), Some(me)) = (author, principal.entity)
                && author != me
            {
                crate::metrics::error("auth");
                return ApiError::forbidden(crate::auth::IMPERSONATION).into_response();
            }
            let channel = body
                .get("channel_id")
                .or_else(|| body.get("channelId"))
                .and_then(Value::as_str)
                .map(|c| ChannelRef::parse(c).id);
            if let Some(channel) = channel
                && let Err(denied) = security
                    .access
                    .check(&principal, principal.entity, channel, Op::Send, true)
                    .await
            {
                crate::metrics::error("access");
                return ApiError::forbidden(denied).into_response();
            }
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(principal);
    req.extensions_mut().insert(security.clone());
    let res = next.run(req).await;
    metrics::counter!(crate::metrics::HTTP_REQUESTS, "status" => status_class(res.status()))
        .increment(1);
    // Participants may have changed: nobody outside a private channel stays in its room.
    if let Some(channel) = changed_channel
        && res.status().is_success()
    {
        security.access.enforce_members(channel).await;
    }
    res
}

fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// `GET /metrics`: Prometheus text. Needs the API key (or an admin token) when auth is on.
pub async fn metrics_route(State(security): State<Arc<Security>>, req: Request) -> Response {
    if security.auth.enabled() {
        match security.auth.http(req.headers()) {
            Ok(p) if p.is_operator() => {}
            Ok(_) => {
                return (StatusCode::FORBIDDEN, "operator credentials required\n").into_response();
            }
            Err(reason) => return unauthorized(&security.auth, reason),
        }
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

/// The principal the guard left on a request (open access when there is none).
pub fn principal_of(req_ext: &axum::http::Extensions) -> Principal {
    req_ext.get::<Principal>().cloned().unwrap_or(Principal {
        credential: crate::auth::Credential::Open,
        entity: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_routes() {
        let id = Uuid::new_v4();
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(
            channel_route(&format!("/api/messaging/channels/{id}/messages"), &get),
            Some((id, Op::Read))
        );
        assert_eq!(
            channel_route(&format!("/api/messaging/channels/{id}/messages"), &post),
            Some((id, Op::Send))
        );
        assert_eq!(
            channel_route(
                &format!("/api/messaging/central-channels/{id}"),
                &Method::DELETE
            ),
            Some((id, Op::Read))
        );
        assert_eq!(
            channel_route("/api/messaging/channels/general/presence", &get),
            Some((confab_protocol::string_to_uuid("general"), Op::Read))
        );
        assert_eq!(channel_route("/api/messaging/channels", &post), None);
        assert_eq!(channel_route("/api/messaging/channels/", &get), None);
    }
}
