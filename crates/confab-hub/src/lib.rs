//! The hub: where a validated command becomes state and deliveries.
//!
//! * [`directory`]: servers and channels as the hot path needs them; auto-creation.
//! * [`presence`]: this node's connections; cluster-wide presence and departures (kept for the
//!   rejoin grace period) behind the [`Presence`] trait.
//! * [`sequencer`]: group commit, then ordered fan-out; replay for resuming joins.
//! * [`delivery`]: stored message → wire payloads.
//! * [`fanout`]: the delivery trait the transport implements.

mod admin;
pub mod delivery;
pub mod directory;
pub mod fanout;
pub mod presence;
mod sequencer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_protocol::inbound::{JoinRequest, ResumePoint, SendRequest, TypingRequest};
use confab_protocol::outbound::{
    ChannelNotice, ChannelUpdated, MessageDeleted, Presence as PresenceEvent, RecoveryReason,
    RecoveryReport, ResumedFrom, UserTyping,
};
use confab_protocol::{ChannelRef, DEFAULT_SERVER_ID, ServerEvent, now_ms, texts};
use confab_store::{
    Channel, ChannelUpdate, Cursor, MessageServer, NewMessage, Store, StoreError, StoredMessage,
    channel_type,
};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

pub use directory::{AutoCreate, ChannelInfo, Directory};
pub use fanout::{ClusterLink, ConnId, FanOut};
use presence::{Connections, Feed};
pub use presence::{MemoryPresence, Presence, PresenceError};
pub use sequencer::{CommitCallback, Delivery, Reply};
use sequencer::{Delivered, InOrder, Job, Resume, Resumed, Sequencer};

#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    /// Texts as ElizaOS sends them in `messageError`.
    #[error("{}", texts::server_missing(.0))]
    UnknownServer(Uuid),
    #[error("{}", texts::channel_create_failed(.0))]
    ChannelCreate(String),
    #[error("{}", texts::processing_failed(.0))]
    Store(String),
    #[error("channel not found")]
    ChannelNotFound,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("{}", texts::processing_failed(.0))]
    Internal(String),
}

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> Self {
        HubError::Store(e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The message server used when a client names none.
    pub default_server: Uuid,
    /// How long a disconnected entity's channels are kept for an automatic rejoin.
    pub rejoin_grace: Duration,
    /// The most messages replayed to one resuming join.
    pub resume_limit: u32,
    /// The most bytes (encoded events) replayed to one resuming join: the replay is queued on
    /// the connection at once, so it must fit in the connection's outgoing queue, or a healthy
    /// client would be dropped as slow (and, resuming again, dropped again). 0: no bound.
    pub resume_bytes: usize,
    /// The most messages committed in one transaction.
    pub max_batch: usize,
    /// Messages waiting for the sequencer before senders are made to wait.
    pub queue_capacity: usize,
    /// How long a sender's message id keeps making a resend a repeat (exactly-once publish);
    /// zero: ids are not idempotency keys.
    pub dedup_window: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            default_server: DEFAULT_SERVER_ID,
            rejoin_grace: Duration::from_secs(120),
            resume_limit: 500,
            resume_bytes: 0,
            max_batch: 1024,
            queue_capacity: 16 * 1024,
            dedup_window: Duration::from_secs(24 * 3600),
        }
    }
}

/// A message once it is durable, with the channel it went to.
#[derive(Debug, Clone)]
pub struct Committed {
    pub message: StoredMessage,
    pub channel: Arc<ChannelInfo>,
    /// The sender sent this message before (same client id): `message` is the original, stored
    /// then, and it was not stored or broadcast again.
    pub repeat: bool,
}

/// The outcome of a join, for the transport's reply.
#[derive(Debug, Clone)]
pub struct Joined {
    pub channel: ChannelInfo,
    pub recovery: Option<RecoveryReport>,
    /// The server had already put this connection back into the channel (automatic rejoin,
    /// announced then with its own `channel_joined`); this join only confirmed it.
    pub was_rejoined: bool,
}

