//! `/api/messaging` core (compat spec §2.5): agent replies (`/submit`), agent actions
//! (`/action`, `PATCH /action/:id`) and messages from external platforms (`/ingest-external`).
//! Style B envelopes; the `server_id` shim is applied by [`JsonBody`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use confab_hub::{AutoCreate, ChannelInfo, Delivery, Hub};
use confab_protocol::outbound::MessageComplete;
use confab_protocol::{ChannelRef, ServerEvent, parse_uuid, string_to_uuid};
use confab_store::{MessageUpdate, NewMessage};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::AppState;
use super::envelope::{
    ApiError, ApiResult, Body, Fields, JsonBody, bare, created, failed, hub_failure, js_string,
    truthy,
};
use super::openapi::{self as doc, ApiFailure, Success};
use super::shapes::{self, ReplyTo};
use crate::access::{Action, Resource};
use crate::auth::Principal;
use utoipa_axum::{router::OpenApiRouter, routes};

const SUBMIT_FIELDS: &str = "Missing required fields: channel_id, message_server_id, author_id, content, source_type, raw_message";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(action))
        .routes(routes!(update_action))
        .routes(routes!(ingest_external))
        .routes(routes!(complete))
}

/// A validated `/submit` or `/action` body.
struct AgentMessage {
    channel: Uuid,
    author: Uuid,
    content: String,
    source_type: String,
    raw_message: Value,
    message_id: Option<Uuid>,
    in_reply_to: Option<Uuid>,
    metadata: Option<Value>,
}

/// An optional id field: absent (or falsy) is fine, present must be a UUID.
fn optional_uuid(body: &Body, key: &str, error: &str) -> Result<Option<Uuid>, ApiError> {
    match body.truthy_field(key) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(parse_uuid)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(error)),
    }
}

/// ElizaOS's checks, in its order: required fields, then the optional ids.
fn agent_message(body: &Body) -> Result<AgentMessage, ApiError> {
    let (Some(channel), Some(_server), Some(author), Some(content), Some(source_type), Some(raw)) = (
        body.uuid("channel_id"),
        body.uuid("message_server_id"),
        body.uuid("author_id"),
        body.text("content"),
        body.text("source_type"),
        body.truthy_field("raw_message"),
    ) else {
        return Err(ApiError::bad_request(SUBMIT_FIELDS));
    };
    let in_reply_to = optional_uuid(
        body,
        "in_reply_to_message_id",
        "Invalid in_reply_to_message_id format",
    )?;
    let message_id = optional_uuid(body, "messageId", "Invalid messageId format")?;
    Ok(AgentMessage {
        channel,
        author,
        content,
        source_type,
        // ElizaOS's agents attach generated files by path: stored as `/media/...` URLs.
        raw_message: super::messages::attachments_checked(Some(raw))?.unwrap_or_default(),
        message_id,
        in_reply_to,
        metadata: super::messages::attachments_checked(body.get("metadata"))?,
    })
}

/// Stores an agent message in an existing channel and broadcasts it to the room. In ElizaOS an
/// unknown channel fails the insert's foreign key, which its handlers answer with their generic
/// 500 text; confab answers 404 with that text and the reason in `details` (bad input is never
/// a 500).
async fn commit_agent_message(hub: &Hub, m: AgentMessage, failure: &str) -> ApiResult {
    let Some(channel) = hub
        .directory()
        .find(m.channel)
        .await
        .map_err(|e| ApiError::internal(failure).details(e))?
    else {
        return Err(
            ApiError::not_found(failure).details(format!("Channel {} not found", m.channel))
        );
    };
    // The agent's `messageId` is both the stored id and its idempotency key: a resend is a
    // repeat, answered with the original.
    let client_key = hub.client_key(&m.message_id.map(|id| id.to_string()));
    let message = NewMessage {
        id: m.message_id.unwrap_or_else(confab_store::new_message_id),
        channel_id: channel.id,
        author_id: m.author.to_string(),
        content: m.content,
        raw_message: Some(m.raw_message),
        in_reply_to: m.in_reply_to.map(|u| u.to_string()),
        source_type: Some(m.source_type),
        source_id: None,
        metadata: m.metadata,
        created_at: 0,
        client_key,
    };
    let committed = hub
        .append(message, channel, Delivery::ToRoom)
        .await
        .map_err(|e| ApiError::internal(failure).details(e))?;
    Ok(created(shapes::message(
        &committed.message,
        ReplyTo::OmitWhenNone,
    )))
}

