//! Every event the server emits (compat spec §1.8, plus the seed events confab adds), each a
//! serde struct; [`ServerEvent`] names them.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::{RefOr, schema::Schema};
use uuid::Uuid;

/// The channel-scoped ids every channel payload carries, under both of their names.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelScope {
    pub channel_id: Uuid,
    /// The channel as the client first spelled it, or its UUID.
    pub room_id: String,
    pub message_server_id: Uuid,
    pub server_id: Uuid,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authenticated {
    pub entity_id: Uuid,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionEstablished {
    pub message: &'static str,
    pub socket_id: String,
    pub entity_id: Uuid,
}

/// How a join with a resume point (or the server's automatic rejoin) went:
/// `{complete, delivered, from, reason?}`.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryReport {
    /// Every message of the channel after `from` has been sent to this connection, in order,
    /// before this reply (replayed now, or earlier on the same connection), and later ones
    /// follow live. Never true when `reason` is set.
    pub complete: bool,
    /// How many messages were replayed for this join.
    pub delivered: usize,
    /// The point the replay started after.
    pub from: ResumedFrom,
    /// Why recovery is not complete, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RecoveryReason>,
}

impl RecoveryReport {
    /// A replay of `delivered` messages after `from`; complete unless `reason` says otherwise.
    pub fn new(from: ResumedFrom, delivered: usize, reason: Option<RecoveryReason>) -> Self {
        RecoveryReport {
            complete: reason.is_none(),
            delivered,
            from,
            reason,
        }
    }
}

/// Where a replay started, as the client gave it or as the server knew it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ResumedFrom {
    /// After this message (the client's `lastMessageId`).
    LastMessageId(uuid::Uuid),
    /// At or after this instant, epoch ms (the client's `since`).
    Since(i64),
    /// After the last message the server handed to the client's previous connection, by its
    /// storage sequence number (the automatic rejoin; 0 when nothing had been).
    Sequence(i64),
}

/// Why a recovery is not complete (`recovery.reason`, machine-readable).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryReason {
    /// `lastMessageId` is not a stored message of this channel (never was, or deleted or
    /// cleared since): nothing is replayed; the connection receives live messages.
    UnknownMessage,
    /// More messages were missed than one join replays (`--resume-limit`): the newest are
    /// replayed; the older ones are in the channel's history.
    LimitExceeded,
    /// The client's previous connection stopped reading: its outgoing queue overflowed and it
    /// was disconnected. The replay starts after the last message handed to it before that,
    /// but what was still queued for it may never have arrived.
    SlowConsumer,
    /// An automatic rejoin: the replay starts after the last message handed to the previous
    /// connection's transport, and the server cannot know whether the last of those arrived
    /// before the connection was lost. Join with `lastMessageId` for an exact resume.
    Unconfirmed,
    /// The history could not be read; nothing was replayed.
    HistoryUnavailable,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelJoined {
    pub message: String,
    #[serde(flatten)]
    pub scope: ChannelScope,
    pub entity_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// True when the server put a reconnecting client back into the channel by itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rejoined: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryReport>,
}

/// `messageBroadcast`: written out field by field (no flatten) because it is the hot path.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageBroadcast {
    pub id: Uuid,
    pub sender_id: String,
    pub sender_name: String,
    pub text: String,
    pub channel_id: Uuid,
    pub room_id: String,
    pub message_server_id: Uuid,
    pub server_id: Uuid,
    pub created_at: i64,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_reply_to_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_message: Option<Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAck {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    pub message_id: Uuid,
    pub status: &'static str,
    pub channel_id: Uuid,
    pub room_id: String,
    pub message_server_id: Uuid,
    pub server_id: Uuid,
    pub created_at: i64,
    /// This message was sent before with the same id (and stored then): it was not stored or
    /// broadcast again; this acknowledges the original.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageError {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// When trying again can succeed (a rate limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl MessageError {
    pub fn new(error: impl Into<String>) -> Self {
        MessageError {
            error: error.into(),
            client_message_id: None,
            channel_id: None,
            room_id: None,
            retry_after_ms: None,
        }
    }

    /// About the message the client sent with this `clientMessageId`.
    pub fn for_message(mut self, client_message_id: Option<String>) -> Self {
        self.client_message_id = client_message_id;
        self
    }
}

