//! Media: uploads (compat spec §2.7 `upload-media`) and the `/media/...` files (§2.1 item 6).
//!
//! * `POST /api/messaging/channels/:channelId/upload-media` and its ElizaOS twin
//!   `POST /api/media/channels/:channelId/upload-media` (style B), and
//!   `POST /api/media/agents/:agentId/upload-media` (style A): one multipart field `file`,
//!   at most 50 MB, of ElizaOS's allowed types — and the content must be what the type says
//!   (checked by its magic bytes; text must be UTF-8). The file is stored under a server-made
//!   name whose extension follows the checked type.
//! * `GET /media/uploads/channels/:channelId/:filename`, `/media/uploads/agents/:agentId/:filename`,
//!   `/media/generated/:agentId/:filename`: 400 `{error}` on a non-UUID id, 404 `{error}` for a
//!   missing file (a name that is not a plain file name is missing: nothing escapes the
//!   store). Served with `X-Content-Type-Options: nosniff`, a sandboxing
//!   `Content-Security-Policy`, and every type a browser could run (HTML, SVG, XML, scripts,
//!   PDF, anything unknown) as `Content-Disposition: attachment`.
//! * Access: [`MediaFile`], the serving routes' extractor, asks [`crate::access`] for
//!   `Resource::Media` (a private channel's files are for its members).
//! * Deletion: [`removal_hook`] removes a deleted channel's files and a deleted message's.

use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Multipart, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use confab_protocol::parse_uuid;
use confab_store::media::{MediaKey, MediaKind, MediaStore};
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::envelope::{ApiError, ApiResult, ok};
use super::openapi as doc;
use crate::access::{Action, MediaOwner, Resource};
use crate::auth::{AuthError, Principal, Trust};
use utoipa_axum::{router::OpenApiRouter, routes};

/// ElizaOS's `MAX_FILE_SIZE`.
pub const MAX_FILE_BYTES: usize = 50 * 1024 * 1024;
/// The request body around the file: multipart headers and boundaries.
const BODY_SLACK: usize = 64 * 1024;

/// ElizaOS's `ALLOWED_MEDIA_MIME_TYPES`: what the client may say a file is, with the types its
/// content may be found to be (by [`infer`]) and the extension it is stored under.
const ALLOWED: &[(&str, &[&str], &str)] = &[
    ("audio/mpeg", &["audio/mpeg"], "mp3"),
    ("audio/mp3", &["audio/mpeg"], "mp3"),
    ("audio/wav", &["audio/x-wav"], "wav"),
    ("audio/x-wav", &["audio/x-wav"], "wav"),
    ("audio/wave", &["audio/x-wav"], "wav"),
    ("audio/ogg", &["audio/ogg", "audio/opus"], "ogg"),
    ("audio/webm", &["video/webm"], "webm"),
    ("audio/mp4", &["audio/m4a", "video/mp4"], "m4a"),
    ("audio/aac", &["audio/aac"], "aac"),
    ("audio/flac", &["audio/x-flac"], "flac"),
    ("image/jpeg", &["image/jpeg"], "jpg"),
    ("image/png", &["image/png"], "png"),
    ("image/gif", &["image/gif"], "gif"),
    ("image/webp", &["image/webp"], "webp"),
    (
        "video/mp4",
        &["video/mp4", "video/x-m4v", "audio/m4a"],
        "mp4",
    ),
    ("video/webm", &["video/webm"], "webm"),
    ("application/pdf", &["application/pdf"], "pdf"),
    ("text/plain", &[], "txt"),
];

fn allowed_list() -> String {
    ALLOWED
        .iter()
        .map(|(t, ..)| *t)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The body limit of an upload route: the file plus the multipart framing.
fn upload_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_FILE_BYTES + BODY_SLACK)
}

/// Routes under `/api/messaging`.
pub fn messaging_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_channel))
        .layer(upload_limit())
}

/// Routes under `/api/media`.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_channel_media))
        .routes(routes!(upload_agent))
        .layer(upload_limit())
}

/// The `/media/...` files (outside `/api`, as in ElizaOS).
pub fn serving_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(serve_channel_file))
        .routes(routes!(serve_agent_file))
        .routes(routes!(serve_generated_file))
}

/// `GET /media/uploads/channels/{id}/{filename}`.
#[utoipa::path(
    get,
    path = "/media/uploads/channels/{id}/{filename}",
    tag = "media",
    params(doc::MediaPath),
    responses(doc::MediaFileResponses)
)]
async fn serve_channel_file(state: State<AppState>, file: MediaFile) -> Response {
    serve(state, file).await
}

