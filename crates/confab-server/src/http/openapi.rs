//! The published API contract (issue 16): an OpenAPI 3.1 document generated from the handlers'
//! `#[utoipa::path]` annotations and the schema types below, served at `/api/openapi.json`, and
//! a browsable reference at `/api/docs` (Scalar, served from the binary: nothing is fetched at
//! run time). The Socket.IO events are described beside it at `/api/asyncapi.json`, generated
//! from `confab-protocol`'s payload types.
//!
//! Routes and documentation come from one place: every module's router is an
//! `OpenApiRouter` built with `utoipa_axum::routes!`, which registers a handler under the path
//! its annotation declares, so a route cannot be served without being documented. To add one:
//!
//! 1. annotate the handler with `#[utoipa::path(post, path = "/x", tag = "...", responses(...))]`
//!    (the path relative to the module's router, as axum writes it: `/channels/{channel_id}`);
//! 2. register it with `.routes(routes!(handler))` in the module's `routes()`;
//! 3. describe new bodies here with a `ToSchema` type.
//!
//! A path that serves an existing handler under an older name is registered with [`alias`].
//!
//! The response types here describe what `shapes` and the handlers build (the handlers answer
//! with JSON values, as ElizaOS's routers do): the end-to-end tests validate every response they
//! receive against this document, and the fuzz run (`tests/fuzz`) checks it against the binary.

use std::collections::BTreeMap;

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use utoipa::openapi::path::{Operation, PathItem, Paths};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Deprecated, OpenApi as Document, RefOr};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;
use uuid::Uuid;

/// The document's frame: title, tags, security schemes. The paths are added by the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "confab REST API",
        description = "confab's ElizaOS-compatible REST API. Responses use ElizaOS's three envelope styles: \
            style A (`/api/agents`): `{success, data}` / `{success:false, error:{code, message}}`; \
            style B (messaging): `{success:true, data}` / `{success:false, error:\"text\", details?}`; \
            style C (health, sessions, jobs, logs): bare bodies. \
            When authentication is on (`ELIZA_SERVER_AUTH_TOKEN` or JWT settings), every `/api` route \
            needs an `X-API-KEY` header or a bearer token and answers 401 without one. \
            The Socket.IO events are described at `/api/asyncapi.json`.",
        license(name = "MIT"),
    ),
    modifiers(&Conventions),
    tags(
        (name = "health", description = "Health, status, version and logs (no envelope)"),
        (name = "messaging", description = "Agent replies, actions and external ingestion (style B)"),
        (name = "servers", description = "Message servers (style B)"),
        (name = "channels", description = "Channels, participants and presence (style B)"),
        (name = "messages", description = "Channel messages (style B)"),
        (name = "sessions", description = "Agent sessions (no envelope)"),
        (name = "jobs", description = "One-shot agent jobs (no envelope)"),
        (name = "agents", description = "Agents (style A)"),
        (name = "media", description = "Uploads (style B for channels, A for agents) and the /media files"),
        (name = "deprecated", description = "Pre-1.6 paths, answered by the same handlers"),
        (name = "reference", description = "This reference (public, also when authentication is on)"),
    ),
    components(schemas(ApiFailure, AuthRequired, MediaError))
)]
pub struct ApiDoc;

