//! Channels (compat spec §2.7, everything but the message routes), style B, plus confab's
//! presence extension.

use axum::extract::{Path, State};
use confab_protocol::{ChannelRef, now_ms, parse_uuid};
use confab_store::{Channel, ChannelUpdate, channel_type};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::envelope::{
    ApiError, ApiResult, Body, Fields, JsonBody, QueryMap, created, failed, no_content, ok, truthy,
};
use super::openapi::{self as doc, ApiFailure, Success, alias};
use super::shapes;
use crate::access::{Action, Resource};
use crate::auth::Principal;
use utoipa_axum::{router::OpenApiRouter, routes};

/// ElizaOS's text, verbatim, though confab no longer requires the participants.
const CREATE_PAYLOAD: &str = "Invalid payload. Required: name, message_server_id (UUID), participantCentralUserIds (array of UUIDs). Optional: type, metadata.";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(dm_channel))
        .routes(routes!(remove, update))
        .routes(routes!(details))
        .routes(routes!(participants))
        .routes(routes!(agents, add_agent))
        .routes(routes!(remove_agent))
        .routes(routes!(presence))
}

/// The `/central-channels` paths, answered by the same handlers.
pub fn deprecated_routes() -> OpenApiRouter<AppState> {
    let old = "/central-channels";
    OpenApiRouter::new()
        .routes(alias(routes!(create), old))
        .routes(alias(
            routes!(remove, update),
            &format!("{old}/{{channel_id}}"),
        ))
        .routes(alias(
            routes!(details),
            &format!("{old}/{{channel_id}}/details"),
        ))
        .routes(alias(
            routes!(participants),
            &format!("{old}/{{channel_id}}/participants"),
        ))
        .routes(alias(
            routes!(agents, add_agent),
            &format!("{old}/{{channel_id}}/agents"),
        ))
        .routes(alias(
            routes!(remove_agent),
            &format!("{old}/{{channel_id}}/agents/{{agent_id}}"),
        ))
}

/// A channel id path segment, which must be a UUID (`validateUuid`).
pub fn channel_id(raw: &str, error: &str) -> Result<Uuid, ApiError> {
    parse_uuid(raw).ok_or_else(|| ApiError::bad_request(error))
}

/// `POST /channels`: a channel with a server-chosen id and the given participants.
///
/// ElizaOS requires `participantCentralUserIds`; `@elizaos/api-client`'s `createChannel` never
/// sends it, so confab makes it optional: without it the caller's entity, if it has one, is the
/// only participant. A list that is given must hold UUIDs only. An unknown server is 404.
#[utoipa::path(post, path = "/channels", tag = "channels", operation_id = "create_channel",
    request_body = doc::ChannelCreateRequest,
    responses((status = 201, body = Success<doc::Channel>),
        (status = 400, description = "Missing or malformed fields", body = ApiFailure),
        (status = 404, description = "No such message server", body = ApiFailure)))]
