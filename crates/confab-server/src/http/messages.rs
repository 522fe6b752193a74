//! Channel messages (compat spec §2.7): history, posting from the GUI or any REST client,
//! clearing and deleting. Style B, except the POST replies (`{success, userMessage}`, no `data`)
//! and the 204s.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use confab_hub::Delivery;
use confab_hub::delivery::source;
use confab_protocol::inbound::MAX_CLIENT_MESSAGE_ID;
use confab_protocol::{DEFAULT_AUTHOR_ID, parse_epoch_ms, parse_uuid};
use confab_store::{MessageSearch, NewMessage, StoredMessage};
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::agent_reply::{self, REPLY_TIMEOUT, Transport};
use super::channels::channel_id;
use super::core::find_or_create_for_post;
use super::envelope::{ApiError, ApiResult, Body, Fields, JsonBody, QueryMap, bare, failed};
use super::envelope::{no_content, ok};
use super::openapi::{self as doc, ApiFailure, Success, alias};
use super::shapes;
use crate::access::{Action, Resource};
use crate::auth::Principal;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Default page size of the history.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page of the history. ElizaOS has no cap at all; confab caps it so one request cannot
/// make the server read (and the client receive) an entire large channel at once. Clients page
/// with `before`.
const MAX_LIMIT: u32 = 1000;

const POST_FIELDS: &str =
    "Missing required fields: channelId, message_server_id, author_id, content";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, post_message, clear))
        .routes(routes!(remove))
        .routes(routes!(one, edit))
        .routes(routes!(search))
}

/// The `/central-channels` paths, answered by the same handlers.
pub fn deprecated_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(alias(
            routes!(list, post_message, clear),
            "/central-channels/{channel_id}/messages",
        ))
        .routes(alias(
            routes!(remove),
            "/central-channels/{channel_id}/messages/{message_id}",
        ))
}

/// JavaScript's `parseInt` for the decimal strings clients send: leading digits, optional sign.
fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim_start();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse::<i64>().ok().map(|n| sign * n)
}

/// The page size: `limit` parsed like `parseInt`, default 50, at most [`MAX_LIMIT`]; a value
/// that is not a number, or is negative, means the default.
fn page_limit(raw: Option<&str>) -> u32 {
    match raw.and_then(parse_int) {
        Some(n) if n >= 0 => n.min(MAX_LIMIT as i64) as u32,
        _ => DEFAULT_LIMIT,
    }
}

/// `GET /channels/:id/messages?limit=&before=`: newest first. `before` is exclusive and may be
/// epoch milliseconds (ElizaOS) or an ISO date (what the 1.7.2 web UI actually sends); `0` or
/// an unreadable value means no bound, as in ElizaOS.
#[utoipa::path(get, path = "/channels/{channel_id}/messages", tag = "messages", operation_id = "channel_messages",
    params(doc::ChannelIdParam, doc::HistoryQuery),
    responses((status = 200, body = Success<doc::MessageList>),
        (status = 400, description = "Not a UUID", body = ApiFailure)))]
async fn list(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    query: QueryMap,
) -> ApiResult {
    let id = channel_id(&id, "Invalid channelId")?;
    state
        .security
        .allow(&caller, Resource::Channel(id), Action::Read)
        .await?;
    let limit = page_limit(query.get("limit"));
    let before = query
        .get("before")
        .and_then(parse_epoch_ms)
        .filter(|ms| *ms != 0);
    let messages = state
        .hub
        .recent_messages(id, limit, before)
        .await
        .map_err(failed("Failed to fetch messages"))?;
    let messages: Vec<Value> = messages.iter().map(shapes::history_message).collect();
    Ok(ok(json!({ "messages": messages })))
}

fn js_typeof(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Null | Value::Array(_) | Value::Object(_) => "object",
    }
}

/// ElizaOS's `validateTransport(transport ?? mode)`.
pub(super) fn transport(body: &Body) -> Result<Transport, ApiError> {
    let given = |k: &str| body.get(k).filter(|v| !v.is_null());
    match given("transport").or_else(|| given("mode")) {
        None => Ok(Transport::WebSocket),
        Some(Value::String(s)) => match s.as_str() {
            "websocket" => Ok(Transport::WebSocket),
            "http" | "sync" => Ok(Transport::Http),
            "sse" | "stream" => Ok(Transport::Sse),
            other => Err(ApiError::bad_request(format!(
                "Invalid transport \"{other}\". Must be one of: http, sse, websocket, sync, stream"
            ))),
        },
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid transport type \"{}\". Transport must be a string.",
            js_typeof(other)
        ))),
    }
}

