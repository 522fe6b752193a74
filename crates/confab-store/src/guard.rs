//! [`GuardedStore`]: any [`Store`] with a time bound on every call and a circuit breaker in
//! front of it, so that a dead database fails calls quickly instead of holding them.
//!
//! * Every call is bounded by [`GuardConfig::timeout`]. A read that takes longer is abandoned
//!   and fails. An append is never abandoned halfway (its outcome decides the sequence numbers
//!   that follow); one that overruns the bound opens the breaker, so everything behind it fails
//!   at once, and it still reports its own outcome when it ends. Backends bound their own waits
//!   too (the PostgreSQL pool's acquire timeout is the same bound), so an unreachable server
//!   fails appends within it.
//! * A dependency failure ([`StoreError::is_dependency`]: connection refused or lost, pool
//!   timeout, disk full, I/O error) opens the breaker: from then on every call fails at once
//!   with [`StoreError::Unavailable`] and the cause. A background task probes
//!   ([`Store::probe`]: a real write where reads alone could mislead) with backoff, and the
//!   first successful probe closes the breaker: recovery needs no restart and no traffic.
//! * [`StoreHealth`] is what `/health` reads: the breaker's state (no waiting behind the commit
//!   queue or a dead pool), plus a short bounded read when nothing has proven storage alive in
//!   the last second.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use crate::breaker::{Backoff, Breaker, BreakerState};
use crate::*;

#[derive(Debug, Clone, Copy)]
pub struct GuardConfig {
    /// The longest a call may take before it fails (and storage counts as down).
    pub timeout: Duration,
    /// Delays between recovery probes.
    pub backoff: Backoff,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            timeout: Duration::from_secs(2),
            backoff: Backoff::default(),
        }
    }
}

/// How long a successful call counts as proof that storage works, for health checks.
const FRESH: Duration = Duration::from_secs(1);

struct Shared {
    inner: Arc<dyn Store>,
    config: GuardConfig,
    breaker: Mutex<Breaker>,
}

/// A [`Store`] that fails fast while its database is down (see the module documentation).
pub struct GuardedStore {
    shared: Arc<Shared>,
}

/// Storage health as `/health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageStatus {
    pub backend: &'static str,
    /// `None` while storage works; else why not.
    pub cause: Option<String>,
    /// How long it has been down.
    pub down_for: Option<Duration>,
}

impl StorageStatus {
    pub fn healthy(&self) -> bool {
        self.cause.is_none()
    }
}

/// A handle on a [`GuardedStore`]'s health, for `/health`.
#[derive(Clone)]
pub struct StoreHealth {
    shared: Arc<Shared>,
}

impl GuardedStore {
    pub fn new(inner: Arc<dyn Store>, config: GuardConfig) -> Self {
        GuardedStore {
            shared: Arc::new(Shared {
                inner,
                breaker: Mutex::new(Breaker::new(config.backoff)),
                config,
            }),
        }
    }

    pub fn health(&self) -> StoreHealth {
        StoreHealth {
            shared: self.shared.clone(),
        }
    }
}

impl StoreHealth {
    /// The breaker's view, without touching the database.
    pub fn status(&self) -> StorageStatus {
        let breaker = self.shared.breaker.lock().unwrap();
        StorageStatus {
            backend: self.shared.inner.backend(),
            cause: breaker.outage().map(|o| o.cause.clone()),
            down_for: breaker.outage().map(|o| o.since.elapsed()),
        }
    }

    /// The current status, checked with a read bounded by `within` unless a call succeeded in
    /// the last second (or storage is already known to be down).
    pub async fn check(&self, within: Duration) -> StorageStatus {
        let fresh = {
            let breaker = self.shared.breaker.lock().unwrap();
            breaker.state() != BreakerState::Closed
                || breaker.last_ok().is_some_and(|t| t.elapsed() < FRESH)
        };
        if !fresh {
            let bound = within.min(self.shared.config.timeout);
            let _ = self.shared.call(bound, self.shared.inner.ping()).await;
        }
        self.status()
    }
}

impl Shared {
    /// Runs one call: refused at once while the breaker is open, abandoned after `bound`.
    async fn call<T>(
        self: &Arc<Self>,
        bound: Duration,
        call: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        self.admit()?;
        let outcome = match tokio::time::timeout(bound, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(self.overran(bound)),
        };
        self.record(&outcome);
        outcome
    }

    /// Runs an append: refused at once while the breaker is open, never abandoned; when it
    /// overruns the bound the breaker opens meanwhile, so later calls fail fast.
    async fn append<T>(
        self: &Arc<Self>,
        call: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        self.admit()?;
        tokio::pin!(call);
        let bound = self.config.timeout;
        let outcome = tokio::select! {
            outcome = &mut call => outcome,
            _ = tokio::time::sleep(bound) => {
                let slow = self.overran(bound);
                self.failed(&slow);
                call.await
            }
        };
        self.record(&outcome);
        outcome
    }