/// Security schemes, and what every operation may answer besides its own statuses: 401 without
/// credentials (auth on), 403 when access is refused, 413 for a body over the limit, 429 when
/// rate limited, 500 for a server fault (storage down). See [`finish`].
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-KEY",
                "The server's `ELIZA_SERVER_AUTH_TOKEN`, or a key from `CONFAB_API_KEYS`",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT (`JWT_SECRET`, `JWT_PUBLIC_KEY_FILE`, `JWT_JWKS_FILE`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the conventions above to every operation once all routes are in, gives each a short
/// summary (its doc comment's first sentence; the whole comment stays as the description), and
/// keeps operation ids unique (a handler serving two methods gets one id per method).
pub fn finish(doc: &mut Document) {
    let auth = utoipa::openapi::security::SecurityRequirement::new("api_key", Vec::<String>::new());
    let bearer =
        utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new());
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        let methods = [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ];
        let present: Vec<&str> = [
            item.get.is_some(),
            item.put.is_some(),
            item.post.is_some(),
            item.delete.is_some(),
            item.patch.is_some(),
            item.head.is_some(),
            item.options.is_some(),
            item.trace.is_some(),
        ]
        .iter()
        .zip(methods)
        .filter_map(|(on, m)| on.then_some(m))
        .collect();
        for (op, method) in operations(item).zip(present) {
            if let Some(id) = &mut op.operation_id
                && !ids.insert(id.clone())
            {
                *id = format!("{id}_{method}");
                ids.insert(id.clone());
            }
            if let Some(summary) = op.summary.take() {
                let flat = summary
                    .replace('`', "")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let short = flat
                    .find(". ")
                    .map_or(flat.clone(), |i| flat[..=i].to_owned());
                if short != flat {
                    op.description = Some(match op.description.take() {
                        Some(rest) => format!("{summary}\n\n{rest}"),
                        None => summary,
                    });
                }
                op.summary = Some(short);
            }
            let protected = path.starts_with("/api/")
                && !op
                    .tags
                    .as_ref()
                    .is_some_and(|t| t.iter().any(|t| t == "reference"));
            let responses = &mut op.responses.responses;
            let mut add = |code: &str, text: &str, schema: &str| {
                responses.entry(code.to_owned()).or_insert_with(|| {
                    RefOr::T(
                        utoipa::openapi::ResponseBuilder::new()
                            .description(text)
                            .content(
                                "application/json",
                                utoipa::openapi::ContentBuilder::new()
                                    .schema(Some(utoipa::openapi::Ref::from_schema_name(schema)))
                                    .build(),
                            )
                            .build(),
                    )
                });
            };
            if protected {
                add(
                    "401",
                    "Authentication required (auth on, no or wrong credentials)",
                    "AuthRequired",
                );
                add("403", "Access refused", "ApiFailure");
            }
            // The request rate limit (`RATE_LIMIT_MAX` per `RATE_LIMIT_WINDOW_MS`) covers every route.
            add("429", "Rate limited", "ApiFailure");
            if op.request_body.is_some() {
                add("413", "Request body too large", "ApiFailure");
                add("400", "Malformed body or wrong content type", "ApiFailure");
            }
            add("500", "Server fault (storage unavailable)", "ApiFailure");
            if protected {
                op.security = Some(vec![auth.clone(), bearer.clone()]);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The same handler under an older path (ElizaOS's pre-1.6 names): documented as deprecated,
/// with its own operation id, and served by the same method router.
pub fn alias<S>(routes: UtoipaMethodRouter<S>, path: &str) -> UtoipaMethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let (schemas, paths, method_router) = routes;
    let mut renamed = Paths::new();
    for (_, mut item) in paths.paths {
        for op in operations(&mut item) {
            op.deprecated = Some(Deprecated::True);
            op.tags = Some(vec!["deprecated".into()]);
            op.operation_id = op.operation_id.take().map(|id| {
                let suffix: String = path
                    .split('/')
                    .filter(|s| !s.is_empty() && !s.starts_with('{'))
                    .collect::<Vec<_>>()
                    .join("_");
                format!("{id}_via_{}", suffix.replace('-', "_"))
            });
        }
        renamed.paths.insert(path.to_owned(), item);
    }
    (schemas, renamed, method_router)
}

/// The published documents, set once the routes are known ([`publish`]).
static PUBLISHED: OnceLock<Published> = OnceLock::new();

struct Published {
    openapi: Vec<u8>,
    asyncapi: Vec<u8>,
    page: String,
}

/// Makes `doc` (and the AsyncAPI document, and the page) what the reference routes serve.
pub fn publish(doc: &Document) {
    PUBLISHED.get_or_init(|| Published {
        openapi: serde_json::to_vec(doc).expect("the document serializes"),
        asyncapi: serde_json::to_vec(&crate::http::events::asyncapi()).expect("serializes"),
        page: utoipa_scalar::Scalar::new(Value::Null)
            .custom_html(DOCS_PAGE)
            .to_html(),
    });
}

fn published() -> &'static Published {
    PUBLISHED.get().expect("published before serving")
}

/// `/api/openapi.json`, `/api/asyncapi.json` and `/api/docs`, outside the authentication layer
/// (the reference is public; the routes it describes are not).
pub fn routes<S: Clone + Send + Sync + 'static>() -> OpenApiRouter<S> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(asyncapi_json))
        .routes(routes!(docs_page))
}

/// `GET /api/openapi.json`: this document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "reference",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
async fn openapi_json() -> Response {
    json_bytes(&published().openapi)
}

/// `GET /api/asyncapi.json`: the Socket.IO events (AsyncAPI 3.0), from confab-protocol's types.
#[utoipa::path(get, path = "/api/asyncapi.json", tag = "reference",
    responses((status = 200, description = "The AsyncAPI 3.0 document", body = Object)))]