/// `POST /channels/:id/messages`: a user message from the GUI or any REST client.
///
/// Validation, auto-creation of a missing channel (§1.6, `created_by: "gui_auto_creation"`) and
/// the target-agent rule follow ElizaOS. Differences, on purpose:
/// * ElizaOS stores the message *before* finding there is no agent in the channel (and then
///   answers 400 with an orphan message stored, never broadcast); confab checks first and stores
///   nothing when it answers 400.
/// * With `http` and `sse`, ElizaOS runs the agent outside the channel: neither the message nor
///   the reply is broadcast, and the reply is not stored. confab stores and broadcasts both, as
///   for `websocket`, so every client of the channel sees the same conversation; the reply is
///   also in the response (`agentResponse`) or the event stream (`chunk`…, `done`).
#[utoipa::path(post, path = "/channels/{channel_id}/messages", tag = "messages", operation_id = "post_message",
    params(doc::ChannelIdParam), request_body = doc::PostMessageRequest,
    responses((status = 201, body = doc::Posted),
        (status = 200, description = "`transport: sse`: the reply as Server-Sent Events (`user_message`, `chunk`…, `done` or `error`)",
            content_type = "text/event-stream"),
        (status = 400, description = "Missing or malformed fields, or no agent to answer", body = ApiFailure),
        (status = 404, description = "No such message server", body = ApiFailure)))]
async fn post_message(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let transport = transport(&body)?;
    // A field that is present must be valid; a missing author or server takes its default
    // (`@elizaos/api-client`'s `postMessage` sends only `content` and `metadata`).
    let given = |k: &str| body.get(k).filter(|v| !v.is_null()).is_some();
    let author = match given("author_id") {
        true => body.uuid("author_id"),
        false => Some(caller.entity.unwrap_or(DEFAULT_AUTHOR_ID)),
    };
    // `Some(None)`: not given; `None`: given but not a UUID.
    let server = match given("message_server_id") {
        true => body.uuid("message_server_id").map(Some),
        false => Some(None),
    };
    let (Some(channel), Some(author), Some(content), Some(server)) =
        (parse_uuid(&id), author, body.text("content"), server)
    else {
        return Err(ApiError::bad_request(POST_FIELDS));
    };
    let security = &state.security;
    security
        .allow(&caller, Resource::Author(author), Action::Write)
        .await?;
    security
        .allow(&caller, Resource::Channel(channel), Action::Write)
        .await?;
    let client_message_id = client_message_id(&body)?;
    let hub = &state.hub;
    let author = author.to_string();
    let metadata = body.object("metadata");
    let server = match server {
        Some(server) => server,
        // The channel's own server, or the default one for a channel the post creates.
        None => hub
            .directory()
            .find(channel)
            .await
            .map_err(failed("Failed to process message"))?
            .map_or_else(|| hub.default_server(), |info| info.server_id),
    };
    let info = find_or_create_for_post(hub, channel, server, &author, metadata).await?;

    // The agent that would answer: the first participant other than the author, or the one
    // the metadata names.
    let failure = "Failed to process message";
    let participants = hub.participants(channel).await.map_err(failed(failure))?;
    let is_author = |p: &String| parse_uuid(p).map_or(*p == author, |u| u.to_string() == author);
    let has_agent = participants.iter().any(|p| !is_author(p))
        || metadata
            .and_then(|m| m.truthy_field("targetAgentId"))
            .is_some();
    if !has_agent {
        return Err(ApiError::bad_request(
            "No agent found in channel participants",
        ));
    }

    let message = NewMessage {
        id: confab_store::new_message_id(),
        channel_id: info.id,
        author_id: author,
        content,
        raw_message: attachments_checked(body.get("raw_message"))?,
        in_reply_to: body.uuid("in_reply_to_message_id").map(|u| u.to_string()),
        source_type: Some(
            body.text("source_type")
                .unwrap_or_else(|| source::GUI.into()),
        ),
        source_id: None,
        metadata: attachments_checked(body.get("metadata"))?,
        created_at: 0,
        client_key: hub.client_key(&client_message_id),
    };
    let watch =
        (transport != Transport::WebSocket).then(|| state.agents.runtime.watch(REPLY_TIMEOUT));
    let committed = hub
        .append(message, info, Delivery::ToRoom)
        .await
        .map_err(failed(failure))?;
    let user_message = shapes::bus_message(
        &committed.message,
        &json!(server),
        metadata.and_then(|m| m.get("user_display_name")).cloned(),
    );
    // ElizaOS answers `userMessage` only; `@elizaos/api-client` unwraps `data`, so the stored
    // message is there too, in the shape `GET /messages/:id` gives.
    let posted = |extra: Option<(&str, Value)>| {
        let mut body = json!({
            "success": true,
            "userMessage": user_message,
            "data": shapes::history_message(&committed.message),
        });
        if let Some((key, value)) = extra {
            body[key] = value;
        }
        bare(StatusCode::CREATED, body)
    };
    if committed.repeat {
        // Answered (and replied to) the first time; a repeat waits for no new reply.
        return Ok(posted(Some(("repeat", json!(true)))));
    }
    Ok(match (transport, watch) {
        (Transport::Http, Some(watch)) => {
            match agent_reply::wait(watch, committed.message.id).await {
                Ok(reply) => posted(Some(("agentResponse", json!(reply)))),
                Err(e) => {
                    return Err(
                        ApiError::internal("Failed to process message in HTTP transport")
                            .details(e),
                    );
                }
            }
        }
        (Transport::Sse, Some(watch)) => {
            agent_reply::event_stream(user_message.clone(), watch, committed.message.id)
        }
        _ => posted(None),
    })
}

