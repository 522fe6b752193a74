//! The sessions API (compat spec §2.8), style C: plain bodies; errors
//! `{error:{code, message, timestamp, details}}`. Sessions are stored (they survive a restart).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
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

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sessions/health", get(health))
        .route("/sessions", get(list).post(create))
        .route("/sessions/{session_id}", get(one).delete(remove))
        .route("/sessions/{session_id}/messages", get(messages).post(send))
        .route("/sessions/{session_id}/renew", post(renew))
        .route("/sessions/{session_id}/timeout", patch(timeout))
        .route("/sessions/{session_id}/heartbeat", post(heartbeat))
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
