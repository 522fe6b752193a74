//! PostgreSQL, for several confab nodes sharing one database (`DATABASE_URL` / `POSTGRES_URL`).
//!
//! The same schema and queries as the SQLite store (the shared ones live in [`crate::sql`]);
//! this file holds opening the database, the append path and PostgreSQL's dialect. An append
//! locks the rows of its channels (and nothing else) until it commits: appends to one channel
//! commit one after another in offset order, so a node that sees offset `n` of a channel
//! committed knows every earlier offset of it is committed too (what gap filling relies on),
//! and appends to other channels, from any node, do not wait.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::sql::*;
use crate::*;

/// How the PostgreSQL pool is opened.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    pub max_connections: u32,
    /// A schema to create (if missing) and use instead of `public`: one database can hold
    /// several independent confab installations, or one per test.
    pub schema: Option<String>,
    /// How long a call waits for a connection (including connecting), or for a lock another
    /// session holds (`lock_timeout`), before it fails.
    pub wait_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 8,
            schema: None,
            wait_timeout: Duration::from_secs(10),
        }
    }
}

pub struct PostgresStore {
    pool: PgPool,
    /// The URL without its password, for the startup banner.
    shown: String,
}

/// Rows per multi-row INSERT (15 bound values each; PostgreSQL allows 65,535 per statement).
const INSERT_CHUNK: usize = 500;