/// The body's optional `messageId` (or `clientMessageId`): the sender's id for the message, its
/// idempotency key. A repeat answers like the first post (the original message, with
/// `repeat: true`) and is not stored or broadcast again.
fn client_message_id(body: &Body) -> Result<Option<String>, ApiError> {
    let Some(v) = ["messageId", "clientMessageId"]
        .iter()
        .find_map(|k| body.get(*k).filter(|v| !v.is_null()))
    else {
        return Ok(None);
    };
    let id = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if id.is_empty() || id.chars().count() > MAX_CLIENT_MESSAGE_ID {
        return Err(ApiError::bad_request(format!(
            "messageId must be a string of 1 to {MAX_CLIENT_MESSAGE_ID} characters"
        )));
    }
    Ok(Some(id))
}

/// A body's `metadata` or `raw_message`, its attachments checked and in stored form
/// (`confab_protocol::attachments`); 400 for bad ones.
pub fn attachments_checked(v: Option<&Value>) -> Result<Option<Value>, ApiError> {
    confab_protocol::attachments::normalize_within(v.filter(|v| !v.is_null()).cloned())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `DELETE /channels/:id/messages`: 204; the room gets `channelCleared`. (ElizaOS deletes only
/// the newest 1000 messages; confab deletes them all.)
#[utoipa::path(delete, path = "/channels/{channel_id}/messages", tag = "messages", operation_id = "clear_messages",
    params(doc::ChannelIdParam),
    responses((status = 204, description = "Cleared"),
        (status = 400, description = "Not a UUID", body = ApiFailure)))]
async fn clear(
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
        .clear_channel(id)
        .await
        .map_err(failed("Failed to clear messages"))?;
    Ok(no_content())
}

/// `DELETE /channels/:id/messages/:messageId`: 204 whether or not the message existed; the room
/// gets `messageDeleted`. Only a message of that channel is deleted.
#[utoipa::path(delete, path = "/channels/{channel_id}/messages/{message_id}", tag = "messages",
    operation_id = "delete_message", params(doc::ChannelIdParam, doc::MessageIdParam),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "Ids not UUIDs", body = ApiFailure)))]
async fn remove(
    State(state): State<AppState>,
    caller: Principal,
    Path((channel, message)): Path<(String, String)>,
) -> ApiResult {
    let (Some(channel), Some(message)) = (parse_uuid(&channel), parse_uuid(&message)) else {
        return Err(ApiError::bad_request("Invalid channelId or messageId"));
    };
    state
        .security
        .allow(&caller, Resource::Channel(channel), Action::Write)
        .await?;
    state
        .hub
        .delete_message(channel, message)
        .await
        .map_err(failed("Failed to delete message"))?;
    Ok(no_content())
}