async fn create(
    State(state): State<AppState>,
    caller: Principal,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let server = body
        .uuid("message_server_id")
        .ok_or_else(|| ApiError::bad_request("Invalid message_server_id format"))?;
    let participants = match body
        .get("participantCentralUserIds")
        .filter(|v| !v.is_null())
    {
        None => Some(
            caller
                .member_entity()
                .map(|e| e.to_string())
                .into_iter()
                .collect(),
        ),
        Some(list) => list.as_array().and_then(|ids| {
            ids.iter()
                .map(|id| id.as_str().and_then(parse_uuid).map(|u| u.to_string()))
                .collect::<Option<Vec<String>>>()
        }),
    };
    let (Some(name), Some(participants)) = (body.text("name"), participants) else {
        return Err(ApiError::bad_request(CREATE_PAYLOAD));
    };
    let failure = "Failed to create group channel";
    if !state.hub.directory().server_exists(server) {
        // ElizaOS hits the foreign key on message_servers here (a 500); bad input is a 404.
        return Err(ApiError::not_found(failure).details(format!("Server {server} does not exist")));
    }
    let now = now_ms();
    // confab extension: `private: true` (or `metadata.private: true`) → participants only.
    let private = body.get("private").is_some_and(truthy)
        || body
            .object("metadata")
            .and_then(|m| m.get("private"))
            .is_some_and(truthy);
    let channel = Channel {
        id: Uuid::new_v4(),
        message_server_id: server,
        name,
        kind: body
            .text("type")
            .unwrap_or_else(|| channel_type::GROUP.into()),
        source_type: None,
        source_id: None,
        topic: None,
        metadata: Some({
            let mut m = body.object("metadata").cloned().unwrap_or_default();
            if private {
                m.insert("private".into(), json!(true));
            }
            Value::Object(m)
        }),
        alias: None,
        created_at: now,
        updated_at: now,
    };
    let stored = state
        .hub
        .create_channel(channel, &participants)
        .await
        .map_err(failed(failure))?;
    if private {
        state
            .security
            .access
            .mark_private(stored.id)
            .await
            .map_err(failed(failure))?;
    }
    Ok(created(shapes::channel(&stored)))
}

/// `GET /dm-channel?currentUserId=&targetUserId=&dmServerId=`: the pair's DM channel, created
/// on first use. An unknown `dmServerId` falls back to the current server. Only the requesting
/// entity's own DMs.
#[utoipa::path(get, path = "/dm-channel", tag = "channels", params(doc::DmQuery),
    responses((status = 200, body = Success<doc::Channel>),
        (status = 400, description = "Missing or equal ids", body = ApiFailure)))]
async fn dm_channel(
    State(state): State<AppState>,
    caller: Principal,
    query: QueryMap,
) -> ApiResult {
    let (Some(target), Some(current)) = (
        query.get("targetUserId").and_then(parse_uuid),
        query.get("currentUserId").and_then(parse_uuid),
    ) else {
        return Err(ApiError::bad_request(
            "Missing targetUserId or currentUserId",
        ));
    };
    state
        .security
        .allow(&caller, Resource::OwnedBy(current), Action::Write)
        .await?;
    if target == current {
        return Err(ApiError::bad_request(
            "Cannot create DM channel with oneself",
        ));
    }
    let hub = &state.hub;
    let server = query
        .get("dmServerId")
        .and_then(parse_uuid)
        .filter(|s| hub.directory().server_exists(*s))
        .unwrap_or_else(|| hub.default_server());
    let channel = hub
        .find_or_create_dm(current, target, server)
        .await
        .map_err(failed("Failed to find or create DM channel"))?;
    Ok(ok(shapes::channel(&channel)))
}

/// `GET /channels/:id/details`. A non-member learns nothing of a private channel: the answer
/// is a missing channel's.
#[utoipa::path(get, path = "/channels/{channel_id}/details", tag = "channels", operation_id = "channel_details",
    params(doc::ChannelIdParam),
    responses((status = 200, body = Success<doc::Channel>),
        (status = 400, description = "Not a UUID", body = ApiFailure),
        (status = 404, description = "No such channel", body = ApiFailure)))]
async fn details(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    let id = channel_id(&id, "Invalid channelId")?;
    let not_found = || ApiError::not_found("Channel not found");
    state
        .security
        .allow(&caller, Resource::Channel(id), Action::Read)
        .await
        .map_err(|_| not_found())?;
    match state
        .hub
        .channel(id)
        .await
        .map_err(failed("Failed to fetch channel details"))?
    {
        Some(channel) => Ok(ok(shapes::channel(&channel))),
        None => Err(not_found()),
    }
}

/// `GET /channels/:id/participants`: an array of entity ids.
#[utoipa::path(get, path = "/channels/{channel_id}/participants", tag = "channels", operation_id = "channel_participants",
    params(doc::ChannelIdParam),
    responses((status = 200, body = Success<Vec<String>>),
        (status = 400, description = "Not a UUID", body = ApiFailure)))]