async fn asyncapi_json() -> Response {
    json_bytes(&published().asyncapi)
}

/// `GET /api/docs`: this reference, browsable.
#[utoipa::path(get, path = "/api/docs", tag = "reference",
    responses((status = 200, description = "The API reference page", content_type = "text/html")))]
async fn docs_page() -> Response {
    Html(published().page.as_str()).into_response()
}

fn json_bytes(body: &'static [u8]) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Scalar's page, reading the document from `/api/openapi.json` and running the standalone
/// bundle that `web/build.mjs` copies from npm (`@scalar/api-reference`) into the embedded
/// assets; no fonts, proxy or telemetry from elsewhere.
const DOCS_PAGE: &str = r#"<!doctype html>
<html>
<head>
  <title>confab API reference</title>
  <meta charset="utf-8"/>
  <meta name="viewport" content="width=device-width, initial-scale=1"/>
</head>
<body>
  <div id="app"></div>
  <noscript>The machine-readable documents: <a href="/api/openapi.json">/api/openapi.json</a> (REST),
    <a href="/api/asyncapi.json">/api/asyncapi.json</a> (Socket.IO).</noscript>
  <script src="/api-docs/scalar.js"></script>
  <script>
    Scalar.createApiReference('#app', {
      url: '/api/openapi.json',
      withDefaultFonts: false,
      proxyUrl: '',
      telemetry: false,
      hideClientButton: true,
    });
  </script>
</body>
</html>
"#;

// ---- errors ------------------------------------------------------------------------------

/// A failure in any of ElizaOS's styles: `error` is a text (style B, jobs) or an object (style
/// A, API-wide failures, sessions: `{code, message, details?, timestamp?}`).
#[derive(ToSchema)]
pub struct ApiFailure {
    /// `false` (absent in the sessions API's errors).
    pub success: Option<bool>,
    pub error: ErrorDetail,
    /// The reason, for style B's 500s and validation failures.
    pub details: Option<Value>,
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum ErrorDetail {
    Text(String),
    Object(ErrorObject),
}

#[derive(ToSchema)]
pub struct ErrorObject {
    /// A text code (`NOT_FOUND`, `INVALID_CONTENT_TYPE`) or an HTTP status (404).
    pub code: Option<Value>,
    pub message: String,
    pub details: Option<Value>,
    pub timestamp: Option<String>,
}

/// 401 (compat spec §2.1).
#[derive(ToSchema)]
pub struct AuthRequired {
    pub error: String,
    pub message: String,
}

// ---- envelopes ---------------------------------------------------------------------------

/// `{success:true, data}` (styles A and B).
#[derive(ToSchema)]
pub struct Success<T: ToSchema> {
    /// Always `true`.
    pub success: bool,
    pub data: T,
}

// ---- entities ----------------------------------------------------------------------------

/// A message server (§2.6).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageServer {
    pub id: Uuid,
    pub name: String,
    pub source_type: String,
    pub source_id: Option<String>,
    pub metadata: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// A channel (§2.7).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: Uuid,
    pub message_server_id: Uuid,
    pub name: String,
    /// `GROUP`, `DM`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub source_type: Option<String>,
    pub source_id: Option<String>,
    pub topic: Option<String>,
    pub metadata: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// A stored message. As `GET /channels/:id/messages` lists it, it also carries numeric
/// `created_at` / `updated_at` (milliseconds).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub author_id: String,
    pub content: String,
    pub raw_message: Option<Value>,
    pub source_type: Option<String>,
    pub source_id: Option<String>,
    pub metadata: Option<Value>,
    pub in_reply_to_root_message_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(rename = "created_at")]
    pub created_at_ms: Option<i64>,
    #[serde(rename = "updated_at")]
    pub updated_at_ms: Option<i64>,
}