/// A message by id, if the caller may do `action` in its channel. A message the caller may not
/// reach is answered like a missing one, so its id tells nothing.
async fn reachable_message(
    state: &AppState,
    caller: &Principal,
    raw_id: &str,
    action: Action,
    failure: &str,
) -> Result<StoredMessage, ApiError> {
    let id = parse_uuid(raw_id).ok_or_else(|| ApiError::bad_request("Invalid messageId"))?;
    let not_found = || ApiError::not_found("Message not found");
    let message = state
        .hub
        .message(id)
        .await
        .map_err(failed(failure))?
        .ok_or_else(not_found)?;
    state
        .security
        .allow(caller, Resource::Channel(message.channel_id), action)
        .await
        .map_err(|_| not_found())?;
    Ok(message)
}

/// `GET /messages/:id` (listed by `@elizaos/api-client`, absent from ElizaOS 1.7.2): the
/// message as the history lists it. Needs Read on its channel.
#[utoipa::path(get, path = "/messages/{message_id}", tag = "messages", operation_id = "get_message",
    params(doc::MessageIdParam),
    responses((status = 200, body = Success<doc::Message>),
        (status = 400, description = "Not a UUID", body = ApiFailure),
        (status = 404, description = "No such message", body = ApiFailure)))]
async fn one(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    let message = reachable_message(
        &state,
        &caller,
        &id,
        Action::Read,
        "Failed to fetch message",
    )
    .await?;
    Ok(ok(shapes::history_message(&message)))
}

/// `PATCH /messages/:id` `{content}` (`@elizaos/api-client`'s `updateMessage`; absent from
/// ElizaOS 1.7.2): stores the new text, marks the message `metadata.edited`, moves its
/// `updatedAt`, and tells the channel's room with `messageUpdated`. Answers the edited message
/// as the history lists it. Needs Write on its channel.
#[utoipa::path(patch, path = "/messages/{message_id}", tag = "messages", operation_id = "edit_message",
    params(doc::MessageIdParam), request_body = doc::EditMessageRequest,
    responses((status = 200, body = Success<doc::Message>),
        (status = 400, description = "Not a UUID, or no content", body = ApiFailure),
        (status = 404, description = "No such message", body = ApiFailure)))]
async fn edit(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let failure = "Failed to update message";
    let Some(Value::String(content)) = body.get("content").filter(|v| v.as_str() != Some(""))
    else {
        return Err(ApiError::bad_request(
            "Invalid content: must be a non-empty string",
        ));
    };
    let message = reachable_message(&state, &caller, &id, Action::Write, failure).await?;
    match state
        .hub
        .edit_message(message.id, content.clone())
        .await
        .map_err(failed(failure))?
    {
        Some(edited) => Ok(ok(shapes::history_message(&edited))),
        // Deleted in between.
        None => Err(ApiError::not_found("Message not found")),
    }
}

/// Default and largest page of a search.
const SEARCH_LIMIT: u32 = 50;
const MAX_SEARCH_LIMIT: u32 = 100;
/// At most this many words of a query are searched for.
const MAX_SEARCH_WORDS: usize = 16;
/// Ranked hits read per round while leaving out those of channels the caller may not read.
const SEARCH_BATCH: u32 = 200;
/// Hits a search looks through at most (the allowed and the left-out ones together), so that a
/// caller who may read few of the matching messages cannot make one request scan them all.
const MAX_SEARCH_SCAN: u32 = 5_000;

/// A non-negative whole number field (`limit`, `offset`, `page`), as a number or digits.
fn count_field(body: &Body, key: &str) -> Result<Option<u32>, ApiError> {
    let bad = || ApiError::bad_request(format!("Invalid {key}: must be a non-negative integer"));
    match body.get(key).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| Some(n.min(u32::MAX as u64) as u32))
            .ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse::<u32>().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// A point in time (`from`, `to`): epoch ms, or an ISO date (what `Date` becomes in JSON).
fn time_field(body: &Body, key: &str) -> Result<Option<i64>, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "Invalid {key}: must be a date or epoch milliseconds"
        ))
    };
    match body.get(key).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => parse_epoch_ms(s).map(Some).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