async fn participants(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    let id = channel_id(&id, "Invalid channelId")?;
    state
        .security
        .allow(&caller, Resource::Channel(id), Action::Read)
        .await?;
    let list = state
        .hub
        .participants(id)
        .await
        .map_err(failed("Failed to fetch channel participants"))?;
    Ok(ok(json!(list)))
}

/// `GET /channels/:id/agents`: every participant (confab does not tell agents apart yet, and
/// ElizaOS does not either).
#[utoipa::path(get, path = "/channels/{channel_id}/agents", tag = "channels", operation_id = "channel_agents",
    params(doc::ChannelIdParam),
    responses((status = 200, body = Success<doc::ChannelAgents>),
        (status = 400, description = "Not a UUID", body = ApiFailure)))]
async fn agents(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    let id = channel_id(&id, "Invalid channelId format")?;
    state
        .security
        .allow(&caller, Resource::Channel(id), Action::Read)
        .await?;
    let list = state
        .hub
        .participants(id)
        .await
        .map_err(failed("Failed to fetch channel agents"))?;
    Ok(ok(json!({ "channelId": id, "participants": list })))
}

async fn existing_channel(state: &AppState, id: Uuid, failure: &str) -> Result<(), ApiError> {
    match state.hub.channel(id).await.map_err(failed(failure))? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("Channel not found")),
    }
}

/// `POST /channels/:id/agents` `{agentId}`: adds a participant.
#[utoipa::path(post, path = "/channels/{channel_id}/agents", tag = "channels", operation_id = "add_channel_agent",
    params(doc::ChannelIdParam), request_body = doc::AgentRefRequest,
    responses((status = 201, body = Success<doc::ChannelAgentChange>),
        (status = 400, description = "Ids not UUIDs", body = ApiFailure),
        (status = 404, description = "No such channel", body = ApiFailure)))]
async fn add_agent(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let (Some(id), Some(agent)) = (parse_uuid(&id), body.uuid("agentId")) else {
        return Err(ApiError::bad_request("Invalid channelId or agentId format"));
    };
    state
        .security
        .allow(&caller, Resource::Channel(id), Action::Write)
        .await?;
    let failure = "Failed to add agent to channel";
    existing_channel(&state, id, failure).await?;
    state
        .hub
        .add_participants(id, &[agent.to_string()])
        .await
        .map_err(failed(failure))?;
    Ok(created(json!({
        "channelId": id,
        "agentId": agent,
        "message": "Agent added to channel successfully",
    })))
}

/// `DELETE /channels/:id/agents/:agentId`: removes a participant.
#[utoipa::path(delete, path = "/channels/{channel_id}/agents/{agent_id}", tag = "channels",
    operation_id = "remove_channel_agent", params(doc::ChannelIdParam, doc::AgentIdParam),
    responses((status = 200, body = Success<doc::ChannelAgentChange>),
        (status = 400, description = "Ids not UUIDs", body = ApiFailure),
        (status = 404, description = "No such channel or participant", body = ApiFailure)))]
async fn remove_agent(
    State(state): State<AppState>,
    caller: Principal,
    Path((id, agent)): Path<(String, String)>,
) -> ApiResult {
    let (Some(id), Some(agent)) = (parse_uuid(&id), parse_uuid(&agent)) else {
        return Err(ApiError::bad_request("Invalid channelId or agentId format"));
    };
    state
        .security
        .allow(&caller, Resource::Channel(id), Action::Write)
        .await?;
    let failure = "Failed to remove agent from channel";
    existing_channel(&state, id, failure).await?;
    let removed = state
        .hub
        .remove_participant(id, &agent.to_string())
        .await
        .map_err(failed(failure))?;
    if !removed {
        return Err(ApiError::not_found(
            "Agent is not a participant in this channel",
        ));
    }
    state.security.access.enforce_members(id).await;
    Ok(ok(json!({
        "channelId": id,
        "agentId": agent,
        "message": "Agent removed from channel successfully",
    })))
}

