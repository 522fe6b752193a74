//! The stored shapes. Times are epoch milliseconds; JSON columns are `serde_json::Value`.

use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct MessageServer {
    pub id: Uuid,
    pub name: String,
    pub source_type: String,
    pub source_id: Option<String>,
    pub metadata: Option<Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// ElizaOS's channel types that confab creates itself; others are stored as given.
pub mod channel_type {
    pub const DM: &str = "DM";
    pub const GROUP: &str = "GROUP";
}

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub id: Uuid,
    pub message_server_id: Uuid,
    pub name: String,
    pub kind: String,
    pub source_type: Option<String>,
    pub source_id: Option<String>,
    pub topic: Option<String>,
    pub metadata: Option<Value>,
    /// The non-UUID name a client first used for this channel (`'your-room-id'`).
    pub alias: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelUpdate {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub metadata: Option<Value>,
    /// Replaces the whole participant list when given.
    pub participants: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewMessage {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub author_id: String,
    pub content: String,
    pub raw_message: Option<Value>,
    pub in_reply_to: Option<String>,
    pub source_type: Option<String>,
    pub source_id: Option<String>,
    pub metadata: Option<Value>,
    /// When the sender's node took the message, epoch ms; the store stamps the commit time, at
    /// least this and never earlier than the channel's previous message's.
    pub created_at: i64,
    /// The sender's id for this message (its idempotency key, scoped to `author_id`): a second
    /// message with the same author and key is a repeat of the first, not stored again.
    pub client_key: Option<String>,
}

/// Where a committed message stands: its row id and its place in its channel's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// The row id: unique in the store, increasing within a channel (in offset order), but not
    /// an order between channels (PostgreSQL hands them out before commit, without a lock).
    pub seq: i64,
    /// The message's place in its channel: 1, 2, 3, ... in commit order, the order every member
    /// sees. Deleted messages leave holes; offsets are never reused, not even after a clear.
    pub offset: i64,
    /// The channel's epoch at commit: it changes when the channel's history is cleared, and a
    /// channel deleted and created again under the same id starts a new one (and offsets anew).
    pub epoch: i64,
    /// The commit time, epoch ms, never earlier than the channel's previous message's.
    pub created_at: i64,
}

/// A channel's sequence as the store last committed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelPosition {
    pub epoch: i64,
    /// The offset of the channel's last committed message (0 before the first).
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredMessage {
    pub seq: i64,
    /// The message's place in its channel's order (see [`Position::offset`]).
    #[serde(default)]
    pub offset: i64,
    /// The channel's epoch when the message was committed (see [`Position::epoch`]).
    #[serde(default)]
    pub epoch: i64,
    pub id: Uuid,
    pub channel_id: Uuid,
    pub author_id: String,
    pub content: String,
    pub raw_message: Option<Value>,
    pub in_reply_to: Option<String>,
    pub source_type: Option<String>,
    pub source_id: Option<String>,
    pub metadata: Option<Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl StoredMessage {
    /// The message as committed at `at` (which also fixes its creation time).
    pub fn from_new(m: NewMessage, at: Position) -> Self {
        StoredMessage {
            seq: at.seq,
            offset: at.offset,
            epoch: at.epoch,
            updated_at: at.created_at,
            id: m.id,
            channel_id: m.channel_id,
            author_id: m.author_id,
            content: m.content,
            raw_message: m.raw_message,
            in_reply_to: m.in_reply_to,
            source_type: m.source_type,
            source_id: m.source_id,
            metadata: m.metadata,
            created_at: at.created_at,
        }
    }

    /// Where the message stands.
    pub fn position(&self) -> Position {
        Position {
            seq: self.seq,
            offset: self.offset,
            epoch: self.epoch,
            created_at: self.created_at,
        }
    }

    /// A string field of the metadata object.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key)?.as_str()
    }
}

/// A full-text search over stored messages: every word of `words` must occur in the text (whole
/// words, case-insensitive). Results are ranked best first (ties: newest first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageSearch {
    /// The words, without any query syntax (each backend quotes them its own way).
    pub words: Vec<String>,
    pub channel: Option<Uuid>,
    pub author: Option<String>,
    /// Created at or after, epoch ms.
    pub from_ms: Option<i64>,
    /// Created at or before, epoch ms.
    pub to_ms: Option<i64>,
}

impl MessageSearch {
    /// The words of a free-text query: runs of letters and digits, at most `max` of them.
    pub fn words_of(query: &str, max: usize) -> Vec<String> {
        query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(max)
            .map(str::to_lowercase)
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageUpdate {
    pub content: Option<String>,
    pub raw_message: Option<Value>,
    pub source_type: Option<String>,
    pub in_reply_to: Option<String>,
    pub metadata: Option<Value>,
    pub author_id: Option<String>,
    pub updated_at: i64,
}

/// A replay starting point inside one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Messages with a larger offset in the channel.
    Offset(i64),
    /// Messages created strictly after this epoch-ms time (history paging's `after`).
    Time(i64),
    /// Messages created at or after this epoch-ms time (a resume's `since`: several messages
    /// can share a millisecond, and none of them may be skipped).
    Since(i64),
}

/// What became of one message of a batch given to [`Store::insert_messages`](crate::Store).
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// Stored there.
    New(Position),
    /// Its author already sent a message with the same client key: not stored again; this is
    /// the message stored the first time.
    Repeat(Box<StoredMessage>),
}

/// An agent: its id, its name and its character (ElizaOS character JSON, kept whole).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    pub id: Uuid,
    pub name: String,
    /// Started (answers messages) or stopped.
    pub enabled: bool,
    pub character: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A conversation between one user and one agent over a DM channel (sessions API).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub agent_id: Uuid,
    pub user_id: Uuid,
    pub metadata: Value,
    /// `{timeoutMinutes, autoRenew, maxDurationMinutes, warningThresholdMinutes}`.
    pub timeout_config: Value,
    pub renewal_count: i64,
    pub created_at: i64,
    pub last_activity: i64,
    /// When the timeout last started over.
    pub renewed_at: i64,
}

/// A job of the jobs API.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub user_id: Uuid,
    pub prompt: String,
    /// `pending`, `processing`, `completed`, `failed` or `timeout`.
    pub status: String,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub metadata: Value,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A new message id: a time-ordered UUID (version 7). Clients treat ids as opaque UUIDs, as
/// ElizaOS's v4 ids; being time-ordered, new ids land at the end of the id index instead of on a
/// random page of it, which keeps each commit's page writes few (see BENCHMARKS.md).
pub fn new_message_id() -> Uuid {
    Uuid::now_v7()
}