/// A channel the server put a reconnecting client back into.
#[derive(Debug, Clone)]
pub struct Rejoined {
    pub channel: ChannelInfo,
    pub recovery: RecoveryReport,
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    fanout: Arc<dyn FanOut>,
    directory: Directory,
    /// This node's connections and what each has been sent.
    presence: Arc<Mutex<Connections>>,
    /// Who is present where, cluster-wide; departures for the automatic rejoin.
    members: Arc<dyn Presence>,
    /// The other nodes, in a cluster: told which channels this node has members in.
    cluster: Option<Arc<dyn ClusterLink>>,
    jobs: mpsc::Sender<Job>,
    /// How far delivery has gone in each channel.
    delivered: Arc<Delivered>,
    committed: broadcast::Sender<Arc<Committed>>,
    config: HubConfig,
    /// Told what was deleted (the server removes the media files that went with it).
    removals: std::sync::OnceLock<RemovalHook>,
}

/// Something deleted, for whoever keeps things that belong to it (media files).
#[derive(Debug, Clone)]
pub enum Removed {
    /// A channel deleted, or cleared of all its messages.
    Channel(Uuid),
    /// One message deleted (as it was stored).
    Message(Box<StoredMessage>),
}

/// Called after each deletion, on the deleting task: it must not block (spawn the work).
pub type RemovalHook = Arc<dyn Fn(Removed) + Send + Sync>;

impl Hub {
    /// Makes sure the default message server exists, loads the directory and starts the
    /// sequencer.
    pub async fn start(
        store: Arc<dyn Store>,
        fanout: Arc<dyn FanOut>,
        config: HubConfig,
    ) -> Result<Hub, HubError> {
        let members = Arc::new(MemoryPresence::new(config.rejoin_grace));
        Self::start_clustered(store, fanout.clone(), fanout, config, None, members).await
    }

