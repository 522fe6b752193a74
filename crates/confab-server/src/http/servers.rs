//! Message servers (compat spec §2.6), style B. The "current server" is the hub's default
//! server; agent associations may only be read or changed for it, as in ElizaOS.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{delete, get, post};
use confab_protocol::parse_uuid;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::envelope::{
    ApiError, ApiResult, Body, Fields, JsonBody, created, failed, no_content, ok,
};
use super::shapes;
use crate::access::{Action, Resource};
use crate::auth::Principal;
use crate::security::Operator;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/message-server/current", get(current))
        .route("/message-servers", get(list).post(create))
        .route("/message-servers/{server_id}", delete(remove))
        .route(
            "/message-servers/{server_id}/agents",
            get(agents).post(add_agent),
        )
        .route(
            "/message-servers/{server_id}/agents/{agent_id}",
            delete(remove_agent),
        )
        .route("/agents/{agent_id}/message-servers", get(agent_servers))
        .route("/message-servers/{server_id}/channels", get(channels))
}

/// The pre-1.6 paths, answered by the same handlers (ElizaOS re-dispatches them).
pub fn deprecated_routes() -> Router<AppState> {
    Router::new()
        .route("/central-servers", get(list_legacy))
        .route("/servers", post(create))
        .route("/servers/{server_id}/agents", get(agents).post(add_agent))
        .route(
            "/servers/{server_id}/agents/{agent_id}",
            delete(remove_agent),
        )
        .route("/central-servers/{server_id}/channels", get(channels))
}

async fn current(State(state): State<AppState>) -> ApiResult {
    Ok(ok(json!({ "messageServerId": state.hub.default_server() })))
}

async fn all_servers(state: &AppState, failure: &str) -> Result<Vec<Value>, ApiError> {
    let servers = state.hub.servers().await.map_err(failed(failure))?;
    Ok(servers.iter().map(shapes::server).collect())
}

async fn list(State(state): State<AppState>) -> ApiResult {
    let servers = all_servers(&state, "Failed to fetch message servers").await?;
    Ok(ok(json!({ "messageServers": servers })))
}

/// `GET /central-servers`: the old key name `servers`.
async fn list_legacy(State(state): State<AppState>) -> ApiResult {
    let servers = all_servers(&state, "Failed to fetch servers").await?;
    Ok(ok(json!({ "servers": servers })))
}

/// `POST /message-servers`: a new server, registered so that messages may auto-create
/// channels in it.
async fn create(
    State(state): State<AppState>,
    _operator: Operator,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let (Some(name), Some(source_type)) = (body.text("name"), body.text("sourceType")) else {
        return Err(ApiError::bad_request(
            "Missing required fields: name, sourceType",
        ));
    };
    let server = state
        .hub
        .create_server(
            name,
            source_type,
            body.text("sourceId"),
            body.get("metadata").filter(|m| !m.is_null()).cloned(),
        )
        .await
        .map_err(failed("Failed to create message server"))?;
    Ok(created(json!({ "server": shapes::server(&server) })))
}

/// `DELETE /message-servers/:id` (listed by `@elizaos/api-client`, absent from ElizaOS 1.7.2):
/// 204, with the server's channels and their messages; each channel's room gets
/// `channelDeleted`. The default server cannot be deleted (400); an unknown one is 404.
async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(server): Path<String>,
) -> ApiResult {
    let server = parse_uuid(&server)
        .ok_or_else(|| ApiError::bad_request("Invalid messageServerId format"))?;
    state
        .security
        .allow(&caller, Resource::Administration, Action::Write)
        .await?;
    if server == state.hub.default_server() {
        return Err(ApiError::bad_request(
            "The default message server cannot be deleted",
        ));
    }
    let deleted = state
        .hub
        .delete_server(server)
        .await
        .map_err(failed("Failed to delete message server"))?;
    if !deleted {
        return Err(ApiError::not_found("Message server not found"));
    }
    Ok(no_content())
}

/// The server of an agents route, which must be this instance's (ElizaOS's RLS rule).
fn current_server(state: &AppState, id: Uuid, action: &str) -> Result<Uuid, ApiError> {
    if id == state.hub.default_server() {
        Ok(id)
    } else {
        Err(ApiError::forbidden(format!(
            "Cannot {action} agents for a different server"
        )))
    }
}

async fn agents(State(state): State<AppState>, Path(server): Path<String>) -> ApiResult {
    let server = parse_uuid(&server)
        .ok_or_else(|| ApiError::bad_request("Invalid messageServerId format"))?;
    let server = current_server(&state, server, "access")?;
    let agents = state
        .hub
        .server_agents(server)
        .await
        .map_err(failed("Failed to fetch message server agents"))?;
    Ok(ok(json!({ "messageServerId": server, "agents": agents })))
}

async fn add_agent(
    State(state): State<AppState>,
    _operator: Operator,
    Path(server): Path<String>,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let (Some(server), Some(agent)) = (parse_uuid(&server), body.uuid("agentId")) else {
        return Err(ApiError::bad_request(
            "Invalid messageServerId or agentId format",
        ));
    };
    let server = current_server(&state, server, "modify")?;
    state
        .hub
        .add_server_agent(server, agent)
        .await
        .map_err(failed("Failed to add agent to message server"))?;
    Ok(created(json!({
        "messageServerId": server,
        "agentId": agent,
        "message": "Agent added to message server successfully",
    })))
}

async fn remove_agent(
    State(state): State<AppState>,
    _operator: Operator,
    Path((server, agent)): Path<(String, String)>,
) -> ApiResult {
    let (Some(server), Some(agent)) = (parse_uuid(&server), parse_uuid(&agent)) else {
        return Err(ApiError::bad_request(
            "Invalid messageServerId or agentId format",
        ));
    };
    let server = current_server(&state, server, "modify")?;
    state
        .hub
        .remove_server_agent(server, agent)
        .await
        .map_err(failed("Failed to remove agent from message server"))?;
    Ok(ok(json!({
        "messageServerId": server,
        "agentId": agent,
        "message": "Agent removed from message server successfully",
    })))
}

async fn agent_servers(State(state): State<AppState>, Path(agent): Path<String>) -> ApiResult {
    let agent =
        parse_uuid(&agent).ok_or_else(|| ApiError::bad_request("Invalid agentId format"))?;
    let servers = state
        .hub
        .agent_servers(agent)
        .await
        .map_err(failed("Failed to fetch agent message servers"))?;
    Ok(ok(json!({ "agentId": agent, "messageServers": servers })))
}

/// `GET /message-servers/:id/channels`: every channel of the server, of every type.
/// A caller sees only the channels it may reach: a private channel it is not in is left out.
async fn channels(
    State(state): State<AppState>,
    caller: Principal,
    Path(server): Path<String>,
) -> ApiResult {
    let server =
        parse_uuid(&server).ok_or_else(|| ApiError::bad_request("Invalid messageServerId"))?;
    let all = state
        .hub
        .channels(server)
        .await
        .map_err(failed("Failed to fetch channels"))?;
    let mut channels: Vec<Value> = Vec::with_capacity(all.len());
    for channel in &all {
        if state.security.sees(&caller, channel.id).await {
            channels.push(shapes::channel(channel));
        }
    }
    Ok(ok(json!({ "channels": channels })))
}
