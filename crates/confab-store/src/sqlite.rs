//! The embedded default: one SQLite file in WAL mode.
//!
//! Writes of messages come from one caller at a time (the hub's sequencer) through one writer
//! connection, so row ids and channel offsets are assigned here, under that writer's lock, from
//! the last ones committed. The queries both backends share live in [`crate::sql`].

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::sql::*;
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

/// Rows per multi-row INSERT (15 bound values each, well under SQLite's variable limit).
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
        let rows = sqlx::query_as::<_, ServerRow>(concat!(
            "SELECT ",
            server_columns!(),
            " FROM message_servers ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn get_server(&self, id: Uuid) -> StoreResult<Option<MessageServer>> {
        let row = sqlx::query_as::<_, ServerRow>(concat!(
            "SELECT ",
            server_columns!(),
            " FROM message_servers WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
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
            "INSERT INTO channels (id, message_server_id, name, type, source_type, source_id, topic, metadata, alias, created_at, updated_at, epoch) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
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
        // A new epoch: a channel created again under a deleted one's id starts afresh.
        .bind(confab_protocol::now_ms())
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
        let row = sqlx::query_as::<_, ChannelRow>(concat!(
            "SELECT ",
            channel_columns!(),
            " FROM channels WHERE id = ?"
        ))
        .bind(c.id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    async fn get_channel(&self, id: Uuid) -> StoreResult<Option<Channel>> {
        let row = sqlx::query_as::<_, ChannelRow>(concat!(
            "SELECT ",
            channel_columns!(),
            " FROM channels WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn list_channels(&self, server: Uuid) -> StoreResult<Vec<Channel>> {
        let rows = sqlx::query_as::<_, ChannelRow>(concat!(
            "SELECT ",
            channel_columns!(),
            " FROM channels WHERE message_server_id = ? ORDER BY created_at, id"
        ))
        .bind(server.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn find_channel_by_name(
        &self,
        server: Uuid,
        kind: &str,
        name: &str,
    ) -> StoreResult<Option<Channel>> {
        let row = sqlx::query_as::<_, ChannelRow>(concat!(
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
        Ok(row.map(Into::into))
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
        let row = sqlx::query_as::<_, ChannelRow>(concat!(
            "SELECT ",
            channel_columns!(),
            " FROM channels WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(row.into()))
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
        // Every append (and every clear, which moves a channel's epoch) goes through this
        // writer, so what the lookups find cannot change before the insert below: repeats are
        // settled first and never reach the INSERT, and the channels' offsets are the last ones.
        let keys = repeats::keys(batch);
        let mut existing = Vec::new();
        for chunk in keys.chunks(INSERT_CHUNK) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(concat!(
                "SELECT ",
                message_columns!(),
                ", client_key FROM central_messages WHERE client_key IS NOT NULL AND "
            ));
            repeats::push_key_filter(&mut q, chunk);
            let found: Vec<KeyedMessageRow> =
                q.build_query_as().fetch_all(&mut writer.conn).await?;
            existing.extend(found.into_iter().map(Into::into));
        }
        let plan = repeats::plan(batch, existing);
        let fresh = plan.fresh(batch);
        let first_seq = writer.last_seq + 1;
        let mut states = Vec::new();
        for chunk in offsets::channels_of(fresh.iter().copied()).chunks(INSERT_CHUNK) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT id, epoch, last_offset, last_created_at FROM channels WHERE id IN ",
            );
            q.push_tuples(chunk, |mut t, id| {
                t.push_bind(id.to_string());
            });
            let found: Vec<ChannelSeqIdRow> =
                q.build_query_as().fetch_all(&mut writer.conn).await?;
            states.extend(found.into_iter().map(|r| (r.channel(), r.seq)));
        }
        let assigned = offsets::assign(&fresh, |i| first_seq + i as i64, states)?;
        if !fresh.is_empty() {
            // The whole transaction is one statement list, run by sqlx's connection thread in
            // one go: `begin()`, `execute()` and `commit()` would be three round trips to that
            // thread, each a pair of thread switches, and on a busy core those switches cost
            // more than the commit itself.
            let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new("BEGIN IMMEDIATE;");
            for (id, state) in &assigned.channels {
                sql.push(" UPDATE channels SET last_offset = ")
                    .push_bind(state.last_offset)
                    .push(", last_created_at = ")
                    .push_bind(state.last_created_at)
                    .push(" WHERE id = ")
                    .push_bind(id.to_string())
                    .push(";");
            }
            let rows: Vec<(&NewMessage, &Position)> =
                fresh.iter().copied().zip(&assigned.positions).collect();
            for chunk in rows.chunks(INSERT_CHUNK) {
                sql.push(concat!(
                    " INSERT INTO central_messages (",
                    message_columns!(),
                    ", client_key) "
                ));
                sql.push_values(chunk, |mut row, (m, at)| {
                    row.push_bind(at.seq)
                        .push_bind(at.offset)
                        .push_bind(at.epoch)
                        .push_bind(m.id.to_string())
                        .push_bind(m.channel_id.to_string())
                        .push_bind(&m.author_id)
                        .push_bind(&m.content)
                        .push_bind(json_text(&m.raw_message))
                        .push_bind(&m.in_reply_to)
                        .push_bind(&m.source_type)
                        .push_bind(&m.source_id)
                        .push_bind(json_text(&m.metadata))
                        .push_bind(at.created_at)
                        .push_bind(at.created_at)
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
        Ok(plan.outcomes(batch, &assigned.positions))
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
        let rows = sqlx::query_as::<_, MessageRow>(concat!(
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
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn get_message(&self, id: Uuid) -> StoreResult<Option<StoredMessage>> {
        let row: Option<MessageRow> = sqlx::query_as(statements::GET_MESSAGE)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
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
        let rows: Vec<MessageRow> = sqlx::query_as(statements::RECENT_MESSAGES)
            .bind(channel.to_string())
            .bind(before_ms.unwrap_or(i64::MAX))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn messages_after(
        &self,
        channel: Uuid,
        after: Cursor,
        upto: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredMessage>> {
        let (sql, value) = match after {
            Cursor::Offset(n) => (statements::MESSAGES_AFTER_OFFSET, n),
            Cursor::Time(t) => (statements::MESSAGES_AFTER_TIME, t),
            Cursor::Since(t) => (statements::MESSAGES_SINCE_TIME, t),
        };
        let rows: Vec<MessageRow> = sqlx::query_as(sql)
            .bind(channel.to_string())
            .bind(value)
            .bind(upto)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
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
        // Through the writer, as appends: none reads the channel's epoch while it moves.
        let mut writer = self.writer.lock().await;
        let mut tx = writer.conn.begin().await?;
        sqlx::query(statements::NEXT_EPOCH)
            .bind(channel.to_string())
            .bind(confab_protocol::now_ms())
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query(statements::CLEAR_CHANNEL)
            .bind(channel.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn last_seq(&self) -> StoreResult<i64> {
        Ok(self
            .committed_seq
            .load(std::sync::atomic::Ordering::Acquire))
    }

    async fn channel_position(&self, channel: Uuid) -> StoreResult<Option<ChannelPosition>> {
        let row: Option<ChannelSeqIdRow> = sqlx::query_as(statements::CHANNEL_POSITION)
            .bind(channel.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| ChannelPosition {
            epoch: r.seq.epoch,
            last_offset: r.seq.last_offset,
        }))
    }

    async fn messages_in_offset_range(
        &self,
        channel: Uuid,
        after: i64,
        upto: i64,
    ) -> StoreResult<Vec<StoredMessage>> {
        let rows: Vec<MessageRow> = sqlx::query_as(statements::MESSAGES_IN_OFFSET_RANGE)
            .bind(channel.to_string())
            .bind(after)
            .bind(upto)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn find_reply(&self, to: Uuid, author: &str) -> StoreResult<Option<StoredMessage>> {
        let row: Option<MessageRow> = sqlx::query_as(statements::FIND_REPLY)
            .bind(to.to_string())
            .bind(author)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
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
        let row = sqlx::query_as::<_, AgentRow>(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn list_agents(&self) -> StoreResult<Vec<AgentRecord>> {
        let rows = sqlx::query_as::<_, AgentRow>(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents ORDER BY created_at, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
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
        let row = sqlx::query_as::<_, SessionRow>(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn list_sessions(&self) -> StoreResult<Vec<SessionRecord>> {
        let rows = sqlx::query_as::<_, SessionRow>(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions ORDER BY created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
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
        let row = sqlx::query_as::<_, JobRow>(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn list_jobs(&self) -> StoreResult<Vec<JobRecord>> {
        let rows = sqlx::query_as::<_, JobRow>(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
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