    fn admit(&self) -> StoreResult<()> {
        self.breaker
            .lock()
            .unwrap()
            .admit()
            .map_err(|outage| StoreError::Unavailable(outage.cause))
    }

    fn overran(&self, bound: Duration) -> StoreError {
        StoreError::Unavailable(format!(
            "{} did not answer within {} ms",
            self.inner.backend(),
            bound.as_millis()
        ))
    }

    fn record<T>(self: &Arc<Self>, outcome: &StoreResult<T>) {
        match outcome {
            Ok(_) => self.breaker.lock().unwrap().success(Instant::now()),
            Err(e) if e.is_dependency() => self.failed(e),
            Err(_) => {}
        }
    }

    /// A dependency failure: opens the breaker and, if it was closed, starts probing.
    fn failed(self: &Arc<Self>, e: &StoreError) {
        let cause = match e {
            StoreError::Unavailable(cause) => cause.clone(),
            other => other.to_string(),
        };
        if self.breaker.lock().unwrap().failure(&cause, Instant::now()) {
            tracing::error!(backend = self.inner.backend(), cause = %cause, "storage unavailable: failing calls until a probe succeeds");
            let shared = self.clone();
            tokio::spawn(async move { shared.probe_until_closed().await });
        }
    }

    /// Probes with backoff until storage works again.
    async fn probe_until_closed(&self) {
        loop {
            let Some(next) = self.breaker.lock().unwrap().next_probe() else {
                return;
            };
            tokio::time::sleep_until(next.into()).await;
            if !self.breaker.lock().unwrap().begin_probe(Instant::now()) {
                continue;
            }
            let bound = self.config.timeout;
            let outcome = match tokio::time::timeout(bound, self.inner.probe()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(StoreError::Unavailable(cause))) => Err(cause),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(self.overran(bound).to_string()),
            };
            let mut breaker = self.breaker.lock().unwrap();
            match outcome {
                Ok(()) => {
                    breaker.probe_succeeded(Instant::now());
                    tracing::info!(backend = self.inner.backend(), "storage is back");
                    return;
                }
                Err(cause) => {
                    tracing::debug!(cause = %cause, "storage probe failed");
                    breaker.probe_failed(&cause, Instant::now());
                }
            }
        }
    }
}

/// Delegates one read (or a write that may be abandoned) through [`Shared::call`].
macro_rules! bounded {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        $self
            .shared
            .call($self.shared.config.timeout, $self.shared.inner.$method($($arg),*))
            .await
    };
}

