//! The sessions API (compat spec §2.8), style C: plain bodies; errors
//! `{error:{code, message, timestamp, details}}`. Sessions are stored (they survive a restart).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::openapi::{self as doc, ApiFailure};
use confab_agents::sessions::SessionError;
use confab_protocol::{iso_from_ms, now_ms};
use serde_json::{Value, json};

use super::AppState;
use super::agent_reply::{self, REPLY_TIMEOUT, Transport};
use super::envelope::{ApiError, ApiResult, Body, JsonBody, QueryMap, bare};
use super::messages::transport;
use super::shapes;
use crate::access::{Action, Resource};
use crate::auth::Principal;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(list, create))
        .routes(routes!(one, remove))
        .routes(routes!(messages, send))
        .routes(routes!(renew))
        .routes(routes!(timeout))
        .routes(routes!(heartbeat))
}

fn error(e: SessionError) -> ApiError {
    let (code, status) = e.code();
    let details = match &e {
        SessionError::NotFound(id) | SessionError::Expired(id) => json!({ "sessionId": id }),
        _ => Value::Null,
    };
    ApiError::with_body(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({
            "error": {
                "code": code,
                "message": e.to_string(),
                "timestamp": iso_from_ms(now_ms()),
                "details": details,
            }
        }),
    )
}

/// Sessions are their user's: the caller must be the owner of the session `id` (one that does
/// not exist is left to the handler's own answer).
async fn owned(state: &AppState, caller: &Principal, id: &str) -> Result<(), ApiError> {
    let Some(id) = confab_protocol::parse_uuid(id) else {
        return Ok(());
    };
    if let Ok(Some(session)) = state.hub.store().get_session(id).await {
        state
            .security
            .allow(caller, Resource::OwnedBy(session.user_id), Action::Write)
            .await?;
    }
    Ok(())
}

fn plain(v: impl serde::Serialize) -> axum::response::Response {
    bare(StatusCode::OK, json!(v))
}

/// `GET /sessions/health`.
#[utoipa::path(get, path = "/sessions/health", tag = "sessions", operation_id = "sessions_health",
    responses((status = 200, body = doc::SessionsHealth)))]
async fn health(State(state): State<AppState>) -> ApiResult {
    let (active, soon) = state.agents.sessions.health().await.map_err(error)?;
    Ok(bare(
        StatusCode::OK,
        json!({
            "status": "healthy",
            "activeSessions": active,
            "timestamp": iso_from_ms(now_ms()),
            "expiringSoon": soon,
            "uptime": state.started.elapsed().as_secs_f64(),
        }),
    ))
}

/// `POST /sessions` `{agentId, userId, metadata?, timeoutConfig?}`: 201 with the session.
#[utoipa::path(post, path = "/sessions", tag = "sessions", operation_id = "create_session",
    request_body = doc::SessionCreateRequest,
    responses((status = 201, body = doc::Object),
        (status = 400, description = "Missing or malformed fields", body = ApiFailure),
        (status = 404, description = "No such agent", body = ApiFailure)))]
async fn create(
    State(state): State<AppState>,
    caller: Principal,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    // A session is opened for oneself (the body is validated by `create`).
    if let Some(user) = body
        .get("userId")
        .and_then(Value::as_str)
        .and_then(confab_protocol::parse_uuid)
    {
        state
            .security
            .allow(&caller, Resource::OwnedBy(user), Action::Write)
            .await?;
    }
    let info = state.agents.sessions.create(&body).await.map_err(error)?;
    let mut v = json!(info);
    // The create answer has no lastActivity / renewal fields in ElizaOS; extra fields are
    // harmless, so the full info is returned.
    v["createdAt"] = json!(info.created_at);
    Ok(bare(StatusCode::CREATED, v))
}

/// `GET /sessions/:id`: the session.
#[utoipa::path(get, path = "/sessions/{session_id}", tag = "sessions", operation_id = "get_session",
    params(doc::SessionIdParam),
    responses((status = 200, body = doc::Object),
        (status = 400, description = "Malformed session id", body = ApiFailure),
        (status = 404, description = "No such session", body = ApiFailure),
        (status = 410, description = "Expired", body = ApiFailure)))]
async fn one(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    owned(&state, &caller, &id).await?;
    let sessions = &state.agents.sessions;
    let s = sessions.live(&id).await.map_err(error)?;
    Ok(plain(sessions.info(&s)))
}

/// `POST /sessions/:id/messages` `{content, metadata?, transport?}`: 201 with the bus message
/// (and the agent's reply with `transport: http`; Server-Sent Events with `sse`).
#[utoipa::path(post, path = "/sessions/{session_id}/messages", tag = "sessions", operation_id = "send_session_message",
    params(doc::SessionIdParam), request_body = doc::SessionMessageRequest,
    responses((status = 201, body = doc::SessionPosted),
        (status = 200, description = "`transport: sse`: Server-Sent Events", content_type = "text/event-stream"),
        (status = 400, description = "Missing or malformed fields", body = ApiFailure),
        (status = 404, description = "No such session", body = ApiFailure),
        (status = 410, description = "Expired", body = ApiFailure)))]
