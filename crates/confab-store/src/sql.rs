//! The SQL both backends share: column lists, row mapping (`sqlx::FromRow`) and the conversions
//! between stored columns and the model. Nothing here calls into a backend: the backends call
//! this. Statements written with `$n` placeholders run unchanged on both (sqlx binds SQLite's
//! `$n` by number too).

use serde_json::Value;
use uuid::Uuid;

use crate::model::*;

/// Column lists as literals, so every query stays a `&'static str` for sqlx.
macro_rules! message_columns {
    () => {
        "seq, channel_offset, epoch, id, channel_id, author_id, content, raw_message, \
         in_reply_to_root_message_id, source_type, source_id, metadata, created_at, updated_at"
    };
}
macro_rules! channel_columns {
    () => {
        "id, message_server_id, name, type, source_type, source_id, topic, metadata, alias, \
         created_at, updated_at"
    };
}
macro_rules! server_columns {
    () => {
        "id, name, source_type, source_id, metadata, created_at, updated_at"
    };
}
macro_rules! job_columns {
    () => {
        "id, agent_id, user_id, prompt, status, result, error, metadata, created_at, expires_at"
    };
}
macro_rules! agent_columns {
    () => {
        "id, name, enabled, character, created_at, updated_at"
    };
}
macro_rules! session_columns {
    () => {
        "id, channel_id, agent_id, user_id, metadata, timeout_config, renewal_count, \
         created_at, last_activity, renewed_at"
    };
}
pub(crate) use {
    agent_columns, channel_columns, job_columns, message_columns, server_columns, session_columns,
};

/// Statements that read the same on both backends.
pub(crate) mod statements {
    /// One channel's messages with `$2 < channel_offset <= $3`, in offset order (gap filling).
    pub const MESSAGES_IN_OFFSET_RANGE: &str = concat!(
        "SELECT ",
        message_columns!(),
        " FROM central_messages WHERE channel_id = $1 AND channel_offset > $2 \
         AND channel_offset <= $3 ORDER BY channel_offset"
    );
    /// The newest `$4` messages of channel `$1` with `$2 < channel_offset <= $3`, oldest first.
    pub const MESSAGES_AFTER_OFFSET: &str = concat!(
        "SELECT * FROM (SELECT ",
        message_columns!(),
        " FROM central_messages WHERE channel_id = $1 AND channel_offset > $2 \
         AND channel_offset <= $3 ORDER BY channel_offset DESC LIMIT $4) AS page \
         ORDER BY channel_offset"
    );
    /// As [`MESSAGES_AFTER_OFFSET`], for `created_at > $2`. Creation times never go backwards
    /// within a channel, so (created_at, seq) order is offset order.
    pub const MESSAGES_AFTER_TIME: &str = concat!(
        "SELECT * FROM (SELECT ",
        message_columns!(),
        " FROM central_messages WHERE channel_id = $1 AND created_at > $2 \
         AND channel_offset <= $3 ORDER BY created_at DESC, seq DESC LIMIT $4) AS page \
         ORDER BY channel_offset"
    );
    /// As [`MESSAGES_AFTER_TIME`], for `created_at >= $2`.
    pub const MESSAGES_SINCE_TIME: &str = concat!(
        "SELECT * FROM (SELECT ",
        message_columns!(),
        " FROM central_messages WHERE channel_id = $1 AND created_at >= $2 \
         AND channel_offset <= $3 ORDER BY created_at DESC, seq DESC LIMIT $4) AS page \
         ORDER BY channel_offset"
    );
    /// Channel `$1`'s newest `$3` messages created before `$2`, newest first.
    pub const RECENT_MESSAGES: &str = concat!(
        "SELECT ",
        message_columns!(),
        " FROM central_messages WHERE channel_id = $1 AND created_at < $2 \
         ORDER BY created_at DESC, seq DESC LIMIT $3"
    );
    pub const GET_MESSAGE: &str = concat!(
        "SELECT ",
        message_columns!(),
        " FROM central_messages WHERE id = $1"
    );
    pub const FIND_REPLY: &str = concat!(
        "SELECT ",
        message_columns!(),
        " FROM central_messages WHERE in_reply_to_root_message_id = $1 AND author_id = $2 \
         ORDER BY seq LIMIT 1"
    );
    /// Clears a channel's history: its messages go, its epoch moves on (offsets continue).
    pub const CLEAR_CHANNEL: &str = "DELETE FROM central_messages WHERE channel_id = $1";
    pub const NEXT_EPOCH: &str = "UPDATE channels SET epoch = CASE WHEN epoch + 1 > $2 \
         THEN epoch + 1 ELSE $2 END WHERE id = $1";
    pub const CHANNEL_POSITION: &str =
        "SELECT id, epoch, last_offset, last_created_at FROM channels WHERE id = $1";
}