/// The message as ElizaOS's internal bus carries it (`userMessage` in REST replies).
#[derive(ToSchema)]
pub struct BusMessage {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub message_server_id: Value,
    pub author_id: String,
    pub author_display_name: Option<Value>,
    pub content: String,
    pub raw_message: Option<Value>,
    pub source_id: Option<String>,
    pub source_type: Option<String>,
    pub in_reply_to_message_id: Option<String>,
    pub created_at: i64,
    pub metadata: Option<Value>,
}

/// Any JSON object (a character, a job, a session: see the compat spec).
#[derive(ToSchema)]
#[schema(as = Object)]
pub struct Object(pub BTreeMap<String, Value>);

// ---- media --------------------------------------------------------------------------------

/// An upload's multipart body: one field, `file`.
#[derive(ToSchema)]
pub struct UploadForm {
    /// The file (at most 50 MB, of ElizaOS's allowed types; the content must match the type).
    #[schema(value_type = String, format = Binary)]
    pub file: String,
}

/// What an upload answers inside `{success:true, data}`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadedMedia {
    /// Where the file is served: `/media/uploads/...`.
    pub url: String,
    /// The MIME type (channels), or image / video / audio / document (agents).
    #[serde(rename = "type")]
    pub kind: String,
    /// The server-made file name.
    pub filename: String,
    /// The name the client gave.
    pub original_name: String,
    pub size: u64,
}

/// A `/media/...` refusal: `{error}`.
#[derive(ToSchema)]
pub struct MediaError {
    pub error: String,
}

/// The path of a `/media/...` file.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MediaPath {
    /// The channel's or agent's UUID.
    pub id: String,
    /// The stored file's name.
    pub filename: String,
}

/// What a `/media/...` file route answers.
#[derive(utoipa::IntoResponses)]
pub enum MediaFileResponses {
    /// The file (nosniff, sandboxed; scriptable types as an attachment).
    #[response(status = 200, content_type = "application/octet-stream")]
    File(String),
    /// Not a UUID.
    #[response(status = 400)]
    BadId(MediaError),
    /// Credentials given but wrong.
    #[response(status = 401)]
    BadCredentials(MediaError),
    /// A private channel's file, and the caller is not a member.
    #[response(status = 403)]
    NotMember(MediaError),
    /// No such file.
    #[response(status = 404)]
    Missing(MediaError),
}