/// A command the server refused before doing anything with it (access, limits, a full queue):
/// the client hears the same reason twice, as `messageError` and in the failed acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub error: String,
    pub retry_after_ms: Option<u64>,
}

impl Refused {
    pub fn new(error: impl Into<String>) -> Self {
        Refused {
            error: error.into(),
            retry_after_ms: None,
        }
    }

    /// A refusal that lifts after `ms` milliseconds (0: not a matter of time).
    pub fn retry_after(mut self, ms: u64) -> Self {
        self.retry_after_ms = (ms > 0).then_some(ms);
        self
    }

    /// The `messageError` event.
    pub fn event(&self, client_message_id: Option<String>) -> ServerEvent {
        let mut e = MessageError::new(self.error.clone()).for_message(client_message_id);
        e.retry_after_ms = self.retry_after_ms;
        ServerEvent::MessageError(e)
    }

    /// The acknowledgement: `{success: false, error, retryAfterMs?}`.
    pub fn ack(&self) -> RefusedAck {
        RefusedAck {
            success: false,
            error: self.error.clone(),
            retry_after_ms: self.retry_after_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedAck {
    pub success: bool,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// `unauthorized {message, reason}`: the event ElizaOS's client listens for, sent before the
/// server closes a connection whose credential ran out.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct Unauthorized {
    pub message: &'static str,
    pub reason: &'static str,
}

impl Unauthorized {
    pub fn token_expired() -> Self {
        Unauthorized {
            message: crate::texts::TOKEN_EXPIRED,
            reason: crate::texts::TOKEN_EXPIRED_REASON,
        }
    }
}

/// Seed 000's `message` event, sent to clients of that dialect.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyMessage {
    pub id: Uuid,
    pub user_id: String,
    pub text: String,
    pub timestamp: i64,
    #[serde(flatten)]
    pub scope: ChannelScope,
}

/// Seed 000's `ack` event, and the shape of every Socket.IO acknowledgement callback answer.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AckReply {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryReport>,
    /// As in [`MessageAck::repeat`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AckReply {
    pub fn failure(error: impl Into<String>) -> Self {
        AckReply {
            error: Some(error.into()),
            ..Self::success()
        }
        .failed()
    }

    /// `{success: true}`, to be filled in by the other constructors.
    fn success() -> Self {
        AckReply {
            success: true,
            message_id: None,
            client_message_id: None,
            channel_id: None,
            room_id: None,
            created_at: None,
            recovery: None,
            repeat: false,
            error: None,
        }
    }

    fn failed(mut self) -> Self {
        self.success = false;
        self
    }

    /// A stored message, as its sender's acknowledgement (`repeat` when it was stored before).
    pub fn sent(ack: &MessageAck) -> Self {
        AckReply {
            message_id: Some(ack.message_id),
            client_message_id: ack.client_message_id.clone(),
            channel_id: Some(ack.channel_id),
            room_id: Some(ack.room_id.clone()),
            created_at: Some(ack.created_at),
            repeat: ack.repeat,
            ..Self::success()
        }
    }

    /// Seed 000's `ack` for a stored message: `{success, messageId}`.
    pub fn stored(message_id: Uuid) -> Self {
        AckReply {
            message_id: Some(message_id),
            ..Self::success()
        }
    }

    /// A join, leave or typing notice that went through, in `channel` (`room` as spelled).
    pub fn channel(channel: Uuid, room: Option<String>) -> Self {
        AckReply {
            channel_id: Some(channel),
            room_id: room,
            ..Self::success()
        }
    }

    /// A join, with its recovery report when it resumed.
    pub fn joined(channel: Uuid, room: String, recovery: Option<RecoveryReport>) -> Self {
        AckReply {
            recovery,
            ..Self::channel(channel, Some(room))
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub user_id: Uuid,
    pub entity_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(flatten)]
    pub scope: ChannelScope,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserTyping {
    pub user_id: Uuid,
    pub entity_id: Uuid,
    pub is_typing: bool,
    #[serde(flatten)]
    pub scope: ChannelScope,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageDeleted {
    pub message_id: Uuid,
    #[serde(flatten)]
    pub scope: ChannelScope,
}

/// Payload of `messageUpdated`: a stored message was edited (`PATCH /messages/:id`). Clients
/// replace the text of the message with this id; `updatedAt` is when, in epoch ms.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageUpdated {
    pub message_id: Uuid,
    pub sender_id: String,
    pub text: String,
    pub updated_at: i64,
    pub edited: bool,
    #[serde(flatten)]
    pub scope: ChannelScope,
}

/// Payload of `channelCleared` and `channelDeleted`.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelNotice {
    #[serde(flatten)]
    pub scope: ChannelScope,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelUpdated {
    #[serde(flatten)]
    pub scope: ChannelScope,
    pub updates: Value,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogSubscription {
    pub subscribed: bool,
    pub message: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogFiltersUpdated {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct LogStream {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub payload: Value,
}

/// `controlMessage`: tells clients to lock or unlock their input while an agent runs.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlMessage {
    pub action: ControlAction,
    #[serde(flatten)]
    pub scope: ChannelScope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    DisableInput,
    EnableInput,
}

/// `messageStreamChunk`: one piece of an agent reply as it is generated. `message_id` is the id
/// the final `messageBroadcast` will carry.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageStreamChunk {
    pub message_id: Uuid,
    pub chunk: String,
    pub index: u32,
    pub agent_id: Uuid,
    pub channel_id: Uuid,
    pub room_id: String,
}

/// `messageStreamError`: an agent run failed; `partial_text` is what had streamed so far.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageStreamError {
    pub message_id: Uuid,
    pub agent_id: Uuid,
    pub channel_id: Uuid,
    pub room_id: String,
    pub error: String,
    pub partial_text: String,
}

/// `messageComplete`: an agent run ended (answered, declined or failed). Without an agent when
/// announced through `POST /api/messaging/complete` by a caller that named only the channel
/// (ElizaOS ≤ 1.4's `{channelId, serverId}`).
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageComplete {
    #[serde(flatten)]
    pub scope: ChannelScope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
}

/// Seed 000's `thinking` event: an agent started or stopped working on a reply.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Thinking {
    #[serde(flatten)]
    pub scope: ChannelScope,
    pub agent_id: Uuid,
    pub agent_name: String,
    pub is_thinking: bool,
}

/// An event that arrived from another node of a cluster, re-emitted as it was sent there.
#[derive(Debug, Clone, PartialEq)]
pub struct Relayed {
    pub name: String,
    pub payload: Value,
}

impl Serialize for Relayed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.payload.serialize(s)
    }
}