/// `GET /media/uploads/agents/{id}/{filename}`.
#[utoipa::path(
    get,
    path = "/media/uploads/agents/{id}/{filename}",
    tag = "media",
    params(doc::MediaPath),
    responses(doc::MediaFileResponses)
)]
async fn serve_agent_file(state: State<AppState>, file: MediaFile) -> Response {
    serve(state, file).await
}

/// `GET /media/generated/{id}/{filename}`: what an agent generated.
#[utoipa::path(
    get,
    path = "/media/generated/{id}/{filename}",
    tag = "media",
    params(doc::MediaPath),
    responses(doc::MediaFileResponses)
)]
async fn serve_generated_file(state: State<AppState>, file: MediaFile) -> Response {
    serve(state, file).await
}

// ---- uploads -------------------------------------------------------------------------------

/// How a route answers errors: style B (`/channels`) or style A (`/agents`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Messaging,
    Agents,
}

impl Style {
    fn error(self, status: StatusCode, code: &str, text: impl Into<String>) -> ApiError {
        match self {
            Style::Messaging => ApiError::new(status, text),
            Style::Agents => ApiError::coded(status, code, text),
        }
    }
}

/// A file as received and checked.
struct Upload {
    original_name: String,
    /// The type the client gave, which the content matched.
    mime: String,
    ext: &'static str,
    data: Bytes,
}

/// `POST /api/messaging/channels/{channel_id}/upload-media`.
#[utoipa::path(post, path = "/channels/{channel_id}/upload-media", tag = "media",
    params(doc::ChannelIdParam),
    request_body(content = doc::UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = doc::Success<doc::UploadedMedia>),
        (status = 404, description = "No such channel", body = doc::ApiFailure),
        (status = 413, description = "Over 50 MB", body = doc::ApiFailure),
        (status = 429, description = "Too many uploads", body = doc::ApiFailure)))]
async fn upload_channel(
    State(state): State<AppState>,
    caller: Principal,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    ext: axum::http::Extensions,
    mut multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let res = match limit(&state, &ext, &headers) {
        Some(refused) => refused,
        None => upload_to_channel(state, caller, id, &mut multipart)
            .await
            .into_response(),
    };
    drain(multipart).await;
    res
}

async fn upload_to_channel(
    state: AppState,
    caller: Principal,
    id: String,
    multipart: &mut Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let style = Style::Messaging;
    let channel = parse_uuid(&id).ok_or_else(|| {
        style.error(
            StatusCode::BAD_REQUEST,
            "INVALID_ID",
            "Invalid channelId format",
        )
    })?;
    state
        .security
        .allow(
            &caller,
            Resource::Media(MediaOwner::Channel(channel)),
            Action::Write,
        )
        .await?;
    let upload = receive(multipart, style).await?;
    let key = store(&state, MediaKind::Channel, channel, &upload, style).await?;
    tracing::info!(%channel, filename = %key.filename, size = upload.data.len(), "file uploaded");
    Ok(ok(json!({
        "url": key.url(),
        "type": upload.mime,
        "filename": key.filename,
        "originalName": upload.original_name,
        "size": upload.data.len(),
    })))
}

/// `POST /api/media/channels/{channel_id}/upload-media`: ElizaOS's twin of the messaging route.
#[utoipa::path(post, path = "/channels/{channel_id}/upload-media", tag = "media",
    params(doc::ChannelIdParam),
    request_body(content = doc::UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = doc::Success<doc::UploadedMedia>),
        (status = 404, description = "No such channel", body = doc::ApiFailure),
        (status = 413, description = "Over 50 MB", body = doc::ApiFailure),
        (status = 429, description = "Too many uploads", body = doc::ApiFailure)))]
async fn upload_channel_media(
    state: State<AppState>,
    caller: Principal,
    headers: axum::http::HeaderMap,
    id: Path<String>,
    ext: axum::http::Extensions,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    upload_channel(state, caller, headers, id, ext, multipart).await
}

/// `POST /api/media/agents/{agent_id}/upload-media` (style A; `type` is image, video, audio or
/// document).
#[utoipa::path(post, path = "/agents/{agent_id}/upload-media", tag = "media",
    params(doc::AgentIdParam),
    request_body(content = doc::UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = doc::Success<doc::UploadedMedia>),
        (status = 413, description = "Over 50 MB", body = doc::ApiFailure),
        (status = 429, description = "Too many uploads", body = doc::ApiFailure)))]
