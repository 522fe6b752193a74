//! Message servers (compat spec §2.6), style B. The "current server" is the hub's default
//! server; agent associations may only be read or changed for it, as in ElizaOS.

use axum::extract::{Path, State};
use confab_protocol::now_ms;
use confab_protocol::parse_uuid;
use confab_store::{Channel, ChannelUpdate};
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::envelope::{
    ApiError, ApiResult, Body, Fields, JsonBody, created, failed, no_content, ok,
};
use super::openapi::{self as doc, ApiFailure, Success, alias};
use super::shapes;
use crate::access::{Action, Resource};
use crate::auth::Principal;
use crate::security::Operator;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(current))
        .routes(routes!(list, create))
        .routes(routes!(remove))
        .routes(routes!(agents, add_agent))
        .routes(routes!(remove_agent))
        .routes(routes!(agent_servers))
        .routes(routes!(channels))
        .routes(routes!(sync_channels))
}

/// The pre-1.6 paths, answered by the same handlers (ElizaOS re-dispatches them).
pub fn deprecated_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(alias(routes!(list_legacy), "/central-servers"))
        .routes(alias(routes!(create), "/servers"))
        .routes(alias(
            routes!(agents, add_agent),
            "/servers/{server_id}/agents",
        ))
        .routes(alias(
            routes!(remove_agent),
            "/servers/{server_id}/agents/{agent_id}",
        ))
        .routes(alias(
            routes!(channels),
            "/central-servers/{server_id}/channels",
        ))
}

/// `GET /message-server/current`: this instance's message server.
#[utoipa::path(get, path = "/message-server/current", tag = "servers",
    responses((status = 200, body = Success<doc::CurrentServer>)))]
async fn current(State(state): State<AppState>) -> ApiResult {
    Ok(ok(json!({ "messageServerId": state.hub.default_server() })))
}

async fn all_servers(state: &AppState, failure: &str) -> Result<Vec<Value>, ApiError> {
    let servers = state.hub.servers().await.map_err(failed(failure))?;
    Ok(servers.iter().map(shapes::server).collect())
}

/// `GET /message-servers`: every message server.
#[utoipa::path(get, path = "/message-servers", tag = "servers",
    responses((status = 200, body = Success<doc::ServerList>)))]
async fn list(State(state): State<AppState>) -> ApiResult {
    let servers = all_servers(&state, "Failed to fetch message servers").await?;
    Ok(ok(json!({ "messageServers": servers })))
}

/// `GET /central-servers`: the old key name `servers`.
#[utoipa::path(get, path = "/central-servers", tag = "deprecated",
    responses((status = 200, body = Success<doc::LegacyServerList>)))]
async fn list_legacy(State(state): State<AppState>) -> ApiResult {
    let servers = all_servers(&state, "Failed to fetch servers").await?;
    Ok(ok(json!({ "servers": servers })))
}

/// `POST /message-servers`: a new server, registered so that messages may auto-create
/// channels in it. Operators only when authentication is on.
#[utoipa::path(post, path = "/message-servers", tag = "servers", operation_id = "create_server",
    request_body = doc::ServerCreateRequest,
    responses((status = 201, body = Success<doc::CreatedServer>),
        (status = 400, description = "Missing name or sourceType", body = ApiFailure)))]
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
#[utoipa::path(delete, path = "/message-servers/{server_id}", tag = "servers", operation_id = "delete_server",
    params(doc::ServerIdParam),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "Not a UUID, or the default server", body = ApiFailure),
        (status = 404, description = "No such server", body = ApiFailure)))]
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

/// `GET /message-servers/:id/agents`: the agents of this instance's server (403 for another).
#[utoipa::path(get, path = "/message-servers/{server_id}/agents", tag = "servers", operation_id = "server_agents",
    params(doc::ServerIdParam),
    responses((status = 200, body = Success<doc::ServerAgents>),
        (status = 400, description = "Not a UUID", body = ApiFailure)))]
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

/// `POST /message-servers/:id/agents` `{agentId}`: operators only when authentication is on.
#[utoipa::path(post, path = "/message-servers/{server_id}/agents", tag = "servers", operation_id = "add_server_agent",
    params(doc::ServerIdParam), request_body = doc::AgentRefRequest,
    responses((status = 201, body = Success<doc::ServerAgentChange>),
        (status = 400, description = "Ids not UUIDs", body = ApiFailure)))]
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

/// `DELETE /message-servers/:id/agents/:agentId`: operators only when authentication is on.
#[utoipa::path(delete, path = "/message-servers/{server_id}/agents/{agent_id}", tag = "servers",
    operation_id = "remove_server_agent",
    params(doc::ServerIdParam, doc::AgentIdParam),
    responses((status = 200, body = Success<doc::ServerAgentChange>),
        (status = 400, description = "Ids not UUIDs", body = ApiFailure)))]
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