/// The fields `PATCH /channels/:id` reads; anything else is ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelPatch {
    name: Option<String>,
    /// Replaces the whole participant list.
    participant_central_user_ids: Option<Vec<String>>,
    /// Replaces the metadata.
    metadata: Option<Value>,
}

/// `PATCH /channels/:id`: 200 with the updated channel; the room gets `channelUpdated` with
/// the full channel as `updates`. A missing channel is 404 (ElizaOS answers 500), participant
/// ids that are not UUIDs 400.
#[utoipa::path(patch, path = "/channels/{channel_id}", tag = "channels", operation_id = "update_channel",
    params(doc::ChannelIdParam), request_body = doc::ChannelPatchRequest,
    responses((status = 200, body = Success<doc::Channel>),
        (status = 400, description = "Malformed id or fields", body = ApiFailure),
        (status = 404, description = "No such channel", body = ApiFailure)))]
async fn update(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<ChannelPatch>,
) -> ApiResult {
    let id = channel_id(&id, "Invalid channelId")?;
    state
        .security
        .allow(&caller, Resource::Channel(id), Action::Write)
        .await?;
    let failure = "Failed to update channel";
    if let Some(ids) = &patch.participant_central_user_ids
        && ids.iter().any(|id| parse_uuid(id).is_none())
    {
        return Err(ApiError::bad_request(
            "Invalid participantCentralUserIds: every id must be a UUID",
        ));
    }
    let update = ChannelUpdate {
        name: patch.name,
        topic: None,
        metadata: patch.metadata,
        participants: patch.participant_central_user_ids,
    };
    let Some(channel) = state
        .hub
        .update_channel(id, &update)
        .await
        .map_err(failed(failure))?
    else {
        return Err(ApiError::not_found("Channel not found"));
    };
    let json = shapes::channel(&channel);
    state.hub.announce_update(&channel, json.clone()).await;
    // Nobody outside a private channel stays in its room.
    state.security.access.enforce_members(id).await;
    Ok(ok(json))
}

/// `DELETE /channels/:id`: 204, with its messages and participants; the room gets
/// `channelDeleted`. Deleting a channel that does not exist is not an error.
#[utoipa::path(delete, path = "/channels/{channel_id}", tag = "channels", operation_id = "delete_channel",
    params(doc::ChannelIdParam),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "Not a UUID", body = ApiFailure)))]
async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    let id = channel_id(&id, "Invalid channelId")?;
    state
        .security
        .allow(&caller, Resource::Channel(id), Action::Write)
        .await?;
    state
        .hub
        .delete_channel(id)
        .await
        .map_err(failed("Failed to delete channel"))?;
    Ok(no_content())
}

/// confab extension, `GET /channels/:id/presence`: who is connected to the channel right now,
/// with how many connections each. Accepts a channel's non-UUID name as socket joins do.
#[utoipa::path(get, path = "/channels/{channel_id}/presence", tag = "channels", operation_id = "channel_presence",
    params(("channel_id" = String, Path, description = "The channel's UUID or name")),
    responses((status = 200, body = Success<doc::Presence>)))]
async fn presence(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    let channel = ChannelRef::parse(&id);
    state
        .security
        .allow(&caller, Resource::Channel(channel.id), Action::Read)
        .await?;
    let entities: Vec<Value> = state
        .hub
        .present(channel.id)
        .await
        .map_err(|e| {
            // Redis (cluster presence) is unreachable: a dependency, not this request, failed.
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "Presence is unavailable",
            )
            .details(e)
        })?
        .into_iter()
        .map(|(entity, connections)| json!({ "entityId": entity, "connections": connections }))
        .collect();
    Ok(ok(json!({ "channelId": channel.id, "entities": entities })))
}