// ---- path parameters -----------------------------------------------------------------------

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ChannelIdParam {
    /// The channel's UUID.
    pub channel_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ServerIdParam {
    /// The message server's UUID.
    pub server_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AgentIdParam {
    /// The agent's UUID.
    pub agent_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessageIdParam {
    /// The message's UUID.
    pub message_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionIdParam {
    /// The session's id.
    pub session_id: String,
}

// ---- request bodies ------------------------------------------------------------------------
// Handlers read their bodies field by field (ElizaOS's own checks and texts); these say what
// they read. Unknown fields are ignored.

/// `POST /submit`, `POST /action`: an agent's message.
#[derive(ToSchema)]
pub struct AgentMessageRequest {
    pub channel_id: Uuid,
    pub message_server_id: Uuid,
    pub author_id: Uuid,
    pub content: String,
    pub source_type: String,
    pub raw_message: Value,
    #[serde(rename = "messageId")]
    pub message_id: Option<Uuid>,
    pub in_reply_to_message_id: Option<Uuid>,
    pub metadata: Option<Value>,
}

/// `PATCH /action/:id`: the fields to change.
#[derive(ToSchema)]
pub struct ActionUpdateRequest {
    pub content: Option<String>,
    pub raw_message: Option<Value>,
    pub source_type: Option<String>,
    pub in_reply_to_message_id: Option<Uuid>,
    pub author_id: Option<Uuid>,
    pub metadata: Option<Value>,
}

/// `POST /ingest-external`: a message from another platform (ids that are not UUIDs are
/// mapped to UUIDs by name).
#[derive(ToSchema)]
pub struct ExternalMessageRequest {
    pub channel_id: String,
    pub message_server_id: String,
    pub author_id: String,
    pub content: String,
    pub author_display_name: Option<String>,
    pub raw_message: Option<Value>,
    pub in_reply_to_message_id: Option<Uuid>,
    pub source_type: Option<String>,
    pub source_id: Option<String>,
    pub metadata: Option<Value>,
}

/// `POST /channels`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelCreateRequest {
    pub name: String,
    #[serde(rename = "message_server_id")]
    pub message_server_id: Uuid,
    /// Defaults to the caller's entity.
    pub participant_central_user_ids: Option<Vec<Uuid>>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// confab extension: participants only.
    pub private: Option<bool>,
    pub metadata: Option<Value>,
}

/// `POST /message-servers/:id/sync-channels`.
#[derive(ToSchema)]
pub struct ChannelSyncRequest {
    pub channels: Vec<SyncedChannel>,
}

/// One channel of an external platform.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncedChannel {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The platform's id for the channel: what matches it on the next sync.
    pub source_id: String,
}

/// How many channels a sync created or renamed.
#[derive(ToSchema)]
pub struct ChannelSyncResult {
    pub synced: u64,
}

/// `POST /complete`: ElizaOS ≤ 1.4's `{channel_id, server_id}` (or `message_server_id`), or
/// `@elizaos/api-client`'s `{messageId, status, error?}`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompleteRequest {
    #[serde(rename = "channel_id")]
    pub channel_id: Option<Uuid>,
    #[serde(rename = "server_id")]
    pub server_id: Option<Uuid>,
    #[serde(rename = "message_server_id")]
    pub message_server_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    /// `completed` or `failed`.
    pub status: Option<String>,
    pub error: Option<String>,
}

/// What `/complete` answers.
#[derive(ToSchema)]
pub struct Completed {
    /// Always `true`.
    pub success: bool,
    pub message: String,
    pub data: CompletedData,
}

#[derive(ToSchema)]
pub struct CompletedData {
    pub success: bool,
}

/// `PATCH /channels/:id`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPatchRequest {
    pub name: Option<String>,
    /// Replaces the participant list.
    pub participant_central_user_ids: Option<Vec<Uuid>>,
    /// Replaces the metadata.
    pub metadata: Option<Value>,
}

/// `POST /channels/:id/agents`, `POST /message-servers/:id/agents`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentRefRequest {
    pub agent_id: Uuid,
}