/// The author speaks as itself, into a channel it may post to.
async fn may_post(state: &AppState, caller: &Principal, m: &AgentMessage) -> Result<(), ApiError> {
    let security = &state.security;
    security
        .allow(caller, Resource::Author(m.author), Action::Write)
        .await?;
    security
        .allow(caller, Resource::Channel(m.channel), Action::Write)
        .await
}

/// `POST /submit`: an agent's reply, stored under the agent's `messageId` when given and
/// broadcast to the channel (agent variant: `thought`, `actions`). 201 with the stored message.
#[utoipa::path(post, path = "/submit", tag = "messaging", request_body = doc::AgentMessageRequest,
    responses((status = 201, body = Success<doc::Message>),
        (status = 400, description = "Missing or malformed fields", body = ApiFailure),
        (status = 404, description = "No such channel", body = ApiFailure)))]
async fn submit(
    State(state): State<AppState>,
    caller: Principal,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let m = agent_message(&body)?;
    may_post(&state, &caller, &m).await?;
    commit_agent_message(&state.hub, m, "Failed to submit agent message").await
}

/// `POST /action`: same contract as `/submit`; with `source_type: "agent_action"` the
/// broadcast carries `updatedAt` and `rawMessage`.
#[utoipa::path(post, path = "/action", tag = "messaging", request_body = doc::AgentMessageRequest,
    responses((status = 201, body = Success<doc::Message>),
        (status = 400, description = "Missing or malformed fields", body = ApiFailure),
        (status = 404, description = "No such channel", body = ApiFailure)))]
async fn action(
    State(state): State<AppState>,
    caller: Principal,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let m = agent_message(&body)?;
    may_post(&state, &caller, &m).await?;
    commit_agent_message(&state.hub, m, "Failed to create action").await
}

/// `PATCH /action/:id`: edits a stored message and re-broadcasts it under the same id.
#[utoipa::path(patch, path = "/action/{message_id}", tag = "messaging", params(doc::MessageIdParam),
    request_body = doc::ActionUpdateRequest,
    responses((status = 200, body = Success<doc::Message>),
        (status = 400, description = "Malformed id or fields", body = ApiFailure),
        (status = 404, description = "No such message", body = ApiFailure)))]
async fn update_action(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let id = parse_uuid(&id).ok_or_else(|| ApiError::bad_request("Invalid message id"))?;
    // An edit is a write to the message's channel.
    let stored = state
        .hub
        .store()
        .get_message(id)
        .await
        .map_err(|e| ApiError::internal("Failed to update action").details(e))?
        .ok_or_else(|| ApiError::not_found("Message not found"))?;
    state
        .security
        .allow(&caller, Resource::Channel(stored.channel_id), Action::Write)
        .await?;
    let in_reply_to = optional_uuid(
        &body,
        "in_reply_to_message_id",
        "Invalid in_reply_to_message_id format",
    )?;
    optional_uuid(&body, "author_id", "Invalid author_id format")?;
    let present = |key: &str| body.get(key).filter(|v| !v.is_null()).cloned();
    let update = MessageUpdate {
        content: present("content").map(|v| js_string(&v)),
        raw_message: present("raw_message"),
        source_type: present("source_type").map(|v| js_string(&v)),
        in_reply_to: in_reply_to.map(|u| u.to_string()),
        metadata: present("metadata"),
        // ElizaOS uses `author_id` only for the broadcast, never stores it.
        author_id: None,
        updated_at: confab_protocol::now_ms(),
    };
    match state.hub.update_message(id, &update).await {
        Ok(Some(committed)) => Ok(super::envelope::ok(shapes::message(
            &committed.message,
            ReplyTo::NullWhenNone,
        ))),
        Ok(None) => Err(ApiError::not_found("Message not found")),
        Err(e) => Err(ApiError::internal("Failed to update action").details(e)),
    }
}

