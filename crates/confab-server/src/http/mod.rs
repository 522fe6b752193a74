//! The REST API (compat spec §2), on the same port as Socket.IO.
//!
//! * `health` — `/healthz`, `/health`, `/api/server/*`, `/api/system/version` (no envelope).
//! * `core` — `/api/messaging/submit`, `/action`, `/ingest-external`.
//! * `servers` — `/api/messaging/message-servers…` and their pre-1.6 aliases.
//! * `channels` — `/api/messaging/channels…`, `/dm-channel`, and the `/central-channels` aliases.
//! * `messages` — `/api/messaging/channels/:id/messages…`.
//! * `agents` — `/api/agents…` (style A).
//! * `sessions`, `jobs` — `/api/messaging/sessions…`, `/api/messaging/jobs…`.
//! * `agent_reply` — the `http` and `sse` transports: the agent's reply in the response.
//! * `media` — uploads (`/api/messaging/channels/:id/upload-media`, `/api/media/...`) and the
//!   `/media/...` files.
//! * `envelope` — response envelopes, the JSON body extractor, the content-type check.
//! * `openapi` — the published contract: `/api/openapi.json`, `/api/docs` (every route above is
//!   registered through `utoipa_axum::routes!`, so it is documented where it is routed).
//! * `events` — the Socket.IO events' description, `/api/asyncapi.json`.
//!
//! Every socket event a route causes goes out through the hub.

mod agent_reply;
mod agents;
mod channels;
mod core;
pub mod envelope;
pub mod events;
mod health;
mod jobs;
pub mod media;
mod messages;
pub mod openapi;
mod servers;
mod sessions;
mod shapes;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use confab_hub::Hub;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::config::Config;
use crate::logs::LogHub;
use envelope::ApiError;

/// What every HTTP handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    pub agents: confab_agents::AgentSystem,
    /// This node's cluster link, when several nodes share a database.
    pub cluster: Option<Arc<confab_cluster::RedisCluster>>,
    /// Storage health as the circuit breaker sees it (`/health`).
    pub storage: confab_store::StoreHealth,
    pub config: Arc<Config>,
    pub logs: LogHub,
    pub started: Instant,
    /// Authentication, access, limits: handlers take a [`crate::auth::Principal`] and ask
    /// `security.allow(...)`.
    pub security: Arc<crate::security::Security>,
    /// Uploaded and generated files (the data directory, or PostgreSQL with `DATABASE_URL`).
    pub media: Arc<dyn confab_store::media::MediaStore>,
}

pub fn router(state: AppState) -> Router {
    let (api, root, doc) = routes();
    let api = api
        // Express answers a known path with an unsupported method like an unknown path.
        .method_not_allowed_fallback(api_not_found)
        .fallback(api_not_found)
        .layer(middleware::from_fn(envelope::content_type_guard))
        // Before anything else under /api, the not-found answers included.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::security::authenticate,
        ));
    openapi::publish(&doc);
    root.nest("/api", api).fallback(not_found).with_state(state)
}

/// The OpenAPI document of every route [`router`] serves.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    routes().2
}

/// Every route, registered with its documentation (`utoipa_axum::routes!`): the `/api` routes
/// (relative to `/api`), the root ones, and the OpenAPI document of exactly those.
fn routes() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let deprecated = OpenApiRouter::new()
        .merge(servers::deprecated_routes())
        .merge(channels::deprecated_routes())
        .merge(messages::deprecated_routes())
        .route_layer(middleware::from_fn(warn_deprecated));
    let messaging = OpenApiRouter::new()
        .merge(core::routes())
        .merge(servers::routes())
        .merge(channels::routes())
        .merge(messages::routes())
        .merge(sessions::routes())
        .merge(jobs::routes())
        .merge(media::messaging_routes())
        .merge(deprecated);
    let (api, api_doc) = OpenApiRouter::new()
        .nest("/messaging", messaging)
        .nest("/agents", agents::routes())
        .nest("/media", media::api_routes())
        .nest("/server", health::server_routes())
        .nest("/system", health::system_routes())
        .split_for_parts();
    let (root, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::root_routes())
        .merge(media::serving_routes())
        // The reference is public, outside the authentication layer.
        .merge(openapi::routes())
        .split_for_parts();
    let mut doc = doc.nest("/api", api_doc);
    openapi::finish(&mut doc);
    (api, root, doc)
}

/// Unknown `/api/*`: 404 `{success:false, error:{message:"API endpoint not found", code:404}}`.
async fn api_not_found() -> Response {
    ApiError::endpoint_not_found().into_response()
}

/// Anything else: the web chat page and its assets ([`crate::web`]), else 404. `/api/` itself
/// is not reached through the nested router, so it is answered here like any unknown API path.
async fn not_found(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        return api_not_found().await;
    }
    crate::web::serve(&method, &uri, &headers)
}

/// Logs a warning for the pre-1.6 paths, as ElizaOS does before re-dispatching them.
async fn warn_deprecated(req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    tracing::warn!(method = %req.method(), path = %path, "[DEPRECATED] this path is deprecated; use the /message-servers or /channels form");
    next.run(req).await
}