/// `POST /message-servers`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerCreateRequest {
    pub name: String,
    pub source_type: String,
    pub source_id: Option<String>,
    pub metadata: Option<Value>,
}

// ---- response data -------------------------------------------------------------------------

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentServer {
    pub message_server_id: Uuid,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerList {
    pub message_servers: Vec<MessageServer>,
}

/// The pre-1.6 key name.
#[derive(ToSchema)]
pub struct LegacyServerList {
    pub servers: Vec<MessageServer>,
}

#[derive(ToSchema)]
pub struct CreatedServer {
    pub server: MessageServer,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerAgents {
    pub message_server_id: Uuid,
    pub agents: Vec<String>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerAgentChange {
    pub message_server_id: Uuid,
    pub agent_id: Uuid,
    pub message: String,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentServers {
    pub agent_id: Uuid,
    pub message_servers: Vec<String>,
}

#[derive(ToSchema)]
pub struct ChannelList {
    pub channels: Vec<Channel>,
}

// ---- health (no envelope) ------------------------------------------------------------------

#[derive(ToSchema)]
pub struct Liveness {
    /// `ok`
    pub status: String,
    pub timestamp: String,
}

/// `OK`, or `DEGRADED` (503) while storage cannot be used; `failing` says why.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: String,
    pub version: String,
    pub timestamp: String,
    pub dependencies: Object,
    pub failing: Option<Object>,
    /// A cluster node's id.
    pub node: Option<String>,
    /// `/health` only.
    pub agent_count: Option<u64>,
}

#[derive(ToSchema)]
pub struct Pong {
    pub pong: bool,
    pub timestamp: i64,
}

#[derive(ToSchema)]
pub struct Hello {
    pub message: String,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerStatus {
    pub status: String,
    pub agent_count: u64,
    pub timestamp: String,
}

#[derive(ToSchema)]
pub struct Version {
    pub version: String,
    pub source: String,
    pub timestamp: String,
    pub environment: String,
    pub uptime: f64,
}

/// `GET|POST /api/server/logs` query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct LogQuery {
    /// `all`, a level name (`info`, `debug`, …) or number.
    pub level: Option<String>,
    /// At most this many entries (default 100, at most 1000).
    pub limit: Option<String>,
    /// Epoch milliseconds or an ISO date (default: the last hour).
    pub since: Option<String>,
    pub agent_name: Option<String>,
    pub agent_id: Option<String>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Logs {
    pub logs: Vec<Object>,
    pub count: u64,
    pub total: u64,
    pub requested_level: String,
    pub agent_name: String,
    pub agent_id: String,
    pub levels: Vec<String>,
}

#[derive(ToSchema)]
pub struct LogsCleared {
    pub status: String,
    pub message: String,
}

// ---- messaging -----------------------------------------------------------------------------

/// `POST /ingest-external`: 202.
#[derive(ToSchema)]
pub struct Ingested {
    pub success: bool,
    pub message: String,
    pub data: IngestedId,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestedId {
    pub message_id: Uuid,
}

// ---- channels ------------------------------------------------------------------------------

/// `GET /dm-channel` query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct DmQuery {
    pub current_user_id: Uuid,
    pub target_user_id: Uuid,
    /// Falls back to the current server when unknown.
    pub dm_server_id: Option<Uuid>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelAgents {
    pub channel_id: Uuid,
    pub participants: Vec<String>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelAgentChange {
    pub channel_id: Uuid,
    pub agent_id: Uuid,
    pub message: String,
}

/// confab extension: who is connected to a channel right now.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub channel_id: Uuid,
    pub entities: Vec<PresentEntity>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresentEntity {
    pub entity_id: String,
    pub connections: u64,
}

// ---- messages ------------------------------------------------------------------------------

/// `GET /channels/:id/messages` query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Page size (default 50, at most 1000).
    pub limit: Option<String>,
    /// Exclusive bound: epoch milliseconds or an ISO date.
    pub before: Option<String>,
}

#[derive(ToSchema)]
pub struct MessageList {
    pub messages: Vec<Message>,
}

/// `POST /channels/:id/messages`.
#[derive(ToSchema)]
pub struct PostMessageRequest {
    pub content: String,
    /// Defaults to the caller's entity.
    pub author_id: Option<Uuid>,
    /// Defaults to the channel's server.
    pub message_server_id: Option<Uuid>,
    pub raw_message: Option<Value>,
    pub in_reply_to_message_id: Option<Uuid>,
    pub source_type: Option<String>,
    pub metadata: Option<Value>,
    /// `websocket` (default), `http`/`sync` (the agent's reply in the response), `sse`/`stream`.
    pub transport: Option<String>,
    /// The sender's id for the message: its idempotency key.
    #[serde(rename = "messageId")]
    pub message_id: Option<String>,
}

/// 201: the bus message as `userMessage`, the stored message as `data`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Posted {
    pub success: bool,
    pub user_message: BusMessage,
    pub data: Message,
    /// `transport: http`: the agent's reply.
    pub agent_response: Option<Value>,
    /// A repeat of an earlier `messageId`.
    pub repeat: Option<bool>,
}

/// `PATCH /messages/:id`.
#[derive(ToSchema)]
pub struct EditMessageRequest {
    pub content: String,
}

/// `POST /messages/search`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    /// Every word must occur.
    pub query: String,
    pub channel_id: Option<Uuid>,
    pub author_id: Option<String>,
    /// Epoch milliseconds or an ISO date.
    pub from: Option<Value>,
    pub to: Option<Value>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub page: Option<u32>,
}

#[derive(ToSchema)]
pub struct SearchResult {
    pub messages: Vec<Message>,
    pub limit: u32,
    pub offset: u32,
}

// ---- sessions, jobs, agents ----------------------------------------------------------------

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionsHealth {
    pub status: String,
    pub active_sessions: u64,
    pub timestamp: String,
    pub expiring_soon: u64,
    pub uptime: f64,
}

/// `POST /sessions`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCreateRequest {
    pub agent_id: Uuid,
    pub user_id: Uuid,
    pub metadata: Option<Value>,
    pub timeout_config: Option<TimeoutConfigRequest>,
}

/// A session's timeout configuration (minutes).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutConfigRequest {
    pub timeout_minutes: Option<u32>,
    pub auto_renew: Option<bool>,
    pub max_duration_minutes: Option<u32>,
    pub warning_threshold_minutes: Option<u32>,
}

/// `POST /sessions/:id/messages`.
#[derive(ToSchema)]
pub struct SessionMessageRequest {
    pub content: String,
    pub metadata: Option<Value>,
    /// `websocket` (default), `http`/`sync`, `sse`/`stream`.
    pub transport: Option<String>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionPosted {
    pub success: bool,
    pub user_message: BusMessage,
    pub session_status: Object,
    /// `transport: http`: the agent's reply.
    pub agent_response: Option<Value>,
}

/// `GET /sessions/:id/messages` query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionHistoryQuery {
    pub limit: Option<String>,
    /// Epoch milliseconds or an ISO date.
    pub before: Option<String>,
    /// Epoch milliseconds or an ISO date.
    pub after: Option<String>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionMessages {
    pub messages: Vec<SessionMessage>,
    pub has_more: bool,
    pub cursors: Option<Object>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionMessage {
    pub id: Uuid,
    pub content: String,
    pub author_id: String,
    pub is_agent: bool,
    pub created_at: String,
    pub metadata: Object,
}

#[derive(ToSchema)]
pub struct SessionList {
    pub sessions: Vec<Object>,
    pub total: u64,
    pub stats: Object,
}

#[derive(ToSchema)]
pub struct Deleted {
    pub success: bool,
    pub message: String,
}

/// `POST /jobs`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobCreateRequest {
    pub agent_id: Option<Uuid>,
    pub user_id: Uuid,
    pub content: String,
    pub metadata: Option<Value>,
    pub timeout_ms: Option<u64>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobCreated {
    pub job_id: String,
    pub status: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// `GET /jobs` query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    pub limit: Option<String>,
    /// `pending`, `processing`, `completed`, `failed`, `timeout`.
    pub status: Option<String>,
}

#[derive(ToSchema)]
pub struct JobList {
    pub jobs: Vec<Object>,
    pub total: u64,
    pub filtered: u64,
}

#[derive(ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentSummary>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentSummary {
    pub id: Uuid,
    pub name: String,
    pub character_name: Option<String>,
    pub bio: Option<Value>,
    /// `active` or `inactive`.
    pub status: String,
}

/// `POST /api/agents`: one of `characterJson`, `agent` (a character object) or
/// `characterPath` (a JSON file on the server). Operators only when authentication is on.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentCreateRequest {
    pub character_json: Option<Object>,
    pub agent: Option<Object>,
    pub character_path: Option<String>,
}

#[derive(ToSchema)]
pub struct CreatedAgent {
    pub id: Uuid,
    pub character: Object,
}

#[derive(ToSchema)]
pub struct StartedAgent {
    pub id: Uuid,
    pub name: String,
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every REST module, as compiled: a route added with axum's `.route(...)` would be served
    /// without being documented, so none may be (they use `.routes(routes!(...))`).
    const MODULES: &[(&str, &str)] = &[
        ("agent_reply.rs", include_str!("agent_reply.rs")),
        ("agents.rs", include_str!("agents.rs")),
        ("channels.rs", include_str!("channels.rs")),
        ("core.rs", include_str!("core.rs")),
        ("envelope.rs", include_str!("envelope.rs")),
        ("health.rs", include_str!("health.rs")),
        ("jobs.rs", include_str!("jobs.rs")),
        ("messages.rs", include_str!("messages.rs")),
        ("mod.rs", include_str!("mod.rs")),
        ("servers.rs", include_str!("servers.rs")),
        ("sessions.rs", include_str!("sessions.rs")),
        ("shapes.rs", include_str!("shapes.rs")),
        ("../lib.rs", include_str!("../lib.rs")),
    ];

    #[test]
    fn no_route_is_added_without_its_documentation() {
        for (name, source) in MODULES {
            for (n, line) in source.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                assert!(
                    !code.contains(".route(") && !code.contains(".route_service("),
                    "{name}:{}: a route added with axum's .route() is not documented; \
                     annotate the handler with #[utoipa::path] and add it with .routes(routes!(..))",
                    n + 1
                );
            }
        }
    }

    #[test]
    fn every_operation_has_a_unique_id_a_summary_and_documented_errors() {
        let doc = crate::http::openapi_document();
        let mut ids = std::collections::HashSet::new();
        let mut count = 0;
        for (path, item) in doc.paths.paths.clone().iter_mut() {
            for op in operations(item) {
                count += 1;
                let id = op.operation_id.clone().expect("an operation id");
                assert!(ids.insert(id.clone()), "duplicate operation id {id}");
                assert!(op.summary.is_some(), "{path}: no summary");
                for code in ["429", "500"] {
                    assert!(
                        op.responses.responses.contains_key(code),
                        "{path}: no {code}"
                    );
                }
                if path.starts_with("/api/")
                    && !path.starts_with("/api/docs")
                    && !path.ends_with(".json")
                {
                    assert!(op.responses.responses.contains_key("401"), "{path}: no 401");
                    assert!(op.security.is_some(), "{path}: no security");
                }
            }
        }
        assert!(count >= 80, "{count} operations");
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        // Every schema a response or body refers to is in the document.
        let text = json.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                json["components"]["schemas"].get(name).is_some(),
                "dangling reference to {name}"
            );
        }
    }
}