async fn upload_agent(
    State(state): State<AppState>,
    caller: Principal,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    ext: axum::http::Extensions,
    mut multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let res = match limit(&state, &ext, &headers) {
        Some(refused) => refused,
        None => upload_to_agent(state, caller, id, &mut multipart)
            .await
            .into_response(),
    };
    drain(multipart).await;
    res
}

/// Reads what is left of a refused request's body (within the body limit), so the client,
/// still sending, gets the answer instead of a reset connection.
async fn drain(multipart: Result<Multipart, MultipartRejection>) {
    let Ok(mut multipart) = multipart else {
        return;
    };
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}

async fn upload_to_agent(
    state: AppState,
    caller: Principal,
    id: String,
    multipart: &mut Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let style = Style::Agents;
    let agent = parse_uuid(&id).ok_or_else(|| {
        style.error(
            StatusCode::BAD_REQUEST,
            "INVALID_ID",
            "Invalid agent ID format",
        )
    })?;
    state
        .security
        .allow(
            &caller,
            Resource::Media(MediaOwner::Agent(agent)),
            Action::Write,
        )
        .await
        .map_err(|_| {
            style.error(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                confab_protocol::texts::ACCESS_OPERATOR_ONLY,
            )
        })?;
    let upload = receive(multipart, style).await?;
    let key = store(&state, MediaKind::Agent, agent, &upload, style).await?;
    tracing::info!(%agent, filename = %key.filename, size = upload.data.len(), "agent media uploaded");
    Ok(ok(json!({
        "url": key.url(),
        "type": content_kind(&upload.mime),
        "filename": key.filename,
        "originalName": upload.original_name,
        "size": upload.data.len(),
    })))
}

/// ElizaOS core's `getContentTypeFromMimeType`, which names the agents route's `type`.
fn content_kind(mime: &str) -> &'static str {
    if mime.starts_with("image/") {
        "image"
    } else if mime.starts_with("video/") {
        "video"
    } else if mime.starts_with("audio/") {
        "audio"
    } else {
        "document"
    }
}

/// ElizaOS's two upload limits per client address: the refusal, if over one (429
/// `{success:false, error:{code, message}}` with `Retry-After`).
fn limit(
    state: &AppState,
    ext: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
) -> Option<Response> {
    let limits = &state.security.limits;
    let ip = limits.client_ip(ext, headers);
    limits.upload(ip).err().map(|e| {
        let mut res =
            ApiError::coded(StatusCode::TOO_MANY_REQUESTS, e.code, e.message).into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(e.retry_after_secs));
        res
    })
}

/// Reads the one `file` field, within the size limit, and checks its type and content.
async fn receive(
    multipart: &mut Result<Multipart, MultipartRejection>,
    style: Style,
) -> Result<Upload, ApiError> {
    let bad = |code: &str, text: String| style.error(StatusCode::BAD_REQUEST, code, text);
    let too_large = || {
        style.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "FILE_TOO_LARGE",
            "File too large. The limit is 50MB",
        )
    };
    let multipart = multipart
        .as_mut()
        .map_err(|_| bad("INVALID_REQUEST", "No media file provided".into()))?;
    let mut upload: Option<Upload> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => {
                return Err(bad(
                    "INVALID_REQUEST",
                    format!("Invalid multipart body: {e}"),
                ));
            }
        };
        if field.name() != Some("file") {
            continue;
        }
        if upload.is_some() {
            return Err(bad("INVALID_REQUEST", "Only one file per upload".into()));
        }
        let original_name = field.file_name().unwrap_or_default().to_owned();
        if original_name.is_empty()
            || original_name.contains("..")
            || original_name.contains('/')
            || original_name.contains('\\')
            || original_name.chars().any(char::is_control)
            || original_name.len() > 255
        {
            return Err(bad("INVALID_FILENAME", "Invalid filename detected".into()));
        }
        let claimed = field
            .content_type()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let Some(&(mime, found_as, ext)) = ALLOWED.iter().find(|(t, ..)| *t == claimed) else {
            return Err(bad(
                "INVALID_FILE_TYPE",
                format!("Invalid file type. Only {} are allowed", allowed_list()),
            ));
        };
        let mut field = field;
        let mut data = BytesMut::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if data.len() + chunk.len() > MAX_FILE_BYTES {
                        return Err(too_large());
                    }
                    data.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
                Err(e) => {
                    return Err(bad(
                        "INVALID_REQUEST",
                        format!("Invalid multipart body: {e}"),
                    ));
                }
            }
        }
        let data = data.freeze();
        if !content_matches(&data, found_as) {
            return Err(bad(
                "CONTENT_MISMATCH",
                format!("File content does not match its type ({mime})"),
            ));
        }
        upload = Some(Upload {
            original_name,
            mime: mime.to_owned(),
            ext,
            data,
        });
    }
    upload.ok_or_else(|| bad("INVALID_REQUEST", "No media file provided".into()))
}