#[async_trait]
impl Store for GuardedStore {
    fn backend(&self) -> &'static str {
        self.shared.inner.backend()
    }
    fn location(&self) -> String {
        self.shared.inner.location()
    }
    async fn ping(&self) -> StoreResult<()> {
        bounded!(self.ping())
    }
    async fn probe(&self) -> StoreResult<()> {
        bounded!(self.probe())
    }

    async fn ensure_server(&self, server: &MessageServer) -> StoreResult<()> {
        bounded!(self.ensure_server(server))
    }
    async fn list_servers(&self) -> StoreResult<Vec<MessageServer>> {
        bounded!(self.list_servers())
    }
    async fn get_server(&self, id: Uuid) -> StoreResult<Option<MessageServer>> {
        bounded!(self.get_server(id))
    }
    async fn server_agents(&self, server: Uuid) -> StoreResult<Vec<Uuid>> {
        bounded!(self.server_agents(server))
    }
    async fn add_server_agent(&self, server: Uuid, agent: Uuid) -> StoreResult<()> {
        bounded!(self.add_server_agent(server, agent))
    }
    async fn remove_server_agent(&self, server: Uuid, agent: Uuid) -> StoreResult<()> {
        bounded!(self.remove_server_agent(server, agent))
    }
    async fn agent_servers(&self, agent: Uuid) -> StoreResult<Vec<Uuid>> {
        bounded!(self.agent_servers(agent))
    }

    async fn create_channel(
        &self,
        channel: &Channel,
        participants: &[String],
    ) -> StoreResult<Channel> {
        bounded!(self.create_channel(channel, participants))
    }
    async fn get_channel(&self, id: Uuid) -> StoreResult<Option<Channel>> {
        bounded!(self.get_channel(id))
    }
    async fn list_channels(&self, server: Uuid) -> StoreResult<Vec<Channel>> {
        bounded!(self.list_channels(server))
    }
    async fn find_channel_by_name(
        &self,
        server: Uuid,
        kind: &str,
        name: &str,
    ) -> StoreResult<Option<Channel>> {
        bounded!(self.find_channel_by_name(server, kind, name))
    }
    async fn update_channel(
        &self,
        id: Uuid,
        update: &ChannelUpdate,
    ) -> StoreResult<Option<Channel>> {
        bounded!(self.update_channel(id, update))
    }
    async fn delete_server(&self, id: Uuid) -> StoreResult<bool> {
        bounded!(self.delete_server(id))
    }
    async fn delete_channel(&self, id: Uuid) -> StoreResult<bool> {
        bounded!(self.delete_channel(id))
    }
    async fn participants(&self, channel: Uuid) -> StoreResult<Vec<String>> {
        bounded!(self.participants(channel))
    }
    async fn add_participants(&self, channel: Uuid, entities: &[String]) -> StoreResult<()> {
        bounded!(self.add_participants(channel, entities))
    }
    async fn remove_participant(&self, channel: Uuid, entity: &str) -> StoreResult<bool> {
        bounded!(self.remove_participant(channel, entity))
    }

    async fn insert_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<Appended>> {
        self.shared
            .append(self.shared.inner.insert_messages(batch))
            .await
    }
    async fn expire_client_keys(&self, before_ms: i64, limit: u32) -> StoreResult<u64> {
        bounded!(self.expire_client_keys(before_ms, limit))
    }
    async fn search_messages(
        &self,
        search: &MessageSearch,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<StoredMessage>> {
        bounded!(self.search_messages(search, limit, offset))
    }
    async fn get_message(&self, id: Uuid) -> StoreResult<Option<StoredMessage>> {
        bounded!(self.get_message(id))
    }
    async fn update_message(
        &self,
        id: Uuid,
        update: &MessageUpdate,
    ) -> StoreResult<Option<StoredMessage>> {
        bounded!(self.update_message(id, update))
    }
    async fn recent_messages(
        &self,
        channel: Uuid,
        limit: u32,
        before_ms: Option<i64>,
    ) -> StoreResult<Vec<StoredMessage>> {
        bounded!(self.recent_messages(channel, limit, before_ms))
    }
    async fn messages_after(
        &self,
        channel: Uuid,
        after: Cursor,
        upto: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredMessage>> {
        bounded!(self.messages_after(channel, after, upto, limit))
    }
    async fn delete_message(&self, channel: Uuid, id: Uuid) -> StoreResult<bool> {
        bounded!(self.delete_message(channel, id))
    }
    async fn clear_channel(&self, channel: Uuid) -> StoreResult<u64> {
        bounded!(self.clear_channel(channel))
    }
    async fn last_seq(&self) -> StoreResult<i64> {
        bounded!(self.last_seq())
    }
    async fn channel_position(&self, channel: Uuid) -> StoreResult<Option<ChannelPosition>> {
        bounded!(self.channel_position(channel))
    }
    async fn messages_in_offset_range(
        &self,
        channel: Uuid,
        after: i64,
        upto: i64,
    ) -> StoreResult<Vec<StoredMessage>> {
        bounded!(self.messages_in_offset_range(channel, after, upto))
    }
    async fn find_reply(&self, to: Uuid, author: &str) -> StoreResult<Option<StoredMessage>> {
        bounded!(self.find_reply(to, author))
    }

    async fn put_agent(&self, agent: &AgentRecord) -> StoreResult<()> {
        bounded!(self.put_agent(agent))
    }
    async fn get_agent(&self, id: Uuid) -> StoreResult<Option<AgentRecord>> {
        bounded!(self.get_agent(id))
    }
    async fn list_agents(&self) -> StoreResult<Vec<AgentRecord>> {
        bounded!(self.list_agents())
    }
    async fn delete_agent(&self, id: Uuid) -> StoreResult<bool> {
        bounded!(self.delete_agent(id))
    }

    async fn put_session(&self, session: &SessionRecord) -> StoreResult<()> {
        bounded!(self.put_session(session))
    }
    async fn get_session(&self, id: Uuid) -> StoreResult<Option<SessionRecord>> {
        bounded!(self.get_session(id))
    }
    async fn list_sessions(&self) -> StoreResult<Vec<SessionRecord>> {
        bounded!(self.list_sessions())
    }
    async fn delete_session(&self, id: Uuid) -> StoreResult<bool> {
        bounded!(self.delete_session(id))
    }

    async fn put_job(&self, job: &JobRecord) -> StoreResult<()> {
        bounded!(self.put_job(job))
    }
    async fn get_job(&self, id: Uuid) -> StoreResult<Option<JobRecord>> {
        bounded!(self.get_job(id))
    }
    async fn list_jobs(&self) -> StoreResult<Vec<JobRecord>> {
        bounded!(self.list_jobs())
    }
    async fn trim_jobs(&self, keep: u32) -> StoreResult<u64> {
        bounded!(self.trim_jobs(keep))
    }

    async fn set_channel_private(&self, channel: Uuid, private: bool) -> StoreResult<()> {
        bounded!(self.set_channel_private(channel, private))
    }
    async fn private_channels(&self) -> StoreResult<Vec<Uuid>> {
        bounded!(self.private_channels())
    }
}