/// Whether a message's metadata describes a DM (`isDm`, `channelType` or `channel_type`).
pub fn metadata_is_dm(metadata: Option<&Map<String, Value>>) -> bool {
    let Some(m) = metadata else {
        return false;
    };
    m.get("isDm").is_some_and(truthy)
        || ["channelType", "channel_type"]
            .iter()
            .any(|k| m.get(*k).and_then(Value::as_str) == Some("DM"))
}

/// The second DM participant named by the metadata (`targetUserId`, else `recipientId`).
pub fn metadata_dm_target(metadata: Option<&Map<String, Value>>) -> Option<Uuid> {
    let m = metadata?;
    m.truthy_field("targetUserId")
        .or_else(|| m.truthy_field("recipientId"))
        .and_then(Value::as_str)
        .and_then(parse_uuid)
}

/// `POST /ingest-external`: a message from another platform. Only presence of the ids is
/// checked, as in ElizaOS; ids that are not UUIDs are mapped with `stringToUuid` like socket
/// clients' room names.
///
/// Deviation: ElizaOS fails (500) when the channel does not exist; confab creates it the way a
/// first socket message would (§1.6), marked `created_by: "external_ingest_auto_creation"`, so
/// a bridge can post into a new conversation directly. An unknown message server is 404.
#[utoipa::path(post, path = "/ingest-external", tag = "messaging", request_body = doc::ExternalMessageRequest,
    responses((status = 202, body = doc::Ingested),
        (status = 400, description = "Missing fields", body = ApiFailure),
        (status = 404, description = "No such message server", body = ApiFailure)))]
async fn ingest_external(
    State(state): State<AppState>,
    caller: Principal,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let (Some(channel), Some(server), Some(author), Some(content)) = (
        body.text("channel_id"),
        body.text("message_server_id"),
        body.text("author_id"),
        body.text("content"),
    ) else {
        return Err(ApiError::bad_request("Invalid external message payload"));
    };
    let hub = &state.hub;
    let channel_ref = ChannelRef::parse(&channel);
    let speaker = parse_uuid(&author).unwrap_or_else(|| string_to_uuid(&author));
    state
        .security
        .allow(&caller, Resource::Author(speaker), Action::Write)
        .await?;
    state
        .security
        .allow(&caller, Resource::Channel(channel_ref.id), Action::Write)
        .await?;
    let metadata = body.object("metadata");
    let empty = Map::new();
    let channel = hub
        .directory()
        .find_or_create(AutoCreate {
            channel: &channel_ref,
            server_id: string_to_uuid(&server),
            creator: author.clone(),
            dm: metadata_is_dm(metadata),
            dm_target: metadata_dm_target(metadata),
            created_by: "external_ingest_auto_creation",
            client_metadata: metadata.unwrap_or(&empty),
        })
        .await
        .map_err(hub_failure)?;
    let display_name = body.truthy_field("author_display_name").cloned();
    // The broadcast takes the sender's name from the stored metadata.
    let mut stored_metadata = body.get("metadata").filter(|m| !m.is_null()).cloned();
    if let Some(name) = &display_name {
        let mut m = metadata.cloned().unwrap_or_default();
        m.insert("author_display_name".into(), name.clone());
        stored_metadata = Some(Value::Object(m));
    }
    let message = NewMessage {
        id: confab_store::new_message_id(),
        channel_id: channel.id,
        author_id: author,
        content,
        raw_message: body.get("raw_message").filter(|v| !v.is_null()).cloned(),
        in_reply_to: body.uuid("in_reply_to_message_id").map(|u| u.to_string()),
        source_type: body.text("source_type"),
        source_id: body.text("source_id"),
        metadata: stored_metadata,
        created_at: 0,
        client_key: None,
    };
    let committed = hub
        .append(message, channel, Delivery::ToRoom)
        .await
        .map_err(|e| ApiError::internal("Failed to ingest message").details(e))?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "success": true,
            "message": "Message ingested and published to bus",
            "data": { "messageId": committed.message.id },
        })),
    )
        .into_response())
}