/// Whether the bytes are what the claimed type allows: one of `found_as` by magic bytes, or,
/// for text (`found_as` empty), UTF-8 without NULs that no binary signature claims.
fn content_matches(data: &[u8], found_as: &[&str]) -> bool {
    if data.is_empty() {
        return false;
    }
    if found_as.is_empty() {
        // Text that looks like markup is still text: it is served as `text/plain`, nosniff.
        return infer::get(data).is_none_or(|t| t.matcher_type() == infer::MatcherType::Text)
            && !data.contains(&0)
            && std::str::from_utf8(data).is_ok();
    }
    infer::get(data).is_some_and(|t| found_as.contains(&t.mime_type()))
}

/// Stores an upload under ElizaOS's name shape, `<ms>-<random><.ext>` (the extension from the
/// checked type, not the client's name).
async fn store(
    state: &AppState,
    kind: MediaKind,
    owner: Uuid,
    upload: &Upload,
    style: Style,
) -> Result<MediaKey, ApiError> {
    let random = Uuid::new_v4().as_u128() % 1_000_000_000;
    let name = format!("{}-{random}.{}", confab_protocol::now_ms(), upload.ext);
    let key = MediaKey::new(kind, owner, &name).expect("a plain file name");
    let content_type = confab_store::media::content_type_for(&name);
    state
        .media
        .put(&key, content_type, upload.data.clone())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "storing an upload");
            style
                .error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UPLOAD_ERROR",
                    "Failed to process media upload",
                )
                .details(e)
        })?;
    Ok(key)
}

// ---- serving -------------------------------------------------------------------------------

/// A `/media/...` file the caller may read: the serving routes' extractor. 400 on a non-UUID
/// id, 404 on a name that is not a plain file name, 401 on wrong credentials, 403 for a
/// private channel's file and a caller who is not a member.
pub struct MediaFile(pub MediaKey);

/// A refusal of a media request: ElizaOS's bare `{error}` bodies.
pub struct MediaRefusal(StatusCode, String);

impl IntoResponse for MediaRefusal {
    fn into_response(self) -> Response {
        let mut res = (self.0, axum::Json(json!({ "error": self.1 }))).into_response();
        res.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        res
    }
}

impl FromRequestParts<AppState> for MediaFile {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let path = parts.uri.path();
        let (kind, id_text) = if path.starts_with("/media/uploads/channels/") {
            (MediaKind::Channel, "Invalid channel ID format")
        } else if path.starts_with("/media/uploads/agents/") {
            (MediaKind::Agent, "Invalid agent ID format")
        } else {
            (MediaKind::Generated, "Invalid agent ID format")
        };
        let Path((id, filename)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                MediaRefusal(StatusCode::NOT_FOUND, "File not found".into()).into_response()
            })?;
        let Some(owner) = parse_uuid(&id) else {
            return Err(MediaRefusal(StatusCode::BAD_REQUEST, id_text.into()).into_response());
        };
        let Some(key) = MediaKey::new(kind, owner, &filename) else {
            return Err(
                MediaRefusal(StatusCode::NOT_FOUND, "File not found".into()).into_response()
            );
        };
        let caller = media_caller(parts, state).map_err(IntoResponse::into_response)?;
        let resource = Resource::Media(match kind {
            MediaKind::Channel => MediaOwner::Channel(owner),
            MediaKind::Agent | MediaKind::Generated => MediaOwner::Agent(owner),
        });
        state
            .security
            .access
            .decide(&caller, resource, Action::Read)
            .await
            .map_err(|d| MediaRefusal(StatusCode::FORBIDDEN, d.reason.into()).into_response())?;
        Ok(MediaFile(key))
    }
}

