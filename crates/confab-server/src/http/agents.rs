//! `/api/agents` (compat spec §2.4), style A: `{success:true, data}` /
//! `{success:false, error:{code, message}}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::openapi::{self as doc, ApiFailure, Success};
use confab_agents::{Agent, AgentError, Character};
use confab_protocol::{iso_from_ms, parse_uuid};
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::envelope::{ApiError, ApiResult, Body, JsonBody, created, no_content, ok};
use crate::security::Operator;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, update, remove))
        .routes(routes!(start))
        .routes(routes!(stop))
}

fn status(a: &Agent) -> &'static str {
    if a.enabled { "active" } else { "inactive" }
}

/// The agents row as ElizaOS returns it: the character's fields, id, flags and times.
fn full(a: &Agent) -> Value {
    let mut v = serde_json::to_value(&a.character).unwrap_or_else(|_| json!({}));
    v["id"] = json!(a.id);
    v["enabled"] = json!(a.enabled);
    v["status"] = json!(status(a));
    v["createdAt"] = json!(iso_from_ms(a.created_at));
    v["updatedAt"] = json!(iso_from_ms(a.updated_at));
    v["brain"] = json!(a.brain.describe());
    v
}

fn agent_id(raw: &str) -> Result<Uuid, ApiError> {
    parse_uuid(raw).ok_or_else(|| {
        ApiError::coded(
            StatusCode::BAD_REQUEST,
            "INVALID_ID",
            "Invalid agent ID format",
        )
    })
}

fn not_found() -> ApiError {
    ApiError::coded(StatusCode::NOT_FOUND, "NOT_FOUND", "Agent not found")
}

fn agent_error(code: &str, e: AgentError) -> ApiError {
    match e {
        AgentError::NotFound => not_found(),
        AgentError::Store(m) => ApiError::coded(StatusCode::INTERNAL_SERVER_ERROR, code, m),
        other => ApiError::coded(StatusCode::BAD_REQUEST, code, other.to_string()),
    }
}

/// `GET /api/agents`: `{agents:[{id, name, characterName, bio, status}]}`, started first.
#[utoipa::path(get, path = "/", tag = "agents", operation_id = "list_agents",
    responses((status = 200, body = Success<doc::AgentList>)))]
async fn list(State(state): State<AppState>) -> ApiResult {
    let agents: Vec<Value> = state
        .agents
        .agents
        .list()
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "name": a.name(),
                "characterName": a.name(),
                "bio": a.character.bio_lines().into_iter().next().unwrap_or_default(),
                "status": status(a),
            })
        })
        .collect();
    Ok(ok(json!({ "agents": agents })))
}

/// `GET /api/agents/:id`: the agent's character, id, flags and times.
#[utoipa::path(get, path = "/{agent_id}", tag = "agents", operation_id = "get_agent",
    params(doc::AgentIdParam),
    responses((status = 200, body = Success<doc::Object>),
        (status = 400, description = "Not a UUID", body = ApiFailure),
        (status = 404, description = "No such agent", body = ApiFailure)))]
async fn one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let id = agent_id(&id)?;
    let agent = state.agents.agents.get(id).ok_or_else(not_found)?;
    Ok(ok(full(&agent)))
}

/// `POST /api/agents` with `characterJson`, `characterPath` (a JSON file on the server) or
/// `agent`: 201 `{id, character}`.
#[utoipa::path(post, path = "/", tag = "agents", operation_id = "create_agent",
    request_body = doc::AgentCreateRequest,
    responses((status = 201, body = Success<doc::CreatedAgent>),
        (status = 400, description = "No or invalid character", body = ApiFailure)))]
async fn create(
    State(state): State<AppState>,
    _operator: Operator,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let bad = |m: String| ApiError::coded(StatusCode::BAD_REQUEST, "CREATE_ERROR", m);
    let character = if let Some(v) = body.get("characterJson").or_else(|| body.get("agent")) {
        let v = match v {
            // Some clients send the character as a JSON string.
            Value::String(s) => {
                serde_json::from_str(s).map_err(|e| bad(format!("Invalid character JSON: {e}")))?
            }
            other => other.clone(),
        };
        Character::from_value(v).map_err(|e| bad(format!("Invalid character: {e}")))?
    } else if let Some(path) = body.get("characterPath").and_then(Value::as_str) {
        if !path.ends_with(".json") {
            return Err(bad("characterPath must name a .json file".into()));
        }
        Character::load(std::path::Path::new(path)).map_err(|e| bad(e.to_string()))?
    } else {
        return Err(bad(
            "Request must include characterJson, characterPath or agent".into(),
        ));
    };
    let agent = state
        .agents
        .agents
        .create(character)
        .await
        .map_err(|e| agent_error("CREATE_ERROR", e))?;
    Ok(created(
        json!({ "id": agent.id, "character": agent.character }),
    ))
}

/// `PATCH /api/agents/:id`: merges the given character fields.
#[utoipa::path(patch, path = "/{agent_id}", tag = "agents", operation_id = "update_agent",
    params(doc::AgentIdParam), request_body = doc::Object,
    responses((status = 200, body = Success<doc::Object>),
        (status = 400, description = "Not a UUID, or invalid fields", body = ApiFailure),
        (status = 404, description = "No such agent", body = ApiFailure)))]
async fn update(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let id = agent_id(&id)?;
    let agent = state
        .agents
        .agents
        .update(id, &body)
        .await
        .map_err(|e| agent_error("UPDATE_ERROR", e))?;
    Ok(ok(full(&agent)))
}

/// `DELETE /api/agents/:id`: 204.
#[utoipa::path(delete, path = "/{agent_id}", tag = "agents", operation_id = "delete_agent",
    params(doc::AgentIdParam),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "Not a UUID", body = ApiFailure),
        (status = 404, description = "No such agent", body = ApiFailure)))]
async fn remove(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> ApiResult {
    let id = agent_id(&id)?;
    state
        .agents
        .agents
        .delete(id)
        .await
        .map_err(|e| agent_error("DELETE_ERROR", e))?;
    Ok(no_content())
}

/// `POST /api/agents/:id/start`.
#[utoipa::path(post, path = "/{agent_id}/start", tag = "agents", operation_id = "start_agent",
    params(doc::AgentIdParam),
    responses((status = 200, body = Success<doc::StartedAgent>),
        (status = 400, description = "Not a UUID", body = ApiFailure),
        (status = 404, description = "No such agent", body = ApiFailure)))]
async fn start(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> ApiResult {
    let id = agent_id(&id)?;
    let agent = state
        .agents
        .agents
        .set_enabled(id, true)
        .await
        .map_err(|e| agent_error("START_ERROR", e))?;
    Ok(ok(
        json!({ "id": agent.id, "name": agent.name(), "status": "active" }),
    ))
}

/// `POST /api/agents/:id/stop`.
#[utoipa::path(post, path = "/{agent_id}/stop", tag = "agents", operation_id = "stop_agent",
    params(doc::AgentIdParam),
    responses((status = 200, body = Success<doc::Object>),
        (status = 400, description = "Not a UUID", body = ApiFailure),
        (status = 404, description = "No such agent", body = ApiFailure)))]
async fn stop(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> ApiResult {
    let id = agent_id(&id)?;
    state
        .agents
        .agents
        .set_enabled(id, false)
        .await
        .map_err(|e| agent_error("STOP_ERROR", e))?;
    Ok(ok(json!({ "message": "Agent stopped" })))
}