async fn send(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    owned(&state, &caller, &id).await?;
    let transport = transport(&body)?;
    let watch =
        (transport != Transport::WebSocket).then(|| state.agents.runtime.watch(REPLY_TIMEOUT));
    let (session, committed, status) = state
        .agents
        .sessions
        .send(&id, &body)
        .await
        .map_err(error)?;
    let user_message = shapes::bus_message(
        &committed.message,
        &json!(committed.channel.server_id),
        None,
    );
    let _ = session;
    Ok(match (transport, watch) {
        (Transport::Http, Some(watch)) => {
            let reply = agent_reply::wait(watch, committed.message.id)
                .await
                .map_err(|e| error(SessionError::SendFailed(e)))?;
            bare(
                StatusCode::CREATED,
                json!({
                    "success": true,
                    "userMessage": user_message,
                    "agentResponse": reply,
                    "sessionStatus": status,
                }),
            )
        }
        (Transport::Sse, Some(watch)) => {
            agent_reply::event_stream(user_message, watch, committed.message.id)
        }
        _ => bare(
            StatusCode::CREATED,
            json!({ "success": true, "userMessage": user_message, "sessionStatus": status }),
        ),
    })
}

/// `GET /sessions/:id/messages?limit=&before=&after=`.
#[utoipa::path(get, path = "/sessions/{session_id}/messages", tag = "sessions", operation_id = "session_messages",
    params(doc::SessionIdParam, doc::SessionHistoryQuery),
    responses((status = 200, body = doc::SessionMessages),
        (status = 400, description = "Malformed query", body = ApiFailure),
        (status = 404, description = "No such session", body = ApiFailure),
        (status = 410, description = "Expired", body = ApiFailure)))]
async fn messages(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    QueryMap(q): QueryMap,
) -> ApiResult {
    owned(&state, &caller, &id).await?;
    let page = state
        .agents
        .sessions
        .messages(
            &id,
            q.get("limit").map(String::as_str),
            q.get("before").map(String::as_str),
            q.get("after").map(String::as_str),
        )
        .await
        .map_err(error)?;
    let messages: Vec<Value> = page.messages.iter().map(shapes::session_message).collect();
    let mut body = json!({ "messages": messages, "hasMore": page.has_more });
    if let Some(cursors) = page.cursors {
        body["cursors"] = cursors;
    }
    Ok(bare(StatusCode::OK, body))
}

/// `POST /sessions/:id/renew`.
#[utoipa::path(post, path = "/sessions/{session_id}/renew", tag = "sessions", operation_id = "renew_session",
    params(doc::SessionIdParam),
    responses((status = 200, body = doc::Object),
        (status = 400, description = "Cannot be renewed", body = ApiFailure),
        (status = 404, description = "No such session", body = ApiFailure),
        (status = 410, description = "Expired", body = ApiFailure)))]
async fn renew(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    owned(&state, &caller, &id).await?;
    Ok(plain(
        state.agents.sessions.renew(&id).await.map_err(error)?,
    ))
}

/// `PATCH /sessions/:id/timeout` with a timeout configuration.
#[utoipa::path(patch, path = "/sessions/{session_id}/timeout", tag = "sessions", operation_id = "session_timeout",
    params(doc::SessionIdParam), request_body = doc::TimeoutConfigRequest,
    responses((status = 200, body = doc::Object),
        (status = 400, description = "Malformed configuration", body = ApiFailure),
        (status = 404, description = "No such session", body = ApiFailure),
        (status = 410, description = "Expired", body = ApiFailure)))]
async fn timeout(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    owned(&state, &caller, &id).await?;
    Ok(plain(
        state
            .agents
            .sessions
            .update_timeout(&id, &body)
            .await
            .map_err(error)?,
    ))
}

/// `POST /sessions/:id/heartbeat`.
#[utoipa::path(post, path = "/sessions/{session_id}/heartbeat", tag = "sessions", operation_id = "session_heartbeat",
    params(doc::SessionIdParam),
    responses((status = 200, body = doc::Object),
        (status = 400, description = "Malformed session id", body = ApiFailure),
        (status = 404, description = "No such session", body = ApiFailure),
        (status = 410, description = "Expired", body = ApiFailure)))]
async fn heartbeat(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    owned(&state, &caller, &id).await?;
    Ok(plain(
        state.agents.sessions.heartbeat(&id).await.map_err(error)?,
    ))
}

/// `DELETE /sessions/:id`.
#[utoipa::path(delete, path = "/sessions/{session_id}", tag = "sessions", operation_id = "delete_session",
    params(doc::SessionIdParam),
    responses((status = 200, body = doc::Deleted),
        (status = 400, description = "Malformed session id", body = ApiFailure),
        (status = 404, description = "No such session", body = ApiFailure)))]
async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    owned(&state, &caller, &id).await?;
    let id = state.agents.sessions.delete(&id).await.map_err(error)?;
    Ok(bare(
        StatusCode::OK,
        json!({ "success": true, "message": format!("Session {id} deleted successfully") }),
    ))
}

/// The caller's own sessions (every session, for an operator or where authentication is off).
/// `GET /sessions`: the caller's live sessions.
#[utoipa::path(get, path = "/sessions", tag = "sessions", operation_id = "list_sessions",
    responses((status = 200, body = doc::SessionList)))]
async fn list(State(state): State<AppState>, caller: Principal) -> ApiResult {
    let (all, total, expired) = state.agents.sessions.list().await.map_err(error)?;
    let mut live = Vec::with_capacity(all.len());
    for s in all {
        if state
            .security
            .access
            .permits(&caller, Resource::OwnedBy(s.user_id), Action::Read)
            .await
        {
            live.push(s);
        }
    }
    Ok(bare(
        StatusCode::OK,
        json!({
            "sessions": live,
            "total": live.len(),
            "stats": {
                "totalSessions": total,
                "activeSessions": live.len(),
                "expiredSessions": expired,
            },
        }),
    ))
}