/// Who asks for a file. `/media` is outside `/api` and, as in ElizaOS, needs no credentials: a
/// request without any is nobody in particular (a public channel's files, agents' files);
/// credentials that are sent must be good (401) and make a member of a private channel.
fn media_caller(parts: &Parts, state: &AppState) -> Result<Principal, AuthError> {
    let h = &parts.headers;
    let presented = ["x-api-key", "authorization", "x-entity-id"]
        .iter()
        .any(|n| h.contains_key(*n));
    match state.security.auth.http(h) {
        Ok(p) => Ok(p),
        Err(_) if !presented => Ok(Principal {
            entity: None,
            trust: Trust::Unverified,
            operator: false,
            channels: None,
            expires: None,
        }),
        Err(e) => {
            crate::metrics::refused(e.kind);
            Err(e)
        }
    }
}

/// Types a browser shows without running anything; everything else is a download.
fn inline_safe(content_type: &str) -> bool {
    let t = content_type.split(';').next().unwrap_or_default().trim();
    matches!(
        t,
        "image/jpeg" | "image/png" | "image/gif" | "image/webp" | "text/plain"
    ) || t.starts_with("audio/")
        || t.starts_with("video/")
}

async fn serve(State(state): State<AppState>, MediaFile(key): MediaFile) -> Response {
    let object = match state.media.get(&key).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            return MediaRefusal(StatusCode::NOT_FOUND, "File not found".into()).into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, url = %key.url(), "reading a media file");
            return MediaRefusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "Media storage is unavailable".into(),
            )
            .into_response();
        }
    };
    let content_type = HeaderValue::from_str(&object.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = if inline_safe(&object.content_type) {
        format!("inline; filename=\"{}\"", key.filename)
    } else {
        format!("attachment; filename=\"{}\"", key.filename)
    };
    let mut res = object.data.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).expect("a plain file name"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Opened on its own, a file is a sandboxed document that may load nothing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'",
        ),
    );
    h.insert(
        axum::http::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-site"),
    );
    // Names are never reused, but access can change: caches keep a file briefly and privately.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    res
}

// ---- deletion ------------------------------------------------------------------------------

/// What the hub calls after a deletion: a deleted or cleared channel loses its uploads, a
/// deleted message the uploads of its channel that it carried.
pub fn removal_hook(media: Arc<dyn MediaStore>) -> confab_hub::RemovalHook {
    Arc::new(move |removed| {
        let media = media.clone();
        tokio::spawn(async move {
            match removed {
                confab_hub::Removed::Channel(channel) => {
                    match media.delete_owner(MediaKind::Channel, channel).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(%channel, files = n, "channel media removed"),
                        Err(e) => tracing::warn!(%channel, error = %e, "removing channel media"),
                    }
                }
                confab_hub::Removed::Message(m) => {
                    for key in message_files(&m) {
                        if let Err(e) = media.delete(&key).await {
                            tracing::warn!(url = %key.url(), error = %e, "removing message media");
                        }
                    }
                }
            }
        });
    })
}

/// The channel uploads a stored message carries (in its metadata or raw message), of its own
/// channel only.
fn message_files(m: &confab_store::StoredMessage) -> Vec<MediaKey> {
    let mut urls = Vec::new();
    for holder in [&m.metadata, &m.raw_message].into_iter().flatten() {
        if let Some(a) = holder.get("attachments") {
            urls.extend(confab_protocol::attachments::media_urls(a));
        }
    }
    let mut keys: Vec<MediaKey> = urls
        .iter()
        .filter_map(|u| MediaKey::from_url(u))
        .filter(|k| k.kind == MediaKind::Channel && k.owner == m.channel_id)
        .collect();
    keys.sort_by(|a, b| a.filename.cmp(&b.filename));
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_checks() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert!(content_matches(png, &["image/png"]));
        assert!(!content_matches(png, &["image/jpeg"]));
        assert!(!content_matches(b"<html><script>", &["image/png"]));
        assert!(content_matches("héllo\n".as_bytes(), &[]));
        assert!(!content_matches(png, &[]));
        assert!(!content_matches(b"a\0b", &[]));
        assert!(!content_matches(b"", &[]));
        assert!(content_matches(b"<html><script>alert(1)</script>", &[]));
        assert!(!content_matches(b"%PDF-1.4", &["image/png"]));
        assert!(content_matches(b"%PDF-1.4\n", &["application/pdf"]));
    }

    #[test]
    fn inline_or_download() {
        for t in [
            "image/png",
            "text/plain; charset=utf-8",
            "video/mp4",
            "audio/mpeg",
        ] {
            assert!(inline_safe(t), "{t}");
        }
        for t in [
            "text/html",
            "image/svg+xml",
            "application/pdf",
            "application/octet-stream",
            "text/javascript",
            "application/xml",
        ] {
            assert!(!inline_safe(t), "{t}");
        }
    }
}