/// `GET /agents/:agentId/message-servers`: the servers an agent belongs to.
#[utoipa::path(get, path = "/agents/{agent_id}/message-servers", tag = "servers",
    params(doc::AgentIdParam),
    responses((status = 200, body = Success<doc::AgentServers>),
        (status = 400, description = "Not a UUID", body = ApiFailure)))]
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
#[utoipa::path(get, path = "/message-servers/{server_id}/channels", tag = "servers", operation_id = "server_channels",
    params(doc::ServerIdParam),
    responses((status = 200, body = Success<doc::ChannelList>),
        (status = 400, description = "Not a UUID", body = ApiFailure)))]
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

/// The most channels one sync may carry.
const SYNC_MAX_CHANNELS: usize = 1000;
/// The longest name, type or source id a synced channel may have.
const SYNC_MAX_FIELD: usize = 255;
const SYNC_PAYLOAD: &str =
    "Invalid payload: channels must be an array of {name, type, sourceId} (non-empty strings)";

/// One channel of a sync request, checked.
struct Synced {
    name: String,
    kind: String,
    source_id: String,
}

fn sync_request(body: &Body) -> Option<Vec<Synced>> {
    let list = body.get("channels")?.as_array()?;
    if list.len() > SYNC_MAX_CHANNELS {
        return None;
    }
    let field = |item: &serde_json::Map<String, Value>, key: &str| {
        item.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= SYNC_MAX_FIELD)
            .map(str::to_owned)
    };
    list.iter()
        .map(|item| {
            let item = item.as_object()?;
            Some(Synced {
                name: field(item, "name")?,
                kind: field(item, "type")?,
                source_id: field(item, "sourceId")?,
            })
        })
        .collect()
}

/// `POST /message-servers/:id/sync-channels` (listed by `@elizaos/api-client`, absent from
/// ElizaOS 1.7.2): makes the server's channels match an external platform's
/// (`{channels:[{name, type, sourceId}]}`). A `sourceId` the server has no channel for becomes a
/// new channel (source type `sync`); a known one whose name changed is renamed. Channels not
/// listed are left alone. Answers `{synced}`: how many were created or renamed. Operators only
/// when authentication is on.
#[utoipa::path(post, path = "/message-servers/{server_id}/sync-channels", tag = "servers",
    operation_id = "sync_server_channels",
    params(doc::ServerIdParam), request_body = doc::ChannelSyncRequest,
    responses((status = 200, body = Success<doc::ChannelSyncResult>),
        (status = 400, description = "Not a UUID, or a malformed channel list", body = ApiFailure),
        (status = 404, description = "No such server", body = ApiFailure)))]
async fn sync_channels(
    State(state): State<AppState>,
    _operator: Operator,
    Path(server): Path<String>,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let server = parse_uuid(&server)
        .ok_or_else(|| ApiError::bad_request("Invalid messageServerId format"))?;
    let wanted = sync_request(&body).ok_or_else(|| ApiError::bad_request(SYNC_PAYLOAD))?;
    let failure = "Failed to sync channels";
    if !state.hub.directory().server_exists(server) {
        return Err(ApiError::not_found(failure).details(format!("Server {server} does not exist")));
    }
    let existing = state.hub.channels(server).await.map_err(failed(failure))?;
    let mut synced = 0u64;
    for want in wanted {
        let known = existing
            .iter()
            .find(|c| c.source_id.as_deref() == Some(want.source_id.as_str()));
        match known {
            Some(c) if c.name == want.name => {}
            Some(c) => {
                let update = ChannelUpdate {
                    name: Some(want.name.clone()),
                    ..ChannelUpdate::default()
                };
                if let Some(updated) = state
                    .hub
                    .update_channel(c.id, &update)
                    .await
                    .map_err(failed(failure))?
                {
                    state
                        .hub
                        .announce_update(&updated, shapes::channel(&updated))
                        .await;
                    synced += 1;
                }
            }
            None => {
                let now = now_ms();
                let channel = Channel {
                    id: Uuid::new_v4(),
                    message_server_id: server,
                    name: want.name,
                    kind: want.kind,
                    source_type: Some("sync".into()),
                    source_id: Some(want.source_id),
                    topic: None,
                    metadata: None,
                    alias: None,
                    created_at: now,
                    updated_at: now,
                };
                state
                    .hub
                    .create_channel(channel, &[])
                    .await
                    .map_err(failed(failure))?;
                synced += 1;
            }
        }
    }
    Ok(ok(json!({ "synced": synced })))
}