/// Every server → client event, by name.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ServerEvent {
    Authenticated(Authenticated),
    ConnectionEstablished(ConnectionEstablished),
    ChannelJoined(ChannelJoined),
    RoomJoined(ChannelJoined),
    MessageBroadcast(MessageBroadcast),
    MessageAck(MessageAck),
    MessageError(MessageError),
    LegacyMessage(LegacyMessage),
    LegacyAck(AckReply),
    UserJoined(Presence),
    UserLeft(Presence),
    UserTyping(UserTyping),
    MessageDeleted(MessageDeleted),
    MessageUpdated(MessageUpdated),
    ChannelCleared(ChannelNotice),
    ChannelDeleted(ChannelNotice),
    ChannelUpdated(ChannelUpdated),
    LogSubscriptionConfirmed(LogSubscription),
    LogFiltersUpdated(LogFiltersUpdated),
    LogStream(LogStream),
    ControlMessage(ControlMessage),
    MessageStreamChunk(MessageStreamChunk),
    MessageStreamError(MessageStreamError),
    MessageComplete(MessageComplete),
    Thinking(Thinking),
    Unauthorized(Unauthorized),
    Relayed(Relayed),
}

impl ServerEvent {
    /// The Socket.IO event name.
    pub fn name(&self) -> &str {
        match self {
            ServerEvent::Authenticated(_) => "authenticated",
            ServerEvent::ConnectionEstablished(_) => "connection_established",
            ServerEvent::ChannelJoined(_) => "channel_joined",
            ServerEvent::RoomJoined(_) => "room_joined",
            ServerEvent::MessageBroadcast(_) => "messageBroadcast",
            ServerEvent::MessageAck(_) => "messageAck",
            ServerEvent::MessageError(_) => "messageError",
            ServerEvent::LegacyMessage(_) => "message",
            ServerEvent::LegacyAck(_) => "ack",
            ServerEvent::UserJoined(_) => "userJoined",
            ServerEvent::UserLeft(_) => "userLeft",
            ServerEvent::UserTyping(_) => "userTyping",
            ServerEvent::MessageDeleted(_) => "messageDeleted",
            ServerEvent::MessageUpdated(_) => "messageUpdated",
            ServerEvent::ChannelCleared(_) => "channelCleared",
            ServerEvent::ChannelDeleted(_) => "channelDeleted",
            ServerEvent::ChannelUpdated(_) => "channelUpdated",
            ServerEvent::LogSubscriptionConfirmed(_) => "log_subscription_confirmed",
            ServerEvent::LogFiltersUpdated(_) => "log_filters_updated",
            ServerEvent::LogStream(_) => "log_stream",
            ServerEvent::ControlMessage(_) => "controlMessage",
            ServerEvent::MessageStreamChunk(_) => "messageStreamChunk",
            ServerEvent::MessageStreamError(_) => "messageStreamError",
            ServerEvent::MessageComplete(_) => "messageComplete",
            ServerEvent::Thinking(_) => "thinking",
            ServerEvent::Unauthorized(_) => "unauthorized",
            ServerEvent::Relayed(r) => &r.name,
        }
    }
}