/// `POST /messages/search` (`@elizaos/api-client`'s `searchMessages`; absent from ElizaOS
/// 1.7.2): `{query, channelId?, authorId?, from?, to?, limit?, offset?, page?}` →
/// `data: {messages, limit, offset}`, messages as the history lists them, ranked best first.
///
/// Full text: every word of `query` must occur (whole words, any case). Only messages of
/// channels the caller may read are returned; a `channelId` the caller may not read is a 403,
/// as for its history. `page` (from 1) stands for `offset = (page - 1) * limit`.
#[utoipa::path(post, path = "/messages/search", tag = "messages", operation_id = "search_messages",
    request_body = doc::SearchRequest,
    responses((status = 200, body = Success<doc::SearchResult>),
        (status = 400, description = "No words, or malformed fields", body = ApiFailure)))]
async fn search(
    State(state): State<AppState>,
    caller: Principal,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    let failure = "Failed to search messages";
    let words = match body.get("query") {
        Some(Value::String(q)) => MessageSearch::words_of(q, MAX_SEARCH_WORDS),
        _ => Vec::new(),
    };
    if words.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid query: must be a string with at least one word",
        ));
    }
    let channel = match body.get("channelId").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(parse_uuid)
                .ok_or_else(|| ApiError::bad_request("Invalid channelId"))?,
        ),
    };
    let author = match body.get("authorId").filter(|v| !v.is_null()) {
        None => None,
        Some(Value::String(a)) if !a.is_empty() => Some(a.clone()),
        Some(_) => return Err(ApiError::bad_request("Invalid authorId")),
    };
    let limit = count_field(&body, "limit")?
        .unwrap_or(SEARCH_LIMIT)
        .clamp(1, MAX_SEARCH_LIMIT);
    let offset = match (count_field(&body, "offset")?, count_field(&body, "page")?) {
        (Some(offset), _) => offset,
        (None, Some(page)) => page.saturating_sub(1).saturating_mul(limit),
        (None, None) => 0,
    };
    let query = MessageSearch {
        words,
        channel,
        author,
        from_ms: time_field(&body, "from")?,
        to_ms: time_field(&body, "to")?,
    };
    if let Some(channel) = channel {
        state
            .security
            .allow(&caller, Resource::Channel(channel), Action::Read)
            .await?;
    }

    // Ranked hits, leaving out those the caller may not read; the offset counts readable
    // hits only, so pages are the same whoever else's messages match.
    let mut readable: HashMap<Uuid, bool> = HashMap::new();
    let (mut skip, mut scanned) = (offset, 0u32);
    let mut hits: Vec<Value> = Vec::new();
    while scanned < MAX_SEARCH_SCAN {
        let batch = state
            .hub
            .search_messages(&query, SEARCH_BATCH, scanned)
            .await
            .map_err(failed(failure))?;
        scanned += batch.len() as u32;
        for message in &batch {
            let may = match readable.get(&message.channel_id) {
                Some(may) => *may,
                None => {
                    let may = state.security.sees(&caller, message.channel_id).await;
                    readable.insert(message.channel_id, may);
                    may
                }
            };
            if !may {
                continue;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            hits.push(shapes::history_message(message));
            if hits.len() as u32 == limit {
                break;
            }
        }
        if hits.len() as u32 == limit || (batch.len() as u32) < SEARCH_BATCH {
            break;
        }
    }
    Ok(ok(
        json!({ "messages": hits, "limit": limit, "offset": offset }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_like_javascript() {
        assert_eq!(page_limit(None), 50);
        assert_eq!(page_limit(Some("30")), 30);
        assert_eq!(page_limit(Some("30abc")), 30);
        assert_eq!(page_limit(Some("0")), 0);
        assert_eq!(page_limit(Some("abc")), 50);
        assert_eq!(page_limit(Some("-5")), 50);
        assert_eq!(page_limit(Some("999999")), MAX_LIMIT);
    }

    #[test]
    fn transports() {
        let body = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(transport(&body(json!({}))).unwrap(), Transport::WebSocket);
        assert_eq!(
            transport(&body(json!({"mode": "sync"}))).unwrap(),
            Transport::Http
        );
        assert_eq!(
            transport(&body(json!({"transport": null, "mode": "stream"}))).unwrap(),
            Transport::Sse
        );
        assert_eq!(
            transport(&body(json!({"transport": "sse", "mode": "sync"}))).unwrap(),
            Transport::Sse
        );
        assert!(transport(&body(json!({"transport": "carrier-pigeon"}))).is_err());
        assert!(transport(&body(json!({"transport": 5}))).is_err());
    }
}
