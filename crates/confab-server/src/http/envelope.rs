//! Response envelopes, request bodies and query strings (compat spec §2.1, §2.2).
//!
//! ElizaOS mixes three envelope styles. The messaging routers use style B: success
//! `{success:true, data}` and failure `{success:false, error:"<text>", details?}` (the error is a
//! string). API-wide failures (unknown endpoint, wrong content type) carry an object in `error`.
//! Health and system routes answer without an envelope.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use confab_protocol::parse_uuid;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// A failed request, already in the shape the client gets.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

pub type ApiResult = Result<Response, ApiError>;

impl ApiError {
    /// Style B: `{success:false, error:"<text>"}`.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({ "success": false, "error": error.into() }),
        }
    }

    /// Style A (`/api/agents`): `{success:false, error:{code, message, details?}}`.
    pub fn coded(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({ "success": false, "error": { "code": code, "message": message.into() } }),
        }
    }

    /// Any body (style C, and the jobs API's errors).
    pub fn with_body(status: StatusCode, body: Value) -> Self {
        ApiError { status, body }
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    pub fn forbidden(error: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, error)
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error)
    }

    pub fn internal(error: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error)
    }

    /// Adds style B's optional `details`.
    pub fn details(mut self, details: impl std::fmt::Display) -> Self {
        self.body["details"] = json!(details.to_string());
        self
    }

    /// Unknown `/api/*` path (§2.1 item 11).
    pub fn endpoint_not_found() -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            body: json!({
                "success": false,
                "error": { "message": "API endpoint not found", "code": 404 },
            }),
        }
    }

    /// A POST/PUT/PATCH body that is not JSON, multipart or urlencoded (§2.1 item 9).
    pub fn invalid_content_type() -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "success": false,
                "error": {
                    "code": "INVALID_CONTENT_TYPE",
                    "message": "Invalid or missing Content-Type header",
                },
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// A hub failure: a message server that does not exist is the caller's mistake (404 with the
/// hub's text), anything else a server fault (500).
pub fn hub_failure(e: confab_hub::HubError) -> ApiError {
    match e {
        confab_hub::HubError::UnknownServer(_) => ApiError::not_found(e.to_string()),
        confab_hub::HubError::ChannelNotFound => ApiError::not_found("Channel not found"),
        e => ApiError::internal(e.to_string()),
    }
}

/// Maps an internal failure to 500 with the route's ElizaOS text and the reason as `details`.
pub fn failed<E: std::fmt::Display>(text: &str) -> impl FnOnce(E) -> ApiError + '_ {
    move |e| ApiError::internal(text).details(e)
}

/// 200 `{success:true, data}`.
pub fn ok(data: Value) -> Response {
    Json(json!({ "success": true, "data": data })).into_response()
}

/// 201 `{success:true, data}`.
pub fn created(data: Value) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({ "success": true, "data": data })),
    )
        .into_response()
}

/// 204 without a body.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A body without envelope.
pub fn bare(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

// ---- request bodies ----------------------------------------------------------------------

/// A JSON request body, as a JSON object, made into `T`.
///
/// Unlike axum's `Json`, every failure answers in style B: malformed JSON, a body that is not an
/// object, or fields of the wrong type give 400 `{success:false, error:"..."}`. An empty body is
/// `{}` (Express gives handlers `{}` too, so they answer with their own "missing fields" text),
/// and so are urlencoded and multipart bodies, which ElizaOS's JSON routes never parse.
///
/// The routers' compatibility shim is applied here: a deprecated `server_id` is copied into
/// `message_server_id` when the latter is missing (§2.5).
pub struct JsonBody<T>(pub T);

/// The loosely typed body most handlers read, field by field, so that missing or wrong fields
/// get ElizaOS's own error texts.
pub type Body = Map<String, Value>;

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let parsed_elsewhere = matches!(
            essence(req.headers()).as_deref(),
            Some("application/x-www-form-urlencoded" | "multipart/form-data")
        );
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
            } else {
                ApiError::bad_request(format!("Failed to read request body: {}", e.body_text()))
            }
        })?;
        let mut object = if parsed_elsewhere || bytes.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(object)) => object,
                Ok(_) => return Err(ApiError::bad_request("Request body must be a JSON object")),
                Err(e) => return Err(ApiError::bad_request(format!("Invalid JSON body: {e}"))),
            }
        };
        server_id_shim(&mut object);
        T::deserialize(Value::Object(object))
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("Invalid request body: {e}")))
    }
}

