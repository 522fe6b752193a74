//! Durable storage for confab.
//!
//! [`Store`] is the whole persistence contract the hub relies on, shaped after ElizaOS's central
//! messaging tables (message servers, channels, participants, central messages). [`SqliteStore`]
//! is the embedded default; a PostgreSQL implementation fills the same trait.
//!
//! Each channel has its own order: a message's offset in its channel (1, 2, 3, ... in commit
//! order) and the channel's epoch (which changes when its history is cleared). That is the order
//! every member of the channel sees, history is listed in, and replay resumes from. Offsets are
//! assigned at commit under a lock of the channel alone, so appends to different channels never
//! wait for each other. Messages also carry a row id (`seq`), unique in the store.
//!
//! [`sql`] is the SQL both backends share; `sqlite.rs` and `postgres.rs` hold what differs.

pub mod breaker;
mod guard;
pub mod media;
mod model;
mod offsets;
mod postgres;
mod repeats;
mod sql;
mod sqlite;

pub use guard::{GuardConfig, GuardedStore, StorageStatus, StoreHealth};
pub use model::*;
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{SqliteOptions, SqliteStore};

use async_trait::async_trait;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Backend(String),
    /// The database itself cannot be used: unreachable, timed out, out of disk, I/O error.
    /// Unlike the other errors it says nothing about the request, and retrying the request
    /// piece by piece cannot help.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the dependency failed (rather than this one request).
    pub fn is_dependency(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if dependency_failure(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Backend(e.to_string())
        }
    }
}

/// Sorts sqlx errors: the connection, the pool, the disk or the server failed (true), or this
/// statement did (false: a constraint, a missing row, a bad value).
fn dependency_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
            db.code().is_some_and(|code| dependency_code(&code, sqlite))
        }
        _ => false,
    }
}