/// One event as the API reference describes it: its Socket.IO name, what it carries and when,
/// and the schema of its payload (a reference into the schemas [`ServerEvent::catalog`] fills).
pub struct EventDoc {
    pub name: &'static str,
    pub summary: &'static str,
    pub payload: RefOr<Schema>,
}

/// Registers `T`'s schema (and those it refers to) and returns a reference to it.
pub fn schema_ref<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema> {
    T::schemas(schemas);
    let name = T::name().into_owned();
    schemas.push((name.clone(), T::schema()));
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name))
}

impl ServerEvent {
    /// Every server → client event with its payload's schema, for the API reference
    /// (`/api/asyncapi.json`). The test below keeps it in step with [`ServerEvent::name`].
    pub fn catalog(schemas: &mut Vec<(String, RefOr<Schema>)>) -> Vec<EventDoc> {
        let d = |name, summary, payload| EventDoc {
            name,
            summary,
            payload,
        };
        vec![
            d(
                "authenticated",
                "The connection's identity, after a successful handshake",
                schema_ref::<Authenticated>(schemas),
            ),
            d(
                "connection_established",
                "Sent once on connect",
                schema_ref::<ConnectionEstablished>(schemas),
            ),
            d(
                "channel_joined",
                "A join succeeded (with what a resume recovered)",
                schema_ref::<ChannelJoined>(schemas),
            ),
            d(
                "room_joined",
                "The same as `channel_joined`, under its older name",
                schema_ref::<ChannelJoined>(schemas),
            ),
            d(
                "messageBroadcast",
                "A message in a joined channel (user or agent)",
                schema_ref::<MessageBroadcast>(schemas),
            ),
            d(
                "messageAck",
                "The sender's message is stored (before its broadcast)",
                schema_ref::<MessageAck>(schemas),
            ),
            d(
                "messageError",
                "A send or join was refused",
                schema_ref::<MessageError>(schemas),
            ),
            d(
                "message",
                "Seed 000 dialect: a message in a joined room",
                schema_ref::<LegacyMessage>(schemas),
            ),
            d(
                "ack",
                "Seed 000 dialect: the answer to `send_message`; also every acknowledgement callback's answer",
                schema_ref::<AckReply>(schemas),
            ),
            d(
                "userJoined",
                "Someone joined a channel",
                schema_ref::<Presence>(schemas),
            ),
            d(
                "userLeft",
                "Someone left a channel",
                schema_ref::<Presence>(schemas),
            ),
            d(
                "userTyping",
                "Someone is typing (or stopped)",
                schema_ref::<UserTyping>(schemas),
            ),
            d(
                "messageDeleted",
                "A message was deleted",
                schema_ref::<MessageDeleted>(schemas),
            ),
            d(
                "messageUpdated",
                "A message was edited",
                schema_ref::<MessageUpdated>(schemas),
            ),
            d(
                "channelCleared",
                "Every message of the channel was deleted",
                schema_ref::<ChannelNotice>(schemas),
            ),
            d(
                "channelDeleted",
                "The channel was deleted",
                schema_ref::<ChannelNotice>(schemas),
            ),
            d(
                "channelUpdated",
                "The channel was changed (the full channel as `updates`)",
                schema_ref::<ChannelUpdated>(schemas),
            ),
            d(
                "log_subscription_confirmed",
                "`subscribe_logs` / `unsubscribe_logs` took effect",
                schema_ref::<LogSubscription>(schemas),
            ),
            d(
                "log_filters_updated",
                "`update_log_filters` took effect",
                schema_ref::<LogFiltersUpdated>(schemas),
            ),
            d(
                "log_stream",
                "A log entry, to log subscribers",
                schema_ref::<LogStream>(schemas),
            ),
            d(
                "controlMessage",
                "Disable or enable the input while an agent answers",
                schema_ref::<ControlMessage>(schemas),
            ),
            d(
                "messageStreamChunk",
                "A piece of an agent's streamed reply",
                schema_ref::<MessageStreamChunk>(schemas),
            ),
            d(
                "messageStreamError",
                "An agent's streamed reply failed",
                schema_ref::<MessageStreamError>(schemas),
            ),
            d(
                "messageComplete",
                "An agent's reply is complete",
                schema_ref::<MessageComplete>(schemas),
            ),
            d(
                "thinking",
                "An agent started or stopped working on a reply",
                schema_ref::<Thinking>(schemas),
            ),
            d(
                "unauthorized",
                "A request the connection may not make",
                schema_ref::<Unauthorized>(schemas),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_updated_is_named_and_camel_cased() {
        let ev = ServerEvent::MessageUpdated(MessageUpdated {
            message_id: Uuid::nil(),
            sender_id: "a".into(),
            text: "edited".into(),
            updated_at: 7,
            edited: true,
            scope: ChannelScope {
                channel_id: Uuid::nil(),
                room_id: "room".into(),
                message_server_id: Uuid::nil(),
                server_id: Uuid::nil(),
            },
        });
        assert_eq!(ev.name(), "messageUpdated");
        let v = serde_json::to_value(&ev).unwrap();
        for key in [
            "messageId",
            "senderId",
            "text",
            "updatedAt",
            "edited",
            "channelId",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
    }

    #[test]
    fn scope_flattens_with_both_names() {
        let ev = ServerEvent::ChannelCleared(ChannelNotice {
            scope: ChannelScope {
                channel_id: Uuid::nil(),
                room_id: "room".into(),
                message_server_id: Uuid::nil(),
                server_id: Uuid::nil(),
            },
        });
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(ev.name(), "channelCleared");
        for key in ["channelId", "roomId", "messageServerId", "serverId"] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
    }
}
