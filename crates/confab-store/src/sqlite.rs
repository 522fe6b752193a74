//! The embedded default: one SQLite file in WAL mode.
//!
//! Writes of messages come from one caller at a time (the hub's sequencer), so sequence numbers
//! are assigned here, under a lock, from the last one committed.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::*;

/// How the SQLite file is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `synchronous=FULL` (fsync at every commit, survives power loss) rather than `NORMAL`
    /// (survives a killed process, may lose the last commits on power loss).
    pub fsync_every_commit: bool,
    pub max_connections: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            fsync_every_commit: true,
            max_connections: 4,
        }
    }
}

pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    /// The connection every message append goes through, held for the whole of an append.
    /// One connection keeps its page cache: appends spread over the pool would find their
    /// cache invalidated by the previous append on another connection and re-read the pages.
    writer: Mutex<Writer>,
    /// The last sequence number committed, readable without waiting for an append.
    committed_seq: std::sync::atomic::AtomicI64,
}

struct Writer {
    conn: SqliteConnection,
    last_seq: i64,
}

/// Column lists as literals, so every query stays a `&'static str` for sqlx.
macro_rules! message_columns {
    () => {
        "seq, id, channel_id, author_id, content, raw_message, in_reply_to_root_message_id, \
         source_type, source_id, metadata, created_at, updated_at"
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
/// Rows per multi-row INSERT (12 bound values each, well under SQLite's variable limit).
const INSERT_CHUNK: usize = 200;

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(path: &Path, options: SqliteOptions) -> StoreResult<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let connect = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.fsync_every_commit {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .foreign_keys(true)
            // A checkpoint runs inside the commit that crosses the threshold and stalls every
            // message queued behind it, so it is kept short: 512 pages (2 MiB). Smaller (128)
            // costs more CPU per message (pages rewritten by every checkpoint, one fsync of the
            // database each time); SQLite's default (1000) makes the stalls longer.
            .pragma("wal_autocheckpoint", "512")
            // A group commit is one multi-row INSERT, which keeps a statement journal (to undo
            // the statement alone); in memory, not in a temporary file per statement.
            .pragma("temp_store", "MEMORY")
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        // Each batch size is its own statement text; a prepared multi-row INSERT is large
        // (hundreds of KiB at a few hundred rows), so the writer keeps fewer of them than
        // sqlx's default 100.
        let writer =
            SqliteConnection::connect_with(&connect.clone().statement_cache_capacity(24)).await?;
        let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM central_messages")
            .fetch_one(&pool)
            .await?;
        Ok(SqliteStore {
            pool,
            path: path.to_owned(),
            writer: Mutex::new(Writer {
                conn: writer,
                last_seq: last,
            }),
            committed_seq: std::sync::atomic::AtomicI64::new(last),
        })
    }
}

fn json_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().and_then(|v| serde_json::to_string(v).ok())
}

fn json_col(row: &SqliteRow, col: &str) -> Option<Value> {
    row.get::<Option<String>, _>(col)
        .and_then(|s| serde_json::from_str(&s).ok())
}

fn uuid_col(row: &SqliteRow, col: &str) -> Uuid {
    let s: String = row.get(col);
    Uuid::parse_str(&s).unwrap_or_default()
}