/// SQLite reports its extended result code as a number; PostgreSQL a five-character SQLSTATE.
fn dependency_code(code: &str, sqlite: bool) -> bool {
    if sqlite {
        // SQLite primary codes: BUSY (after the busy timeout), NOMEM, READONLY, IOERR, CORRUPT,
        // FULL, CANTOPEN, PROTOCOL, NOTADB.
        code.parse::<i32>().is_ok_and(|extended| {
            matches!(extended & 0xff, 5 | 7 | 8 | 10 | 11 | 13 | 14 | 15 | 26)
        })
    } else {
        // PostgreSQL: connection exception (08), insufficient resources such as disk_full (53),
        // operator intervention such as admin_shutdown (57P), system error such as io_error
        // (58), internal error (XX), a read-only server (25006, a standby after failover), and
        // a lock that another session holds past `lock_timeout` (55P03).
        ["08", "53", "57P", "58", "XX"]
            .iter()
            .any(|class| code.starts_with(class))
            || code == "25006"
            || code == "55P03"
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything confab persists.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and health output (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
    /// Where the data lives, for the startup banner.
    fn location(&self) -> String;

    /// A cheap read that needs the database to answer (health checks).
    async fn ping(&self) -> StoreResult<()> {
        self.list_servers().await.map(drop)
    }
    /// Whether a write could commit now: the circuit breaker's recovery probe. A backend whose
    /// reads can work while writes cannot (a full disk) makes this a real write.
    async fn probe(&self) -> StoreResult<()> {
        self.ping().await
    }

    // ---- message servers -------------------------------------------------------------------
    async fn ensure_server(&self, server: &MessageServer) -> StoreResult<()>;
    async fn list_servers(&self) -> StoreResult<Vec<MessageServer>>;
    async fn get_server(&self, id: Uuid) -> StoreResult<Option<MessageServer>>;
    async fn server_agents(&self, server: Uuid) -> StoreResult<Vec<Uuid>>;
    async fn add_server_agent(&self, server: Uuid, agent: Uuid) -> StoreResult<()>;
    async fn remove_server_agent(&self, server: Uuid, agent: Uuid) -> StoreResult<()>;
    async fn agent_servers(&self, agent: Uuid) -> StoreResult<Vec<Uuid>>;
    /// Deletes a message server with its channels, their participants and messages (the
    /// foreign keys cascade); false if there was no such server.
    async fn delete_server(&self, id: Uuid) -> StoreResult<bool>;

    // ---- channels --------------------------------------------------------------------------
    /// Inserts the channel and its participants unless a channel with that id exists; returns
    /// the stored channel either way.
    async fn create_channel(
        &self,
        channel: &Channel,
        participants: &[String],
    ) -> StoreResult<Channel>;
    async fn get_channel(&self, id: Uuid) -> StoreResult<Option<Channel>>;
    async fn list_channels(&self, server: Uuid) -> StoreResult<Vec<Channel>>;
    async fn find_channel_by_name(
        &self,
        server: Uuid,
        kind: &str,
        name: &str,
    ) -> StoreResult<Option<Channel>>;
    async fn update_channel(
        &self,
        id: Uuid,
        update: &ChannelUpdate,
    ) -> StoreResult<Option<Channel>>;
    /// Deletes the channel with its messages and participants; false if there was none.
    async fn delete_channel(&self, id: Uuid) -> StoreResult<bool>;
    async fn participants(&self, channel: Uuid) -> StoreResult<Vec<String>>;
    async fn add_participants(&self, channel: Uuid, entities: &[String]) -> StoreResult<()>;
    /// False if the entity was not a participant.
    async fn remove_participant(&self, channel: Uuid, entity: &str) -> StoreResult<bool>;

    // ---- messages --------------------------------------------------------------------------
    /// Commits the whole batch in one transaction, assigning each channel's offsets in batch
    /// order without gaps and stamping the commit time (never earlier than the channel's last
    /// message's, nor than the message's own `created_at`), and returns each message's outcome;
    /// on error nothing of the batch is stored. A message whose `(author_id, client_key)` was stored before (on any node, before
    /// any restart), or earlier in the same batch, is a repeat: not stored, and its outcome is
    /// the original message.
    async fn insert_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<Appended>>;
    /// [`insert_messages`](Store::insert_messages), returning the stored messages (for a
    /// repeat, the original).
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<StoredMessage>> {
        let outcomes = self.insert_messages(batch).await?;
        Ok(batch
            .iter()
            .zip(outcomes)
            .map(|(m, outcome)| match outcome {
                Appended::New(at) => StoredMessage::from_new(m.clone(), at),
                Appended::Repeat(original) => *original,
            })
            .collect())
    }
    /// Forgets the client keys of messages created before `before_ms` (they no longer make a
    /// resend a repeat); returns how many. Bounded work per call: the caller repeats it while
    /// it returns a full `limit`.
    async fn expire_client_keys(&self, before_ms: i64, limit: u32) -> StoreResult<u64>;
    async fn get_message(&self, id: Uuid) -> StoreResult<Option<StoredMessage>>;
    async fn update_message(
        &self,
        id: Uuid,
        update: &MessageUpdate,
    ) -> StoreResult<Option<StoredMessage>>;
    /// Full-text search, ranked best first; one page of `limit` hits after skipping `offset`.
    /// An empty `words` finds nothing.
    async fn search_messages(
        &self,
        search: &MessageSearch,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<StoredMessage>>;
    /// Newest first (offset order, backwards), optionally only those created strictly before
    /// `before_ms`.
    async fn recent_messages(
        &self,
        channel: Uuid,
        limit: u32,
        before_ms: Option<i64>,
    ) -> StoreResult<Vec<StoredMessage>>;
    /// The newest `limit` messages after the cursor and at or below offset `upto`, oldest
    /// first.
    async fn messages_after(
        &self,
        channel: Uuid,
        after: Cursor,
        upto: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredMessage>>;
    /// False if there was no such message in that channel.
    async fn delete_message(&self, channel: Uuid, id: Uuid) -> StoreResult<bool>;
    /// Deletes every message of the channel and starts its next epoch (offsets go on from
    /// where they were); returns how many.
    async fn clear_channel(&self, channel: Uuid) -> StoreResult<u64>;
    /// The highest row id stored so far (0 for an empty store): it stops moving once nothing
    /// is being appended (how shutdown knows the hub drained).
    async fn last_seq(&self) -> StoreResult<i64>;
    /// Where the channel's sequence stands (`None`: no such channel).
    async fn channel_position(&self, channel: Uuid) -> StoreResult<Option<ChannelPosition>>;
    /// The channel's messages with `after < offset <= upto`, in offset order (how a cluster node
    /// fills a gap in what other nodes told it about one channel).
    async fn messages_in_offset_range(
        &self,
        channel: Uuid,
        after: i64,
        upto: i64,
    ) -> StoreResult<Vec<StoredMessage>>;
    /// The reply `author` gave to message `to`, if any.
    async fn find_reply(&self, to: Uuid, author: &str) -> StoreResult<Option<StoredMessage>>;

    // ---- agents ----------------------------------------------------------------------------
    /// Inserts or replaces the agent.
    async fn put_agent(&self, agent: &AgentRecord) -> StoreResult<()>;
    async fn get_agent(&self, id: Uuid) -> StoreResult<Option<AgentRecord>>;
    async fn list_agents(&self) -> StoreResult<Vec<AgentRecord>>;
    /// False if there was no such agent.
    async fn delete_agent(&self, id: Uuid) -> StoreResult<bool>;

    // ---- sessions --------------------------------------------------------------------------
    /// Inserts or replaces the session.
    async fn put_session(&self, session: &SessionRecord) -> StoreResult<()>;
    async fn get_session(&self, id: Uuid) -> StoreResult<Option<SessionRecord>>;
    async fn list_sessions(&self) -> StoreResult<Vec<SessionRecord>>;
    /// False if there was no such session.
    async fn delete_session(&self, id: Uuid) -> StoreResult<bool>;

    // ---- jobs ------------------------------------------------------------------------------
    /// Inserts or replaces the job.
    async fn put_job(&self, job: &JobRecord) -> StoreResult<()>;
    async fn get_job(&self, id: Uuid) -> StoreResult<Option<JobRecord>>;
    /// Newest first.
    async fn list_jobs(&self) -> StoreResult<Vec<JobRecord>>;
    /// Deletes the oldest jobs beyond the newest `keep`; returns how many.
    async fn trim_jobs(&self, keep: u32) -> StoreResult<u64>;

    // ---- private channels (confab extension) -----------------------------------------------
    /// Marks a channel private (only participants may use it) or public again.
    async fn set_channel_private(&self, channel: Uuid, private: bool) -> StoreResult<()>;
    /// Every private channel.
    async fn private_channels(&self) -> StoreResult<Vec<Uuid>>;
}

#[cfg(test)]
mod classify_tests {
    fn sqlite(code: &str) -> bool {
        super::dependency_code(code, true)
    }
    fn postgres(code: &str) -> bool {
        super::dependency_code(code, false)
    }

    #[test]
    fn sqlite_codes() {
        assert!(sqlite("13"), "SQLITE_FULL");
        assert!(sqlite("3338"), "SQLITE_IOERR_FSYNC (10 | 13<<8)");
        assert!(sqlite("14"), "SQLITE_CANTOPEN");
        assert!(!sqlite("2067"), "SQLITE_CONSTRAINT_UNIQUE");
        assert!(!sqlite("787"), "SQLITE_CONSTRAINT_FOREIGNKEY");
        assert!(!sqlite("1"), "SQLITE_ERROR (bad SQL)");
    }

    #[test]
    fn postgres_codes() {
        assert!(postgres("08006"), "connection_failure");
        assert!(postgres("53100"), "disk_full");
        assert!(postgres("57P01"), "admin_shutdown");
        assert!(postgres("58030"), "io_error");
        assert!(postgres("25006"), "read_only_sql_transaction");
        assert!(postgres("55P03"), "lock_not_available (lock_timeout)");
        assert!(!postgres("23505"), "unique_violation");
        assert!(!postgres("23503"), "foreign_key_violation");
        assert!(!postgres("40001"), "serialization_failure");
        assert!(!postgres("57014"), "query_canceled");
    }
}