    /// Starts a hub that is one node of a cluster: `local` reaches this node's connections
    /// (the sequencer delivers messages through it), `fanout` reaches every node's (events);
    /// `cluster` carries committed messages between nodes and learns which channels this node
    /// has members in; `members` is the cluster-wide presence.
    pub async fn start_clustered(
        store: Arc<dyn Store>,
        local: Arc<dyn FanOut>,
        fanout: Arc<dyn FanOut>,
        config: HubConfig,
        cluster: Option<Arc<dyn ClusterLink>>,
        members: Arc<dyn Presence>,
    ) -> Result<Hub, HubError> {
        let now = now_ms();
        store
            .ensure_server(&MessageServer {
                id: config.default_server,
                name: "Default Server".into(),
                source_type: "eliza_default".into(),
                source_id: None,
                metadata: None,
                created_at: now,
                updated_at: now,
            })
            .await?;
        let directory = Directory::load(store.clone()).await?;
        let delivered = Arc::new(Delivered::default());
        let (jobs, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (committed, _) = broadcast::channel(4096);
        let presence = Arc::new(Mutex::new(Connections::default()));
        tokio::spawn(
            Sequencer {
                store: store.clone(),
                fanout: local,
                cluster: cluster.clone(),
                delivered: delivered.clone(),
                max_batch: config.max_batch.max(1),
                committed_tx: committed.clone(),
                presence: presence.clone(),
                resume_bytes: config.resume_bytes,
            }
            .run(rx),
        );
        if !config.dedup_window.is_zero() {
            tokio::spawn(expire_client_keys(
                Arc::downgrade(&store),
                config.dedup_window,
            ));
        }
        Ok(Hub {
            inner: Arc::new(Inner {
                store,
                fanout,
                directory,
                presence,
                members,
                cluster,
                jobs,
                delivered,
                committed,
                config,
                removals: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Sets what is told of deletions (once; later calls are ignored).
    pub fn on_removal(&self, hook: RemovalHook) {
        let _ = self.inner.removals.set(hook);
    }

    fn removed(&self, what: Removed) {
        if let Some(hook) = self.inner.removals.get() {
            hook(what);
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    pub fn default_server(&self) -> Uuid {
        self.inner.config.default_server
    }

    /// Messages another node committed (cluster mode): delivered here in each channel's
    /// offset order.
    pub async fn remote_commits(&self, commits: Vec<Arc<Committed>>) {
        if self
            .inner
            .jobs
            .send(Job::InOrder(InOrder::Remote(commits)))
            .await
            .is_err()
        {
            tracing::debug!("remote commits dropped: the hub is stopping");
        }
    }

    /// This node's committed messages, as they are delivered (for agents and observers).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.inner.committed.subscribe()
    }

    /// Sends an event to every connection in a channel (agents' control and stream events).
    pub async fn announce(&self, channel: Uuid, event: &ServerEvent) {
        self.event_to_channel(channel, event, None).await;
    }

    /// Sends an event to the channel members that speak seed 000's dialect.
    pub async fn announce_legacy(&self, channel: Uuid, event: &ServerEvent) {
        self.event_to_legacy_members(channel, event, None).await;
    }

    /// A channel's participants (cached; kept current by the hub's own participant changes).
    pub async fn channel_participants(&self, channel: Uuid) -> Result<Arc<Vec<String>>, HubError> {
        self.inner.directory.participants(channel).await
    }

    pub fn connection_count(&self) -> usize {
        self.inner.presence.lock().unwrap().connection_count()
    }

    // ---- connections ---------------------------------------------------------------------

    /// Registers a connection. When `may_rejoin` (the client named its entity) and the entity
    /// left within the grace period, the connection is put back into its channels, with the
    /// messages it missed replayed first.
    pub async fn connect(&self, conn: &ConnId, entity: Uuid, may_rejoin: bool) -> Vec<Rejoined> {
        self.inner.presence.lock().unwrap().connect(conn, entity);
        if !may_rejoin {
            return Vec::new();
        }
        // The entity may have left from another node: departures are cluster-wide.
        let Some(departure) = self.inner.members.take_departure(entity).await else {
            return Vec::new();
        };
        let mut rejoined = Vec::new();
        for (channel_id, stop) in departure.channels {
            let Ok(Some(channel)) = self.inner.directory.find(channel_id).await else {
                continue;
            };
            // The server knows what it handed to the previous connection, not what arrived:
            // the replay starts after the former, and says it cannot confirm the rest.
            let resume = Resume {
                from: Cursor::Offset(stop.offset),
                reported_from: ResumedFrom::Sequence(stop.offset),
                sent_after: None,
                caveat: Some(if stop.lossy {
                    RecoveryReason::SlowConsumer
                } else {
                    RecoveryReason::Unconfirmed
                }),
            };
            self.want(channel_id).await;
            match self.resume(conn, channel.clone(), resume, false).await {
                Ok(Resumed { report, sent_after }) => {
                    let feed = Feed {
                        sent_after,
                        automatic: true,
                    };
                    self.mark_joined(conn, entity, &channel, None, feed).await;
                    rejoined.push(Rejoined {
                        channel: channel.as_ref().clone(),
                        recovery: report,
                    });
                }
                Err(e) => {
                    self.settle_interest(channel_id);
                    tracing::warn!(%conn, channel = %channel_id, error = %e, "rejoin failed");
                }
            }
        }
        rejoined
    }

    /// Forgets a connection; the others in its channels learn the entity left, and where the
    /// connection stopped in each channel is remembered for a rejoin.
    pub async fn disconnect(&self, conn: &ConnId, entity: Uuid) {
        let delivered = &self.inner.delivered;
        let (left, all) = {
            let mut presence = self.inner.presence.lock().unwrap();
            let (left, all) = presence.disconnect(conn, |c| delivered.upto(c));
            if let Some(cluster) = &self.inner.cluster {
                for (channel, _) in &all {
                    cluster.interest(*channel, presence.occupied(*channel));
                }
            }
            (left, all)
        };
        tracing::debug!(%conn, channels = all.len(), "disconnected");
        self.inner.members.depart(entity, all).await;
        for channel_id in left {
            if self.inner.members.set(channel_id, entity, 0).await {
                // Still present through another node.
                continue;
            }
            let scope = self.info_or_bare(channel_id).await;
            self.event_to_channel(
                channel_id,
                &ServerEvent::UserLeft(presence_event(entity, None, &scope)),
                Some(conn),
            )
            .await;
        }
    }

    /// Joins a channel. With a resume point, the messages after it that this connection has
    /// not been sent yet are replayed first (all of them after the point when it was not in the
    /// room; when it was, only those before its live feed began).
    pub async fn join(
        &self,
        conn: &ConnId,
        entity: Uuid,
        req: &JoinRequest,
        legacy: bool,
    ) -> Result<Joined, HubError> {
        let existing = self.inner.directory.find(req.channel.id).await?;
        let channel = match &existing {
            Some(c) => c.as_ref().clone(),
            None => ChannelInfo {
                id: req.channel.id,
                server_id: req.server_id.unwrap_or(self.inner.config.default_server),
                kind: channel_type::GROUP.into(),
                alias: req.channel.spelled.clone(),
            },
        };
        let feed = self.inner.presence.lock().unwrap().feed(conn, channel.id);
        if feed.is_none() {
            // Other nodes' messages in this channel reach this node from now on.
            self.want(channel.id).await;
        }
        let joined = self
            .join_as(conn, entity, req, legacy, channel, existing, feed)
            .await;
        if joined.is_err() {
            self.settle_interest(req.channel.id);
        }
        joined
    }

    #[allow(clippy::too_many_arguments)]
    async fn join_as(
        &self,
        conn: &ConnId,
        entity: Uuid,
        req: &JoinRequest,
        legacy: bool,
        channel: ChannelInfo,
        existing: Option<Arc<ChannelInfo>>,
        feed: Option<Feed>,
    ) -> Result<Joined, HubError> {
        let (recovery, sent_after) = match (req.resume, existing) {
            (None, _) => (None, None),
            (Some(point), Some(existing)) => {
                let (cursor, reported_from) = match point {
                    ResumePoint::Since(ms) => (Some(Cursor::Since(ms)), ResumedFrom::Since(ms)),
                    ResumePoint::AfterMessage(id) => (
                        self.inner
                            .store
                            .get_message(id)
                            .await?
                            .filter(|m| m.channel_id == channel.id)
                            .map(|m| Cursor::Offset(m.offset)),
                        ResumedFrom::LastMessageId(id),
                    ),
                };
                match cursor {
                    Some(from) => {
                        let resume = Resume {
                            from,
                            reported_from,
                            sent_after: feed.map(|f| f.sent_after),
                            caveat: None,
                        };
                        let r = self.resume(conn, existing, resume, legacy).await?;
                        (Some(r.report), Some(r.sent_after))
                    }
                    None => (
                        Some(RecoveryReport::new(
                            reported_from,
                            0,
                            Some(RecoveryReason::UnknownMessage),
                        )),
                        None,
                    ),
                }
            }
            // A channel with no messages yet: nothing can have been missed.
            (Some(point), None) => (Some(RecoveryReport::new(reported(point), 0, None)), None),
        };
        match feed {
            Some(feed) => {
                // Already in the room: joining again changes nothing but may add the seed-000
                // group (a second join in that dialect).
                self.inner.fanout.join(conn, channel.id, legacy).await;
                self.inner.presence.lock().unwrap().confirm(
                    conn,
                    channel.id,
                    sent_after.unwrap_or(feed.sent_after),
                );
            }
            None => {
                let sent_after = match sent_after {
                    Some(n) => n,
                    // Joined the room directly: everything delivered from now on reaches it.
                    None => {
                        self.inner.fanout.join(conn, channel.id, legacy).await;
                        Sequencer::baseline(
                            &*self.inner.store,
                            &self.inner.delivered,
                            &self.inner.presence,
                            channel.id,
                        )
                        .await?
                    }
                };
                let feed = Feed {
                    sent_after,
                    automatic: false,
                };
                self.mark_joined(conn, entity, &channel, req.display_name.clone(), feed)
                    .await;
            }
        }
        Ok(Joined {
            channel,
            recovery,
            was_rejoined: feed.is_some_and(|f| f.automatic),
        })
    }

    async fn mark_joined(
        &self,
        conn: &ConnId,
        entity: Uuid,
        channel: &ChannelInfo,
        name: Option<String>,
        feed: Feed,
    ) {
        let (first, count) = {
            let mut presence = self.inner.presence.lock().unwrap();
            let first = presence.join(conn, channel.id, feed);
            if let Some(name) = &channel.alias {
                presence.name_channel(channel.id, name);
            }
            if let Some(cluster) = &self.inner.cluster {
                cluster.interest(channel.id, true);
            }
            (first, presence.count(channel.id, entity))
        };
        let elsewhere = self.inner.members.set(channel.id, entity, count).await;
        if first && !elsewhere {
            self.event_to_channel(
                channel.id,
                &ServerEvent::UserJoined(presence_event(entity, name, channel)),
                Some(conn),
            )
            .await;
        }
    }

    /// Leaves a channel; `ChannelNotFound` if the connection was not in it.
    pub async fn leave(
        &self,
        conn: &ConnId,
        entity: Uuid,
        channel: &ChannelRef,
    ) -> Result<ChannelInfo, HubError> {
        let (was_member, gone, count) = {
            let mut presence = self.inner.presence.lock().unwrap();
            let member = presence.is_member(conn, channel.id);
            let gone = presence.leave(conn, channel.id);
            if let Some(cluster) = &self.inner.cluster
                && member
            {
                cluster.interest(channel.id, presence.occupied(channel.id));
            }
            (member, gone, presence.count(channel.id, entity))
        };
        if !was_member {
            return Err(HubError::ChannelNotFound);
        }
        let elsewhere = self.inner.members.set(channel.id, entity, count).await;
        self.inner.fanout.leave(conn, channel.id).await;
        let mut info = self.info_or_bare(channel.id).await;
        if info.alias.is_none() {
            info.alias = channel.spelled.clone();
        }
        if gone && !elsewhere {
            self.event_to_channel(
                channel.id,
                &ServerEvent::UserLeft(presence_event(entity, None, &info)),
                Some(conn),
            )
            .await;
        }
        Ok(info)
    }

    pub async fn typing(&self, conn: &ConnId, entity: Uuid, req: &TypingRequest) {
        let mut info = self.info_or_bare(req.channel.id).await;
        if info.alias.is_none() {
            info.alias = req.channel.spelled.clone();
        }
        let entity = req.entity_id.unwrap_or(entity);
        let event = ServerEvent::UserTyping(UserTyping {
            user_id: entity,
            entity_id: entity,
            is_typing: req.is_typing,
            scope: info.scope(),
        });
        self.event_to_channel(info.id, &event, Some(conn)).await;
    }

    /// Entities connected to a channel on any node, with how many connections each.
    pub async fn present(&self, channel: Uuid) -> Result<Vec<(Uuid, usize)>, PresenceError> {
        self.inner.members.members(channel).await
    }

    /// Cluster mode: makes sure other nodes' messages and events of the channel reach this
    /// node before a connection joins it (the subscription is in place, or its bound passed).
    async fn want(&self, channel: Uuid) {
        if let Some(cluster) = &self.inner.cluster {
            cluster.interest(channel, true);
            cluster.ready(channel).await;
        }
    }

    /// Cluster mode: after a join that failed, keeps the channel's interest only if someone
    /// on this node is in it.
    fn settle_interest(&self, channel: Uuid) {
        if let Some(cluster) = &self.inner.cluster {
            let presence = self.inner.presence.lock().unwrap();
            cluster.interest(channel, presence.occupied(channel));
        }
    }

    // ---- messages ------------------------------------------------------------------------

    /// A message from a socket client: auto-creates the channel, then queues it for commit and
    /// returns; `on_commit` learns the outcome. Messages queued by one caller are committed and
    /// delivered in the order they were queued. `on_commit` is called exactly once in every case:
    /// when this returns an error, it has already been called with that error.
    pub async fn send(
        &self,
        conn: &ConnId,
        entity: Uuid,
        req: SendRequest,
        legacy: bool,
        on_commit: CommitCallback,
    ) -> Result<(), HubError> {
        let sender = req.sender_id.unwrap_or(entity);
        let server_id = req.server_id.unwrap_or(self.inner.config.default_server);
        let channel = match self
            .inner
            .directory
            .find_or_create(AutoCreate {
                channel: &req.channel,
                server_id,
                creator: sender.to_string(),
                dm: req.is_dm(),
                dm_target: req.dm_target(),
                created_by: "socketio_auto_creation",
                client_metadata: &req.metadata,
            })
            .await
        {
            Ok(channel) => channel,
            Err(e) => {
                on_commit(Err(&e));
                return Err(e);
            }
        };
        let mut metadata = req.metadata.clone();
        if let Some(name) = &req.sender_name {
            metadata.insert("user_display_name".into(), json!(name));
        }
        metadata.insert("socket_id".into(), json!(conn.0));
        metadata.insert("messageServerId".into(), json!(channel.server_id));
        metadata.insert(
            "attachments".into(),
            delivery::attachments_value(&req.attachments),
        );
        let message = NewMessage {
            id: confab_store::new_message_id(),
            channel_id: channel.id,
            author_id: sender.to_string(),
            content: req.text,
            raw_message: Some(req.raw),
            in_reply_to: req.in_reply_to.map(|u| u.to_string()),
            source_type: Some(
                req.source
                    .unwrap_or_else(|| delivery::source::SOCKET_CLIENT.into()),
            ),
            source_id: Some(req.client_message_id.clone().unwrap_or_else(|| {
                format!(
                    "socketio-{}-{}",
                    now_ms(),
                    &Uuid::new_v4().simple().to_string()[..8]
                )
            })),
            metadata: Some(Value::Object(metadata)),
            created_at: 0,
            client_key: self.client_key(&req.client_message_id),
        };
        self.enqueue(
            message,
            channel,
            Delivery::FromConnection {
                origin: conn.clone(),
                client_message_id: req.client_message_id,
                legacy,
            },
            Reply::Callback(on_commit),
        )
        .await
    }

    /// Commits a message built elsewhere (REST, agents), delivers it as given, and returns it
    /// once durable.
    pub async fn append(
        &self,
        message: NewMessage,
        channel: Arc<ChannelInfo>,
        delivery: Delivery,
    ) -> Result<Committed, HubError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(message, channel, delivery, Reply::Wait(reply))
            .await?;
        rx.await.map_err(|_| HubError::ShuttingDown)?
    }

    async fn enqueue(
        &self,
        message: NewMessage,
        channel: Arc<ChannelInfo>,
        delivery: Delivery,
        reply: Reply,
    ) -> Result<(), HubError> {
        let job = Job::Append {
            message: Box::new(message),
            channel,
            delivery,
            reply,
        };
        if let Err(mpsc::error::SendError(job)) = self.inner.jobs.send(job).await {
            // The sequencer is gone: whoever waits for the outcome still gets one.
            if let Job::Append { reply, .. } = job {
                reply.finish(Err(HubError::ShuttingDown));
            }
            return Err(HubError::ShuttingDown);
        }
        Ok(())
    }

    /// A client's message id as the message's idempotency key, unless exactly-once publish is
    /// off (`dedup_window` zero).
    pub fn client_key(&self, client_message_id: &Option<String>) -> Option<String> {
        if self.inner.config.dedup_window.is_zero() {
            None
        } else {
            client_message_id.clone()
        }
    }

    async fn resume(
        &self,
        conn: &ConnId,
        channel: Arc<ChannelInfo>,
        resume: Resume,
        legacy: bool,
    ) -> Result<Resumed, HubError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::InOrder(InOrder::Resume {
                conn: conn.clone(),
                channel,
                resume,
                legacy,
                limit: self.inner.config.resume_limit,
                reply,
            }))
            .await
            .map_err(|_| HubError::ShuttingDown)?;
        rx.await.map_err(|_| HubError::ShuttingDown)?
    }

    // ---- channel administration (REST) ---------------------------------------------------

    /// Creates a channel with a server-chosen id.
    pub async fn create_channel(
        &self,
        channel: Channel,
        participants: &[String],
    ) -> Result<Channel, HubError> {
        let stored = self
            .inner
            .store
            .create_channel(&channel, participants)
            .await?;
        self.inner.directory.remember(&stored);
        Ok(stored)
    }

    pub async fn update_channel(
        &self,
        id: Uuid,
        update: &ChannelUpdate,
    ) -> Result<Option<Channel>, HubError> {
        let Some(updated) = self.inner.store.update_channel(id, update).await? else {
            return Ok(None);
        };
        self.inner.directory.remember(&updated);
        Ok(Some(updated))
    }

    /// Announces an update (the transport passes the full channel object as `updates`).
    pub async fn announce_update(&self, channel: &Channel, updates: Value) {
        let info = ChannelInfo::from_channel(channel);
        self.event_to_channel(
            info.id,
            &ServerEvent::ChannelUpdated(ChannelUpdated {
                scope: info.scope(),
                updates,
            }),
            None,
        )
        .await;
    }

    pub async fn delete_channel(&self, id: Uuid) -> Result<bool, HubError> {
        let info = self.info_or_bare(id).await;
        let deleted = self.inner.store.delete_channel(id).await?;
        self.inner.directory.forget(id);
        self.removed(Removed::Channel(id));
        self.event_to_channel(
            id,
            &ServerEvent::ChannelDeleted(ChannelNotice {
                scope: info.scope(),
            }),
            None,
        )
        .await;
        Ok(deleted)
    }

    pub async fn clear_channel(&self, id: Uuid) -> Result<u64, HubError> {
        let info = self.info_or_bare(id).await;
        let n = self.inner.store.clear_channel(id).await?;
        self.removed(Removed::Channel(id));
        self.event_to_channel(
            id,
            &ServerEvent::ChannelCleared(ChannelNotice {
                scope: info.scope(),
            }),
            None,
        )
        .await;
        Ok(n)
    }

    pub async fn delete_message(&self, channel: Uuid, message: Uuid) -> Result<bool, HubError> {
        let info = self.info_or_bare(channel).await;
        // What it carried, for the removal hook (its files go with it).
        let stored = match self.inner.removals.get() {
            Some(_) => self
                .inner
                .store
                .get_message(message)
                .await?
                .filter(|m| m.channel_id == channel),
            None => None,
        };
        let deleted = self.inner.store.delete_message(channel, message).await?;
        if let Some(m) = stored.filter(|_| deleted) {
            self.removed(Removed::Message(Box::new(m)));
        }
        self.event_to_channel(
            channel,
            &ServerEvent::MessageDeleted(MessageDeleted {
                message_id: message,
                scope: info.scope(),
            }),
            None,
        )
        .await;
        Ok(deleted)
    }

    /// An event to a channel's connections outside the sequencer (presence, typing, agents'
    /// streams, channel administration). A connection that cannot take it has been handed every
    /// message delivered so far and will get nothing more: its resume point stops there.
    async fn event_to_channel(&self, channel: Uuid, event: &ServerEvent, except: Option<&ConnId>) {
        let refused = self.inner.fanout.to_channel(channel, event, except).await;
        self.refused_now(refused);
    }

    async fn event_to_legacy_members(
        &self,
        channel: Uuid,
        event: &ServerEvent,
        except: Option<&ConnId>,
    ) {
        let refused = self
            .inner
            .fanout
            .to_legacy_members(channel, event, except)
            .await;
        self.refused_now(refused);
    }

    fn refused_now(&self, refused: Vec<ConnId>) {
        if refused.is_empty() {
            return;
        }
        let delivered = &self.inner.delivered;
        let mut presence = self.inner.presence.lock().unwrap();
        for conn in refused {
            presence.refused(&conn, |c| delivered.upto(c));
        }
    }

    /// Channel info for events about channels that may not exist (yet, or any more); a channel
    /// not stored yet keeps the name it was joined by.
    async fn info_or_bare(&self, id: Uuid) -> ChannelInfo {
        match self.inner.directory.find(id).await {
            Ok(Some(c)) => c.as_ref().clone(),
            _ => ChannelInfo {
                id,
                server_id: self.inner.config.default_server,
                kind: channel_type::GROUP.into(),
                alias: self.inner.presence.lock().unwrap().channel_name(id),
            },
        }
    }
}

fn reported(point: ResumePoint) -> ResumedFrom {
    match point {
        ResumePoint::Since(ms) => ResumedFrom::Since(ms),
        ResumePoint::AfterMessage(id) => ResumedFrom::LastMessageId(id),
    }
}

/// How often client keys past the window are forgotten (a bounded sweep each time).
const EXPIRE_KEYS_EVERY: Duration = Duration::from_secs(600);
/// Keys forgotten per statement, so a sweep never holds the database for long.
const EXPIRE_KEYS_STEP: u32 = 5000;

/// Keeps the unique index of client keys to the window's keys; ends with the store.
async fn expire_client_keys(store: std::sync::Weak<dyn Store>, window: Duration) {
    let mut tick = tokio::time::interval(EXPIRE_KEYS_EVERY.min(window));
    loop {
        tick.tick().await;
        let Some(store) = store.upgrade() else {
            return;
        };
        let before = now_ms() - window.as_millis() as i64;
        let mut total = 0;
        loop {
            match store.expire_client_keys(before, EXPIRE_KEYS_STEP).await {
                Ok(n) => {
                    total += n;
                    if n < EXPIRE_KEYS_STEP as u64 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot expire client message ids");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::debug!(
                expired = total,
                "client message ids past the window forgotten"
            );
        }
    }
}

fn presence_event(entity: Uuid, username: Option<String>, channel: &ChannelInfo) -> PresenceEvent {
    PresenceEvent {
        user_id: entity,
        entity_id: entity,
        username,
        scope: channel.scope(),
        timestamp: now_ms(),
    }
}

/// Client metadata merged with fields the server adds, as a JSON object.
pub fn merge_metadata(base: Option<&Value>, extra: Map<String, Value>) -> Value {
    let mut out = base.and_then(Value::as_object).cloned().unwrap_or_default();
    out.extend(extra);
    Value::Object(out)
}