fn message_from_row(row: &SqliteRow) -> StoredMessage {
    StoredMessage {
        seq: row.get("seq"),
        id: uuid_col(row, "id"),
        channel_id: uuid_col(row, "channel_id"),
        author_id: row.get("author_id"),
        content: row.get("content"),
        raw_message: json_col(row, "raw_message"),
        in_reply_to: row.get("in_reply_to_root_message_id"),
        source_type: row.get("source_type"),
        source_id: row.get("source_id"),
        metadata: json_col(row, "metadata"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn channel_from_row(row: &SqliteRow) -> Channel {
    Channel {
        id: uuid_col(row, "id"),
        message_server_id: uuid_col(row, "message_server_id"),
        name: row.get("name"),
        kind: row.get("type"),
        source_type: row.get("source_type"),
        source_id: row.get("source_id"),
        topic: row.get("topic"),
        metadata: json_col(row, "metadata"),
        alias: row.get("alias"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn server_from_row(row: &SqliteRow) -> MessageServer {
    MessageServer {
        id: uuid_col(row, "id"),
        name: row.get("name"),
        source_type: row.get("source_type"),
        source_id: row.get("source_id"),
        metadata: json_col(row, "metadata"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    /// A real commit: rewrites the database header's `user_version` with its own value, which
    /// appends a frame to the WAL. Reads work on a full disk; this does not.
    async fn probe(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *conn)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {version}"
        )))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn ensure_server(&self, s: &MessageServer) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO message_servers (id, name, source_type, source_id, metadata, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
        )
        .bind(s.id.to_string())
        .bind(&s.name)
        .bind(&s.source_type)
        .bind(&s.source_id)
        .bind(json_text(&s.metadata))
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_servers(&self) -> StoreResult<Vec<MessageServer>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            server_columns!(),
            " FROM message_servers ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(server_from_row).collect())
    }

    async fn get_server(&self, id: Uuid) -> StoreResult<Option<MessageServer>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            server_columns!(),
            " FROM message_servers WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(server_from_row))
    }

    async fn server_agents(&self, server: Uuid) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT agent_id FROM message_server_agents WHERE message_server_id = ? ORDER BY agent_id",
        )
        .bind(server.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }

    async fn add_server_agent(&self, server: Uuid, agent: Uuid) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO message_server_agents (message_server_id, agent_id) VALUES (?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(server.to_string())
        .bind(agent.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_server_agent(&self, server: Uuid, agent: Uuid) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM message_server_agents WHERE message_server_id = ? AND agent_id = ?",
        )
        .bind(server.to_string())
        .bind(agent.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn agent_servers(&self, agent: Uuid) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT message_server_id FROM message_server_agents WHERE agent_id = ? ORDER BY message_server_id",
        )
        .bind(agent.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }

    async fn create_channel(&self, c: &Channel, participants: &[String]) -> StoreResult<Channel> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO channels (id, message_server_id, name, type, source_type, source_id, topic, metadata, alias, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
        )
        .bind(c.id.to_string())
        .bind(c.message_server_id.to_string())
        .bind(&c.name)
        .bind(&c.kind)
        .bind(&c.source_type)
        .bind(&c.source_id)
        .bind(&c.topic)
        .bind(json_text(&c.metadata))
        .bind(&c.alias)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            for p in participants {
                sqlx::query(
                    "INSERT INTO channel_participants (channel_id, entity_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(c.id.to_string())
                .bind(p)
                .execute(&mut *tx)
                .await?;
            }
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            channel_columns!(),
            " FROM channels WHERE id = ?"
        ))
        .bind(c.id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(channel_from_row(&row))
    }

    async fn get_channel(&self, id: Uuid) -> StoreResult<Option<Channel>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            channel_columns!(),
            " FROM channels WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(channel_from_row))
    }

    async fn list_channels(&self, server: Uuid) -> StoreResult<Vec<Channel>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            channel_columns!(),
            " FROM channels WHERE message_server_id = ? ORDER BY created_at, id"
        ))
        .bind(server.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(channel_from_row).collect())
    }

    async fn find_channel_by_name(
        &self,
        server: Uuid,
        kind: &str,
        name: &str,
    ) -> StoreResult<Option<Channel>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            channel_columns!(),
            " FROM channels WHERE message_server_id = ? AND type = ? AND name = ? \
             ORDER BY created_at LIMIT 1"
        ))
        .bind(server.to_string())
        .bind(kind)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(channel_from_row))
    }

    async fn update_channel(&self, id: Uuid, u: &ChannelUpdate) -> StoreResult<Option<Channel>> {
        let mut tx = self.pool.begin().await?;
        let now = confab_protocol::now_ms();
        let changed = sqlx::query(
            "UPDATE channels SET name = COALESCE(?, name), topic = COALESCE(?, topic), \
             metadata = COALESCE(?, metadata), updated_at = ? WHERE id = ?",
        )
        .bind(&u.name)
        .bind(&u.topic)
        .bind(json_text(&u.metadata))
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        if let Some(participants) = &u.participants {
            sqlx::query("DELETE FROM channel_participants WHERE channel_id = ?")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            for p in participants {
                sqlx::query(
                    "INSERT INTO channel_participants (channel_id, entity_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(id.to_string())
                .bind(p)
                .execute(&mut *tx)
                .await?;
            }
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            channel_columns!(),
            " FROM channels WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(channel_from_row(&row)))
    }

    async fn delete_server(&self, id: Uuid) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM message_servers WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn delete_channel(&self, id: Uuid) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM channels WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn participants(&self, channel: Uuid) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT entity_id FROM channel_participants WHERE channel_id = ? ORDER BY rowid",
        )
        .bind(channel.to_string())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn add_participants(&self, channel: Uuid, entities: &[String]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for e in entities {
            sqlx::query(
                "INSERT INTO channel_participants (channel_id, entity_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(channel.to_string())
            .bind(e)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_participant(&self, channel: Uuid, entity: &str) -> StoreResult<bool> {
        let n =
            sqlx::query("DELETE FROM channel_participants WHERE channel_id = ? AND entity_id = ?")
                .bind(channel.to_string())
                .bind(entity)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n > 0)
    }

    async fn insert_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<Appended>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let started = std::time::Instant::now();
        let mut writer = self.writer.lock().await;
        // Every append goes through this writer, so what the lookup finds cannot change before
        // the insert below: repeats are settled first and never reach the INSERT.
        let keys = repeats::keys(batch);
        let mut existing = Vec::new();
        for chunk in keys.chunks(INSERT_CHUNK) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(concat!(
                "SELECT ",
                message_columns!(),
                ", client_key FROM central_messages WHERE client_key IS NOT NULL AND "
            ));
            repeats::push_key_filter(&mut q, chunk);
            for row in q.build().fetch_all(&mut writer.conn).await? {
                existing.push((message_from_row(&row), row.get::<String, _>("client_key")));
            }
        }
        let plan = repeats::plan(batch, existing);
        let first_seq = writer.last_seq + 1;
        let fresh: Vec<&NewMessage> = plan.fresh.iter().map(|&i| &batch[i]).collect();
        if !fresh.is_empty() {
            // The whole transaction is one statement list, run by sqlx's connection thread in
            // one go: `begin()`, `execute()` and `commit()` would be three round trips to that
            // thread, each a pair of thread switches, and on a busy core those switches cost
            // more than the commit itself.
            let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new("BEGIN IMMEDIATE;");
            for (chunk_index, chunk) in fresh.chunks(INSERT_CHUNK).enumerate() {
                let base = first_seq + (chunk_index * INSERT_CHUNK) as i64;
                sql.push(concat!(
                    " INSERT INTO central_messages (",
                    message_columns!(),
                    ", client_key) "
                ));
                sql.push_values(chunk.iter().enumerate(), |mut row, (i, m)| {
                    row.push_bind(base + i as i64)
                        .push_bind(m.id.to_string())
                        .push_bind(m.channel_id.to_string())
                        .push_bind(&m.author_id)
                        .push_bind(&m.content)
                        .push_bind(json_text(&m.raw_message))
                        .push_bind(&m.in_reply_to)
                        .push_bind(&m.source_type)
                        .push_bind(&m.source_id)
                        .push_bind(json_text(&m.metadata))
                        .push_bind(m.created_at)
                        .push_bind(m.created_at)
                        .push_bind(&m.client_key);
                });
                sql.push(";");
            }
            sql.push(" COMMIT;");
            if let Err(e) = sql.build().execute(&mut writer.conn).await {
                // A statement failed before COMMIT (or COMMIT itself): nothing of the batch may
                // stay. "No transaction is active" when SQLite has already rolled back is fine.
                let _ = sqlx::query("ROLLBACK").execute(&mut writer.conn).await;
                return Err(e.into());
            }
            writer.last_seq += fresh.len() as i64;
            self.committed_seq
                .store(writer.last_seq, std::sync::atomic::Ordering::Release);
        }
        // Names documented in confab-server's metrics module.
        metrics::histogram!("confab_store_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("confab_store_batch_size").record(batch.len() as f64);
        Ok(plan.outcomes(batch, first_seq))
    }

    async fn expire_client_keys(&self, before_ms: i64, limit: u32) -> StoreResult<u64> {
        let n = sqlx::query(
            "UPDATE central_messages SET client_key = NULL WHERE seq IN (SELECT seq FROM \
             central_messages WHERE client_key IS NOT NULL AND created_at < ? LIMIT ?)",
        )
        .bind(before_ms)
        .bind(limit as i64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn search_messages(
        &self,
        search: &MessageSearch,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<StoredMessage>> {
        if search.words.is_empty() {
            return Ok(Vec::new());
        }
        // Each word as an FTS5 string ("…", quotes doubled): no query syntax gets through.
        let query = search
            .words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ");
        let rows = sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM (SELECT rowid AS hit, bm25(central_messages_fts) AS rank FROM central_messages_fts \
             WHERE central_messages_fts MATCH ?) AS f JOIN central_messages ON seq = f.hit \
             WHERE (? IS NULL OR channel_id = ?) AND (? IS NULL OR author_id = ?) \
             AND created_at >= ? AND created_at <= ? \
             ORDER BY f.rank, created_at DESC, seq DESC LIMIT ? OFFSET ?"
        ))
        .bind(query)
        .bind(search.channel.map(|c| c.to_string()))
        .bind(search.channel.map(|c| c.to_string()))
        .bind(&search.author)
        .bind(&search.author)
        .bind(search.from_ms.unwrap_or(i64::MIN))
        .bind(search.to_ms.unwrap_or(i64::MAX))
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(message_from_row).collect())
    }

    async fn get_message(&self, id: Uuid) -> StoreResult<Option<StoredMessage>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM central_messages WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(message_from_row))
    }

    async fn update_message(
        &self,
        id: Uuid,
        u: &MessageUpdate,
    ) -> StoreResult<Option<StoredMessage>> {
        let n = sqlx::query(
            "UPDATE central_messages SET content = COALESCE(?, content), raw_message = COALESCE(?, raw_message), \
             source_type = COALESCE(?, source_type), in_reply_to_root_message_id = COALESCE(?, in_reply_to_root_message_id), \
             metadata = COALESCE(?, metadata), author_id = COALESCE(?, author_id), updated_at = ? WHERE id = ?",
        )
        .bind(&u.content)
        .bind(json_text(&u.raw_message))
        .bind(&u.source_type)
        .bind(&u.in_reply_to)
        .bind(json_text(&u.metadata))
        .bind(&u.author_id)
        .bind(u.updated_at)
        .bind(id.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        self.get_message(id).await
    }

    async fn recent_messages(
        &self,
        channel: Uuid,
        limit: u32,
        before_ms: Option<i64>,
    ) -> StoreResult<Vec<StoredMessage>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM central_messages WHERE channel_id = ? AND created_at < ? \
             ORDER BY created_at DESC, seq DESC LIMIT ?"
        ))
        .bind(channel.to_string())
        .bind(before_ms.unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(message_from_row).collect())
    }

    async fn messages_after(
        &self,
        channel: Uuid,
        after: Cursor,
        upto_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredMessage>> {
        // Both read `central_messages_by_channel_time` backwards: (created_at, seq) order is seq
        // order (see migration 0005). A seq cursor starts at the creation time of the nearest
        // message at or before it, found by rowid.
        let (sql, value) = match after {
            Cursor::Seq(s) => (
                concat!(
                    "SELECT * FROM (SELECT ",
                    message_columns!(),
                    " FROM central_messages \
                    WHERE channel_id = ?1 AND created_at >= COALESCE((SELECT created_at FROM central_messages \
                    WHERE seq <= ?2 ORDER BY seq DESC LIMIT 1), 0) AND seq > ?2 AND seq <= ?3 \
                    ORDER BY created_at DESC, seq DESC LIMIT ?4) ORDER BY seq"
                ),
                s,
            ),
            Cursor::Time(t) => (
                concat!(
                    "SELECT * FROM (SELECT ",
                    message_columns!(),
                    " FROM central_messages \
                    WHERE channel_id = ?1 AND created_at > ?2 AND seq <= ?3 \
                    ORDER BY created_at DESC, seq DESC LIMIT ?4) ORDER BY seq"
                ),
                t,
            ),
            Cursor::Since(t) => (
                concat!(
                    "SELECT * FROM (SELECT ",
                    message_columns!(),
                    " FROM central_messages \
                    WHERE channel_id = ?1 AND created_at >= ?2 AND seq <= ?3 \
                    ORDER BY created_at DESC, seq DESC LIMIT ?4) ORDER BY seq"
                ),
                t,
            ),
        };
        let rows = sqlx::query(sql)
            .bind(channel.to_string())
            .bind(value)
            .bind(upto_seq)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(message_from_row).collect())
    }

    async fn delete_message(&self, channel: Uuid, id: Uuid) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM central_messages WHERE channel_id = ? AND id = ?")
            .bind(channel.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn clear_channel(&self, channel: Uuid) -> StoreResult<u64> {
        Ok(
            sqlx::query("DELETE FROM central_messages WHERE channel_id = ?")
                .bind(channel.to_string())
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn last_seq(&self) -> StoreResult<i64> {
        Ok(self
            .committed_seq
            .load(std::sync::atomic::Ordering::Acquire))
    }

    async fn messages_in_seq_range(&self, from: i64, to: i64) -> StoreResult<Vec<StoredMessage>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM central_messages WHERE seq >= ? AND seq <= ? ORDER BY seq"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(message_from_row).collect())
    }

    async fn find_reply(&self, to: Uuid, author: &str) -> StoreResult<Option<StoredMessage>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM central_messages WHERE in_reply_to_root_message_id = ? AND author_id = ? \
             ORDER BY seq LIMIT 1"
        ))
        .bind(to.to_string())
        .bind(author)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(message_from_row))
    }

    async fn put_agent(&self, agent: &AgentRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO agents (id, name, enabled, character, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, enabled = excluded.enabled, \
             character = excluded.character, updated_at = excluded.updated_at",
        )
        .bind(agent.id.to_string())
        .bind(&agent.name)
        .bind(agent.enabled)
        .bind(agent.character.to_string())
        .bind(agent.created_at)
        .bind(agent.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_agent(&self, id: Uuid) -> StoreResult<Option<AgentRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(agent_from_row))
    }

    async fn list_agents(&self) -> StoreResult<Vec<AgentRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents ORDER BY created_at, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(agent_from_row).collect())
    }

    async fn delete_agent(&self, id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM agents WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn put_session(&self, session: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, channel_id, agent_id, user_id, metadata, timeout_config, \
             renewal_count, created_at, last_activity, renewed_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET metadata = excluded.metadata, \
             timeout_config = excluded.timeout_config, renewal_count = excluded.renewal_count, \
             last_activity = excluded.last_activity, renewed_at = excluded.renewed_at",
        )
        .bind(session.id.to_string())
        .bind(session.channel_id.to_string())
        .bind(session.agent_id.to_string())
        .bind(session.user_id.to_string())
        .bind(session.metadata.to_string())
        .bind(session.timeout_config.to_string())
        .bind(session.renewal_count)
        .bind(session.created_at)
        .bind(session.last_activity)
        .bind(session.renewed_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_session(&self, id: Uuid) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(session_from_row))
    }

    async fn list_sessions(&self) -> StoreResult<Vec<SessionRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions ORDER BY created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(session_from_row).collect())
    }

    async fn delete_session(&self, id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
    async fn put_job(&self, job: &JobRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO jobs (id, agent_id, user_id, prompt, status, result, error, metadata, \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, result = excluded.result, \
             error = excluded.error",
        )
        .bind(job.id.to_string())
        .bind(job.agent_id.to_string())
        .bind(job.user_id.to_string())
        .bind(&job.prompt)
        .bind(&job.status)
        .bind(json_text(&job.result))
        .bind(&job.error)
        .bind(job.metadata.to_string())
        .bind(job.created_at)
        .bind(job.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_job(&self, id: Uuid) -> StoreResult<Option<JobRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(job_from_row))
    }

    async fn list_jobs(&self) -> StoreResult<Vec<JobRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(job_from_row).collect())
    }

    async fn trim_jobs(&self, keep: u32) -> StoreResult<u64> {
        Ok(sqlx::query(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs ORDER BY created_at DESC, id \
             LIMIT -1 OFFSET ?)",
        )
        .bind(keep as i64)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn set_channel_private(&self, channel: Uuid, private: bool) -> StoreResult<()> {
        let sql = if private {
            "INSERT OR IGNORE INTO private_channels (channel_id) VALUES (?)"
        } else {
            "DELETE FROM private_channels WHERE channel_id = ?"
        };
        sqlx::query(sql)
            .bind(channel.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn private_channels(&self) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT channel_id FROM private_channels")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }
}

fn job_from_row(row: &SqliteRow) -> JobRecord {
    JobRecord {
        id: uuid_col(row, "id"),
        agent_id: uuid_col(row, "agent_id"),
        user_id: uuid_col(row, "user_id"),
        prompt: row.get("prompt"),
        status: row.get("status"),
        result: json_col(row, "result"),
        error: row.get("error"),
        metadata: json_col(row, "metadata").unwrap_or(Value::Null),
        created_at: row.get("created_at"),
        expires_at: row.get("expires_at"),
    }
}

fn agent_from_row(row: &SqliteRow) -> AgentRecord {
    AgentRecord {
        id: uuid_col(row, "id"),
        name: row.get("name"),
        enabled: row.get("enabled"),
        character: json_col(row, "character").unwrap_or(Value::Null),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn session_from_row(row: &SqliteRow) -> SessionRecord {
    SessionRecord {
        id: uuid_col(row, "id"),
        channel_id: uuid_col(row, "channel_id"),
        agent_id: uuid_col(row, "agent_id"),
        user_id: uuid_col(row, "user_id"),
        metadata: json_col(row, "metadata").unwrap_or(Value::Null),
        timeout_config: json_col(row, "timeout_config").unwrap_or(Value::Null),
        renewal_count: row.get("renewal_count"),
        created_at: row.get("created_at"),
        last_activity: row.get("last_activity"),
        renewed_at: row.get("renewed_at"),
    }
}