/// Message text is read as bytes: PostgreSQL stores it as BYTEA (its `text` cannot hold NUL),
/// SQLite as TEXT; both decode to bytes.
pub(crate) fn text_from_bytes(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

pub(crate) fn json_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().and_then(|v| serde_json::to_string(v).ok())
}

fn json_value(s: Option<String>) -> Option<Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap_or_default()
}

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    seq: i64,
    channel_offset: i64,
    epoch: i64,
    id: String,
    channel_id: String,
    author_id: String,
    content: Vec<u8>,
    raw_message: Option<String>,
    in_reply_to_root_message_id: Option<String>,
    source_type: Option<String>,
    source_id: Option<String>,
    metadata: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<MessageRow> for StoredMessage {
    fn from(r: MessageRow) -> Self {
        StoredMessage {
            seq: r.seq,
            offset: r.channel_offset,
            epoch: r.epoch,
            id: uuid(&r.id),
            channel_id: uuid(&r.channel_id),
            author_id: r.author_id,
            content: text_from_bytes(r.content),
            raw_message: json_value(r.raw_message),
            in_reply_to: r.in_reply_to_root_message_id,
            source_type: r.source_type,
            source_id: r.source_id,
            metadata: json_value(r.metadata),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A stored message with its client key (the repeat lookup).
#[derive(sqlx::FromRow)]
pub(crate) struct KeyedMessageRow {
    #[sqlx(flatten)]
    message: MessageRow,
    client_key: String,
}

impl From<KeyedMessageRow> for (StoredMessage, String) {
    fn from(r: KeyedMessageRow) -> Self {
        (r.message.into(), r.client_key)
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChannelRow {
    id: String,
    message_server_id: String,
    name: String,
    #[sqlx(rename = "type")]
    kind: String,
    source_type: Option<String>,
    source_id: Option<String>,
    topic: Option<String>,
    metadata: Option<String>,
    alias: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<ChannelRow> for Channel {
    fn from(r: ChannelRow) -> Self {
        Channel {
            id: uuid(&r.id),
            message_server_id: uuid(&r.message_server_id),
            name: r.name,
            kind: r.kind,
            source_type: r.source_type,
            source_id: r.source_id,
            topic: r.topic,
            metadata: json_value(r.metadata),
            alias: r.alias,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ServerRow {
    id: String,
    name: String,
    source_type: String,
    source_id: Option<String>,
    metadata: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<ServerRow> for MessageServer {
    fn from(r: ServerRow) -> Self {
        MessageServer {
            id: uuid(&r.id),
            name: r.name,
            source_type: r.source_type,
            source_id: r.source_id,
            metadata: json_value(r.metadata),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct JobRow {
    id: String,
    agent_id: String,
    user_id: String,
    prompt: String,
    status: String,
    result: Option<String>,
    error: Option<String>,
    metadata: Option<String>,
    created_at: i64,
    expires_at: i64,
}

impl From<JobRow> for JobRecord {
    fn from(r: JobRow) -> Self {
        JobRecord {
            id: uuid(&r.id),
            agent_id: uuid(&r.agent_id),
            user_id: uuid(&r.user_id),
            prompt: r.prompt,
            status: r.status,
            result: json_value(r.result),
            error: r.error,
            metadata: json_value(r.metadata).unwrap_or(Value::Null),
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AgentRow {
    id: String,
    name: String,
    enabled: bool,
    character: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<AgentRow> for AgentRecord {
    fn from(r: AgentRow) -> Self {
        AgentRecord {
            id: uuid(&r.id),
            name: r.name,
            enabled: r.enabled,
            character: json_value(r.character).unwrap_or(Value::Null),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: String,
    channel_id: String,
    agent_id: String,
    user_id: String,
    metadata: Option<String>,
    timeout_config: Option<String>,
    renewal_count: i64,
    created_at: i64,
    last_activity: i64,
    renewed_at: i64,
}

impl From<SessionRow> for SessionRecord {
    fn from(r: SessionRow) -> Self {
        SessionRecord {
            id: uuid(&r.id),
            channel_id: uuid(&r.channel_id),
            agent_id: uuid(&r.agent_id),
            user_id: uuid(&r.user_id),
            metadata: json_value(r.metadata).unwrap_or(Value::Null),
            timeout_config: json_value(r.timeout_config).unwrap_or(Value::Null),
            renewal_count: r.renewal_count,
            created_at: r.created_at,
            last_activity: r.last_activity,
            renewed_at: r.renewed_at,
        }
    }
}

/// A channel's sequence state as read (and locked, on PostgreSQL) by an append.
#[derive(sqlx::FromRow, Debug, Clone, Copy, PartialEq)]
pub(crate) struct ChannelSeqRow {
    pub epoch: i64,
    pub last_offset: i64,
    pub last_created_at: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChannelSeqIdRow {
    pub id: String,
    #[sqlx(flatten)]
    pub seq: ChannelSeqRow,
}

impl ChannelSeqIdRow {
    pub fn channel(&self) -> Uuid {
        uuid(&self.id)
    }
}