impl PostgresStore {
    /// Connects and runs the migrations (in `options.schema` when given).
    pub async fn open(url: &str, options: PostgresOptions) -> StoreResult<Self> {
        let mut connect = PgConnectOptions::from_str(url)?;
        if let Some(schema) = &options.schema {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(StoreError::Backend(format!(
                    "not a plain schema name: {schema}"
                )));
            }
            // Create the schema with a one-off connection, then make it every connection's
            // search path (migrations included).
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(connect.clone())
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&admin)
            .await?;
            admin.close().await;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        // An append waits for the sequence row while another node commits; a node that stalls
        // holding it (stopped, partitioned) must not stall every other node's sends for good.
        connect = connect.options([(
            "lock_timeout",
            format!("{}ms", options.wait_timeout.as_millis().max(1)),
        )]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.wait_timeout)
            .connect_with(connect)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PostgresStore {
            pool,
            shown: redact(url),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The URL with any password replaced.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> String {
        self.shown.clone()
    }

    async fn ensure_server(&self, s: &MessageServer) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO message_servers (id, name, source_type, source_id, metadata, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT(id) DO NOTHING",
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
            " FROM message_servers WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn server_agents(&self, server: Uuid) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT agent_id FROM message_server_agents WHERE message_server_id = $1 ORDER BY agent_id",
        )
        .bind(server.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }

    async fn add_server_agent(&self, server: Uuid, agent: Uuid) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO message_server_agents (message_server_id, agent_id) VALUES ($1, $2) \
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
            "DELETE FROM message_server_agents WHERE message_server_id = $1 AND agent_id = $2",
        )
        .bind(server.to_string())
        .bind(agent.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn agent_servers(&self, agent: Uuid) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT message_server_id FROM message_server_agents WHERE agent_id = $1 ORDER BY message_server_id",
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT(id) DO NOTHING",
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
                    "INSERT INTO channel_participants (channel_id, entity_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
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
            " FROM channels WHERE id = $1"
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
            " FROM channels WHERE id = $1"
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
            " FROM channels WHERE message_server_id = $1 ORDER BY created_at, id"
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
            " FROM channels WHERE message_server_id = $1 AND type = $2 AND name = $3 \
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
            "UPDATE channels SET name = COALESCE($1, name), topic = COALESCE($2, topic), \
             metadata = COALESCE($3, metadata), updated_at = $4 WHERE id = $5",
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
            sqlx::query("DELETE FROM channel_participants WHERE channel_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            for p in participants {
                sqlx::query(
                    "INSERT INTO channel_participants (channel_id, entity_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
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
            " FROM channels WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(row.into()))
    }

    async fn delete_server(&self, id: Uuid) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM message_servers WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn delete_channel(&self, id: Uuid) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM channels WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn participants(&self, channel: Uuid) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT entity_id FROM channel_participants WHERE channel_id = $1 ORDER BY position",
        )
        .bind(channel.to_string())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn add_participants(&self, channel: Uuid, entities: &[String]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for e in entities {
            sqlx::query(
                "INSERT INTO channel_participants (channel_id, entity_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
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
        let n = sqlx::query(
            "DELETE FROM channel_participants WHERE channel_id = $1 AND entity_id = $2",
        )
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
        let mut tx = self.pool.begin().await?;
        // Locks the batch's channels, and only them, until commit (in id order, so appends
        // sharing channels cannot deadlock). Appends to one channel commit one after another in
        // offset order; the lock also orders the repeat lookup after every earlier append to
        // these channels, so repeats are settled before the INSERT, which then neither fails
        // nor leaves a gap in the offsets. `NO KEY UPDATE` leaves the rows' keys shared: other
        // channels' inserts and reads are not held up.
        let ids: Vec<String> = offsets::channels_of(batch)
            .iter()
            .map(Uuid::to_string)
            .collect();
        let states: Vec<ChannelSeqIdRow> = sqlx::query_as(
            "SELECT id, epoch, last_offset, last_created_at FROM channels WHERE id = ANY($1) \
             ORDER BY id FOR NO KEY UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let keys = repeats::keys(batch);
        let mut existing = Vec::new();
        for chunk in keys.chunks(INSERT_CHUNK) {
            let mut q: QueryBuilder<Postgres> = QueryBuilder::new(concat!(
                "SELECT ",
                message_columns!(),
                ", client_key FROM central_messages WHERE client_key IS NOT NULL AND "
            ));
            repeats::push_key_filter(&mut q, chunk);
            let found: Vec<KeyedMessageRow> = q.build_query_as().fetch_all(&mut *tx).await?;
            existing.extend(found.into_iter().map(Into::into));
        }
        let plan = repeats::plan(batch, existing);
        let fresh = plan.fresh(batch);
        // Row ids from the sequence (no lock); taken under the channels' locks, they grow with
        // the offsets within each channel.
        let mut seqs: Vec<i64> = if fresh.is_empty() {
            Vec::new()
        } else {
            sqlx::query_scalar("SELECT nextval('central_messages_seq') FROM generate_series(1, $1)")
                .bind(fresh.len() as i64)
                .fetch_all(&mut *tx)
                .await?
        };
        seqs.sort_unstable();
        let assigned = offsets::assign(
            &fresh,
            |i| seqs[i],
            states.iter().map(|r| (r.channel(), r.seq)),
        )?;
        if !assigned.channels.is_empty() {
            let (ids, (offsets, times)): (Vec<String>, (Vec<i64>, Vec<i64>)) = assigned
                .channels
                .iter()
                .map(|(id, s)| (id.to_string(), (s.last_offset, s.last_created_at)))
                .unzip();
            sqlx::query(
                "UPDATE channels AS c SET last_offset = v.last_offset, \
                 last_created_at = v.last_created_at \
                 FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS v(id, last_offset, last_created_at) \
                 WHERE c.id = v.id",
            )
            .bind(&ids)
            .bind(&offsets)
            .bind(&times)
            .execute(&mut *tx)
            .await?;
        }
        let rows: Vec<(&NewMessage, &Position)> =
            fresh.iter().copied().zip(&assigned.positions).collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(concat!(
                "INSERT INTO central_messages (",
                message_columns!(),
                ", client_key) "
            ));
            insert.push_values(chunk, |mut row, (m, at)| {
                row.push_bind(at.seq)
                    .push_bind(at.offset)
                    .push_bind(at.epoch)
                    .push_bind(m.id.to_string())
                    .push_bind(m.channel_id.to_string())
                    .push_bind(&m.author_id)
                    .push_bind(m.content.as_bytes())
                    .push_bind(json_text(&m.raw_message))
                    .push_bind(&m.in_reply_to)
                    .push_bind(&m.source_type)
                    .push_bind(&m.source_id)
                    .push_bind(json_text(&m.metadata))
                    .push_bind(at.created_at)
                    .push_bind(at.created_at)
                    .push_bind(&m.client_key);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        // Names documented in confab-server's metrics module.
        metrics::histogram!("confab_store_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("confab_store_batch_size").record(batch.len() as f64);
        Ok(plan.outcomes(batch, &assigned.positions))
    }

    async fn expire_client_keys(&self, before_ms: i64, limit: u32) -> StoreResult<u64> {
        let n = sqlx::query(
            "UPDATE central_messages SET client_key = NULL WHERE seq IN (SELECT seq FROM \
             central_messages WHERE client_key IS NOT NULL AND created_at < $1 LIMIT $2)",
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
        // plainto_tsquery: the words ANDed, no query syntax.
        let rows = sqlx::query_as::<_, MessageRow>(concat!(
            "SELECT ",
            message_columns!(),
            " FROM central_messages, plainto_tsquery('simple', $1) AS q WHERE search @@ q \
             AND ($2::text IS NULL OR channel_id = $2) AND ($3::text IS NULL OR author_id = $3) \
             AND created_at >= $4 AND created_at <= $5 \
             ORDER BY ts_rank(search, q) DESC, created_at DESC, seq DESC LIMIT $6 OFFSET $7"
        ))
        .bind(search.words.join(" "))
        .bind(search.channel.map(|c| c.to_string()))
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
            "UPDATE central_messages SET content = COALESCE($1, content), raw_message = COALESCE($2, raw_message), \
             source_type = COALESCE($3, source_type), in_reply_to_root_message_id = COALESCE($4, in_reply_to_root_message_id), \
             metadata = COALESCE($5, metadata), author_id = COALESCE($6, author_id), updated_at = $7 WHERE id = $8",
        )
        .bind(u.content.as_deref().map(str::as_bytes))
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
        let n = sqlx::query("DELETE FROM central_messages WHERE channel_id = $1 AND id = $2")
            .bind(channel.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn clear_channel(&self, channel: Uuid) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        // The channel's lock first, as an append takes it: no append of this channel is half
        // way through while its history goes.
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

    /// A real write (the probe row rewritten): a server that answers reads but cannot commit
    /// (out of disk, a read-only standby) does not pass. It locks nothing appends need.
    async fn probe(&self) -> StoreResult<()> {
        sqlx::query("UPDATE store_probe SET at = $1 WHERE id = 1")
            .bind(confab_protocol::now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn last_seq(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM central_messages")
                .fetch_one(&self.pool)
                .await?,
        )
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
             VALUES ($1, $2, $3, $4, $5, $6) \
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
            " FROM agents WHERE id = $1"
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
        let done = sqlx::query("DELETE FROM agents WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn put_session(&self, session: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, channel_id, agent_id, user_id, metadata, timeout_config, \
             renewal_count, created_at, last_activity, renewed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
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
            " FROM sessions WHERE id = $1"
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
        let done = sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
    async fn put_job(&self, job: &JobRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO jobs (id, agent_id, user_id, prompt, status, result, error, metadata, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
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
            " FROM jobs WHERE id = $1"
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
             OFFSET $1)",
        )
        .bind(keep as i64)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn set_channel_private(&self, channel: Uuid, private: bool) -> StoreResult<()> {
        let sql = if private {
            "INSERT INTO private_channels (channel_id) VALUES ($1) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM private_channels WHERE channel_id = $1"
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