/// `server_id` → `message_server_id` when the latter is missing (ElizaOS's router middleware).
fn server_id_shim(body: &mut Body) {
    let legacy = body.get("server_id").filter(|v| truthy(v)).cloned();
    if let Some(legacy) = legacy
        && !body.get("message_server_id").is_some_and(truthy)
    {
        tracing::warn!(
            "[DEPRECATED] Parameter \"server_id\" is deprecated. Use \"message_server_id\" instead."
        );
        body.insert("message_server_id".into(), legacy);
    }
}

/// JavaScript truthiness, which ElizaOS's `!field` checks use.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// What JavaScript's `String(v)` gives for the scalars clients send (objects as JSON).
pub fn js_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Field access with ElizaOS's semantics.
pub trait Fields {
    /// The field if present and truthy.
    fn truthy_field(&self, key: &str) -> Option<&Value>;
    /// The field as a UUID, like `validateUuid` (a string in 8-4-4-4-12 form).
    fn uuid(&self, key: &str) -> Option<Uuid>;
    /// A truthy field as text.
    fn text(&self, key: &str) -> Option<String>;
    /// The field if it is an object.
    fn object(&self, key: &str) -> Option<&Map<String, Value>>;
}

impl Fields for Map<String, Value> {
    fn truthy_field(&self, key: &str) -> Option<&Value> {
        self.get(key).filter(|v| truthy(v))
    }

    fn uuid(&self, key: &str) -> Option<Uuid> {
        self.get(key).and_then(Value::as_str).and_then(parse_uuid)
    }

    fn text(&self, key: &str) -> Option<String> {
        self.truthy_field(key).map(js_string)
    }

    fn object(&self, key: &str) -> Option<&Map<String, Value>> {
        self.get(key).and_then(Value::as_object)
    }
}

// ---- query strings -----------------------------------------------------------------------

/// The query string as a map; never rejects (a malformed query reads as empty, as Express's
/// lenient parser would mostly do).
pub struct QueryMap(pub HashMap<String, String>);

impl QueryMap {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let map = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|Query(m)| m)
            .unwrap_or_default();
        Ok(QueryMap(map))
    }
}

// ---- content type ------------------------------------------------------------------------

/// The lower-cased media type without parameters.
fn essence(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(ct.split(';').next()?.trim().to_ascii_lowercase())
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    length > 0 || headers.contains_key(header::TRANSFER_ENCODING)
}

/// ElizaOS's `/api` content-type check: a POST, PUT or PATCH that carries a body must say it
/// is JSON, multipart or urlencoded.
pub async fn content_type_guard(req: Request, next: Next) -> Response {
    let checked = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
    if checked && has_body(req.headers()) {
        let accepted = essence(req.headers()).is_some_and(|e| {
            e == "application/json"
                || e.ends_with("+json")
                || e == "multipart/form-data"
                || e == "application/x-www-form-urlencoded"
        });
        if !accepted {
            return ApiError::invalid_content_type().into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truthiness_follows_javascript() {
        for v in [json!(null), json!(false), json!(0), json!(0.0), json!("")] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [json!(true), json!(1), json!("x"), json!([]), json!({})] {
            assert!(truthy(&v), "{v}");
        }
    }

    #[test]
    fn shim_copies_server_id_only_when_missing() {
        let mut b = json!({"server_id": "a"}).as_object().unwrap().clone();
        server_id_shim(&mut b);
        assert_eq!(b["message_server_id"], "a");
        let mut b = json!({"server_id": "a", "message_server_id": "b"})
            .as_object()
            .unwrap()
            .clone();
        server_id_shim(&mut b);
        assert_eq!(b["message_server_id"], "b");
    }

    #[test]
    fn fields() {
        let b = json!({"id": "123e4567-e89b-12d3-a456-426614174000", "bad": "x", "n": 5})
            .as_object()
            .unwrap()
            .clone();
        assert!(b.uuid("id").is_some());
        assert!(b.uuid("bad").is_none());
        assert!(b.uuid("n").is_none());
        assert_eq!(b.text("n").as_deref(), Some("5"));
        assert_eq!(b.text("missing"), None);
    }
}