/// Used by the channel-message route too: the channel row for an id, created like a first
/// socket message would when missing (§2.7 "Auto-creates a missing channel like §1.6").
pub async fn find_or_create_for_post(
    hub: &Hub,
    channel: Uuid,
    server: Uuid,
    author: &str,
    metadata: Option<&Map<String, Value>>,
) -> Result<Arc<ChannelInfo>, ApiError> {
    let empty = Map::new();
    hub.directory()
        .find_or_create(AutoCreate {
            channel: &ChannelRef::from_id(channel),
            server_id: server,
            creator: author.to_owned(),
            dm: metadata_is_dm(metadata),
            dm_target: metadata_dm_target(metadata),
            created_by: "gui_auto_creation",
            client_metadata: metadata.unwrap_or(&empty),
        })
        .await
        // `Server <id> does not exist` (404) / `Failed to create channel: <reason>`, as in
        // ElizaOS.
        .map_err(hub_failure)
}

const COMPLETE_FIELDS: &str = "Missing or invalid fields: channel_id, server_id (or messageId)";

/// `POST /complete`: a message's processing finished; the channel's room gets `messageComplete`.
/// Takes ElizaOS ≤ 1.4's `{channel_id, server_id}` (1.7's agents still send
/// `message_server_id`) or `@elizaos/api-client`'s `{messageId, status, error?}` (the message's
/// channel, and its author as the agent). ElizaOS 1.5+ dropped the route (404); confab serves
/// both callers. A message the caller may not read is not found.
#[utoipa::path(post, path = "/complete", tag = "messaging", request_body = doc::CompleteRequest,
    responses((status = 200, body = doc::Completed),
        (status = 400, description = "Missing or malformed fields", body = ApiFailure),
        (status = 404, description = "No such channel or message", body = ApiFailure)))]
async fn complete(
    State(state): State<AppState>,
    caller: Principal,
    JsonBody(body): JsonBody<Body>,
) -> Result<axum::response::Response, ApiError> {
    let failure = "Failed to emit completion event";
    if let Some(status) = body.get("status")
        && !matches!(status.as_str(), Some("completed" | "failed"))
    {
        return Err(ApiError::bad_request(
            "Invalid status: must be completed or failed",
        ));
    }
    let (channel, agent) = if body.contains_key("messageId") {
        let id = body
            .uuid("messageId")
            .ok_or_else(|| ApiError::bad_request(COMPLETE_FIELDS))?;
        let message = state
            .hub
            .store()
            .get_message(id)
            .await
            .map_err(failed(failure))?
            .ok_or_else(|| ApiError::not_found("Message not found"))?;
        state
            .security
            .allow(
                &caller,
                Resource::Channel(message.channel_id),
                Action::Write,
            )
            .await
            .map_err(|_| ApiError::not_found("Message not found"))?;
        (message.channel_id, parse_uuid(&message.author_id))
    } else {
        let (Some(channel), Some(_server)) = (
            body.uuid("channel_id"),
            body.uuid("server_id")
                .or_else(|| body.uuid("message_server_id")),
        ) else {
            return Err(ApiError::bad_request(COMPLETE_FIELDS));
        };
        state
            .security
            .allow(&caller, Resource::Channel(channel), Action::Write)
            .await?;
        (channel, None)
    };
    let info = state
        .hub
        .directory()
        .find(channel)
        .await
        .map_err(failed(failure))?
        .ok_or_else(|| ApiError::not_found("Channel not found"))?;
    state
        .hub
        .announce(
            channel,
            &ServerEvent::MessageComplete(MessageComplete {
                scope: info.scope(),
                agent_id: agent,
            }),
        )
        .await;
    Ok(bare(
        StatusCode::OK,
        json!({
            "success": true,
            "message": "Completion event emitted",
            "data": { "success": true },
        }),
    ))
}
