//! Several confab nodes as one cluster, over Redis sharded pub/sub.
//!
//! Each channel has its own Redis pub/sub channel, `<prefix>:{<channel id>}` (the hash tag puts
//! it in one slot, so on a Redis Cluster channels spread over the shards). A node
//! `SSUBSCRIBE`s to a channel while it has members there (the hub tells it, see
//! [`ClusterLink::interest`]) and `SPUBLISH`es there:
//! * the messages it committed ([`ClusterLink::publish_commits`], called by its sequencer), which
//!   every subscribed node hands to its hub; the hub's ordering gate delivers them in order,
//!   merged with its own, and fills any gap from the shared database;
//! * channel events (presence, typing, agent stream and control events, channel updates) that
//!   go through [`ClusterFanOut`]: delivered to local members at once and relayed to the others.
//!
//! A node with no member in a channel receives nothing of it. There is no node-wide channel:
//! everything that crosses nodes belongs to a channel (the log stream is per node).
//!
//! The same code runs on one Redis and on a Redis Cluster ([`ClusterConfig::redis_cluster`], or
//! several comma-separated seed URLs). Presence ([`presence`]) and agent run leases ([`lease`])
//! live in the same Redis.
//!
//! Why our own pub/sub rather than socketioxide's Redis adapter: a message must reach each node's
//! members in commit order, and a node must notice what it missed (a node that died between
//! commit and publish, a Redis outage) and fetch it from storage. That needs the sequence
//! numbers in the hub's hands, not room broadcasts replayed by an adapter.
//!
//! Redis going away does not stop a node: local members are still served, publishing is skipped
//! while the link is down (health reports it), and the hub's periodic check against the
//! database delivers what other nodes committed meanwhile. The subscriber reconnects with
//! backoff and subscribes again to every channel it wants.

pub mod lease;
pub mod presence;
mod redis_io;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use confab_hub::{ChannelInfo, ClusterLink, Committed, ConnId, FanOut, Hub};
use confab_protocol::ServerEvent;
use confab_protocol::outbound::Relayed;
use confab_store::StoredMessage;
use redis::{PushInfo, PushKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, OnceCell, mpsc, watch};
use uuid::Uuid;

pub use lease::RedisRunLeases;
pub use presence::RedisPresence;
use redis_io::{Conn, Subscriber, Target};

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// One Redis URL, or a Redis Cluster's seed nodes separated by commas.
    pub redis_url: String,
    /// Treat a single URL as a Redis Cluster seed node.
    pub redis_cluster: bool,
    /// Namespaces the Redis keys and channels, so several clusters (or tests) share one Redis.
    pub prefix: String,
    /// This node's name in logs, health and metrics.
    pub node_id: String,
}

/// What travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Envelope {
    Commits {
        node: String,
        commits: Vec<WireCommit>,
    },
    Event {
        node: String,
        channel: Uuid,
        legacy: bool,
        name: String,
        payload: Value,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct WireCommit {
    message: StoredMessage,
    channel: ChannelInfo,
}

/// How long a join waits for its channel's subscription before going on without it.
const READY_WAIT: Duration = Duration::from_secs(1);
/// How often the subscriber connection is checked while nothing happens.
const SUBSCRIBER_PING: Duration = Duration::from_secs(5);
/// How often a publisher that failed is probed again while the subscription holds.
const PUBLISHER_RETRY: Duration = Duration::from_millis(500);

/// The channels this node wants, and those it is subscribed to.
#[derive(Default)]
struct Interest {
    wanted: HashSet<Uuid>,
    subscribed: HashSet<Uuid>,
}

/// This node's side of the cluster.
pub struct RedisCluster {
    config: ClusterConfig,
    target: Target,
    /// Created lazily (and reconnected by the connection itself after a failure).
    commands: OnceCell<Conn>,
    interest: Mutex<Interest>,
    /// `wanted` changed.
    changed: Notify,
    /// The subscriber connection closed (one Redis).
    lost: Notify,
    /// Bumped whenever `subscribed` changed.
    settled: watch::Sender<u64>,
    /// The subscriber is connected and subscribed.
    subscribed: AtomicBool,
    /// The last publish worked.
    publishing: AtomicBool,
    published: AtomicU64,
    received: AtomicU64,
    received_commits: AtomicU64,
}

impl RedisCluster {
    pub fn new(config: ClusterConfig) -> Result<Arc<Self>, redis::RedisError> {
        let target = Target::parse(&config.redis_url, config.redis_cluster)?;
        Ok(Arc::new(RedisCluster {
            config,
            target,
            commands: OnceCell::new(),
            interest: Mutex::default(),
            changed: Notify::new(),
            lost: Notify::new(),
            settled: watch::Sender::new(0),
            subscribed: AtomicBool::new(false),
            publishing: AtomicBool::new(true),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            received_commits: AtomicU64::new(0),
        }))
    }

    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    pub fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// The pub/sub channel of a confab channel: `<prefix>:{<id>}`, one slot per channel.
    pub fn shard_channel(&self, channel: Uuid) -> String {
        format!("{}:{{{}}}", self.config.prefix, channel)
    }

    /// Whether the link to the other nodes works both ways.
    pub fn healthy(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed) && self.publishing.load(Ordering::Relaxed)
    }

    /// For `/health`: node, link state, counters.
    pub fn status(&self) -> Value {
        let (wanted, subscribed) = {
            let i = self.interest.lock().unwrap();
            (i.wanted.len(), i.subscribed.len())
        };
        serde_json::json!({
            "node": self.config.node_id,
            "redis": if self.healthy() { "ok" } else { "degraded" },
            "mode": if self.target.is_cluster() { "cluster" } else { "single" },
            "subscribed": self.subscribed.load(Ordering::Relaxed),
            "publishing": self.publishing.load(Ordering::Relaxed),
            "published": self.published.load(Ordering::Relaxed),
            "received": self.received.load(Ordering::Relaxed),
            "receivedCommits": self.received_commits.load(Ordering::Relaxed),
            "channelsWanted": wanted,
            "channelsSubscribed": subscribed,
        })
    }

    /// Wraps this node's own fan-out so channel events reach every node.
    pub fn fanout(self: &Arc<Self>, local: Arc<dyn FanOut>) -> Arc<dyn FanOut> {
        Arc::new(ClusterFanOut {
            cluster: self.clone(),
            local,
        })
    }

    /// The command connection (publishing, presence, leases).
    pub(crate) async fn conn(&self) -> Result<Conn, redis::RedisError> {
        self.commands
            .get_or_try_init(|| self.target.commands())
            .await
            .cloned()
    }

    async fn publish(&self, channel: Uuid, envelope: &Envelope) {
        // The sender's name first: a node drops its own messages (it receives them too, when it
        // has members in the channel) without decoding them.
        let text = match serde_json::to_string(envelope) {
            Ok(t) => format!("{}\n{t}", self.config.node_id),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode for the cluster");
                return;
            }
        };
        let outcome = match self.conn().await {
            Ok(mut conn) => {
                redis::cmd("SPUBLISH")
                    .arg(self.shard_channel(channel))
                    .arg(text)
                    .exec_async(&mut conn)
                    .await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                self.published.fetch_add(1, Ordering::Relaxed);
                if !self.publishing.swap(true, Ordering::Relaxed) {
                    tracing::info!(node = %self.config.node_id, "publishing to the cluster again");
                }
            }
            Err(e) => {
                if self.publishing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(node = %self.config.node_id, error = %e, "cannot publish to the cluster; serving local members, other nodes catch up from storage");
                }
            }
        }
    }

    /// Checks the command connection (after Redis came back, a node with nothing to say would
    /// otherwise report it down until it next publishes).
    async fn probe_publisher(&self) {
        let ok = match self.conn().await {
            Ok(mut conn) => redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok(),
            Err(_) => false,
        };
        if ok && !self.publishing.swap(true, Ordering::Relaxed) {
            tracing::info!(node = %self.config.node_id, "publishing to the cluster again");
        }
    }

    /// Receives what the other nodes publish in the channels this node wants, for as long as
    /// the process runs: commits go to the hub, events to this node's connections.
    pub fn start_receiving(self: &Arc<Self>, hub: Hub, local: Arc<dyn FanOut>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<PushInfo>();
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(push) = rx.recv().await {
                me.pushed(push, &hub, &local).await;
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match me.target.subscriber(tx.clone()).await {
                    Ok(mut sub) => {
                        if let Err(e) = me.keep_subscribed(&mut sub).await {
                            tracing::warn!(node = %me.config.node_id, error = %e, "lost the cluster subscription; retrying");
                        } else {
                            tracing::warn!(node = %me.config.node_id, "the cluster subscription closed; retrying");
                        }
                        backoff = Duration::from_millis(100);
                    }
                    Err(e) => {
                        if me.subscribed.swap(false, Ordering::Relaxed) {
                            tracing::warn!(node = %me.config.node_id, error = %e, "cannot reach Redis for the cluster subscription; retrying");
                        }
                    }
                }
                me.subscribed.store(false, Ordering::Relaxed);
                me.interest.lock().unwrap().subscribed.clear();
                me.settled.send_modify(|n| *n += 1);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
    }

    /// Holds the wanted subscriptions on one connection until it fails.
    async fn keep_subscribed(&self, sub: &mut Subscriber) -> Result<(), redis::RedisError> {
        self.interest.lock().unwrap().subscribed.clear();
        self.reconcile(sub).await?;
        self.subscribed.store(true, Ordering::Relaxed);
        self.settled.send_modify(|n| *n += 1);
        tracing::info!(node = %self.config.node_id, cluster = self.target.is_cluster(), "subscribed to the cluster");
        self.probe_publisher().await;
        loop {
            // A publisher that failed its probe (Redis just back, the node busy) is probed again
            // soon, not only at the next publish: health must not stay degraded on a quiet node.
            let publishing = self.publishing.load(Ordering::Relaxed);
            let tick = if publishing {
                SUBSCRIBER_PING
            } else {
                PUBLISHER_RETRY
            };
            tokio::select! {
                _ = self.changed.notified() => self.reconcile(sub).await?,
                _ = self.lost.notified() => return Ok(()),
                _ = tokio::time::sleep(tick) => {
                    sub.ping().await?;
                    if !self.publishing.load(Ordering::Relaxed) {
                        self.probe_publisher().await;
                    }
                }
            }
        }
    }

    /// Subscribes to the channels wanted and not subscribed, unsubscribes from the others.
    async fn reconcile(&self, sub: &mut Subscriber) -> Result<(), redis::RedisError> {
        loop {
            let next = {
                let i = self.interest.lock().unwrap();
                i.wanted
                    .difference(&i.subscribed)
                    .next()
                    .map(|c| (*c, true))
                    .or_else(|| {
                        i.subscribed
                            .difference(&i.wanted)
                            .next()
                            .map(|c| (*c, false))
                    })
            };
            let Some((channel, subscribe)) = next else {
                return Ok(());
            };
            let name = self.shard_channel(channel);
            if subscribe {
                sub.ssubscribe(&name).await?;
                self.interest.lock().unwrap().subscribed.insert(channel);
            } else {
                sub.sunsubscribe(&name).await?;
                self.interest.lock().unwrap().subscribed.remove(&channel);
            }
            self.settled.send_modify(|n| *n += 1);
        }
    }

    async fn pushed(&self, push: PushInfo, hub: &Hub, local: &Arc<dyn FanOut>) {
        match push.kind {
            PushKind::SMessage | PushKind::Message => {}
            PushKind::Disconnection => {
                // A cluster connection subscribes again by itself.
                if !self.target.is_cluster() {
                    self.lost.notify_one();
                }
                return;
            }
            _ => return,
        }
        let Some(Ok(text)) = push.data.last().map(redis::from_redis_value::<String>) else {
            return;
        };
        let Some((node, text)) = text.split_once('\n') else {
            return;
        };
        if node == self.config.node_id {
            return;
        }
        let envelope: Envelope = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable cluster message ignored");
                return;
            }
        };
        match envelope {
            Envelope::Commits { commits, .. } => {
                self.received.fetch_add(1, Ordering::Relaxed);
                self.received_commits
                    .fetch_add(commits.len() as u64, Ordering::Relaxed);
                let commits = commits
                    .into_iter()
                    .map(|c| {
                        Arc::new(Committed {
                            message: c.message,
                            channel: Arc::new(c.channel),
                            repeat: false,
                        })
                    })
                    .collect();
                hub.remote_commits(commits).await;
            }
            Envelope::Event {
                channel,
                legacy,
                name,
                payload,
                ..
            } => {
                self.received.fetch_add(1, Ordering::Relaxed);
                let event = ServerEvent::Relayed(Relayed { name, payload });
                if legacy {
                    local.to_legacy_members(channel, &event, None).await;
                } else {
                    local.to_channel(channel, &event, None).await;
                }
            }
        }
    }
}

#[async_trait]
impl ClusterLink for RedisCluster {
    async fn publish_commits(&self, commits: &[Arc<Committed>]) {
        // One message per channel, each to the nodes that want that channel; in commit order
        // within each channel.
        let mut by_channel: Vec<(Uuid, Vec<WireCommit>)> = Vec::new();
        for c in commits {
            let wire = WireCommit {
                message: c.message.clone(),
                channel: c.channel.as_ref().clone(),
            };
            match by_channel.iter_mut().find(|(id, _)| *id == c.channel.id) {
                Some((_, list)) => list.push(wire),
                None => by_channel.push((c.channel.id, vec![wire])),
            }
        }
        let node = &self.config.node_id;
        futures::future::join_all(by_channel.into_iter().map(|(channel, commits)| async move {
            let envelope = Envelope::Commits {
                node: node.clone(),
                commits,
            };
            self.publish(channel, &envelope).await;
        }))
        .await;
    }

    fn interest(&self, channel: Uuid, wanted: bool) {
        let changed = {
            let mut i = self.interest.lock().unwrap();
            if wanted {
                i.wanted.insert(channel)
            } else {
                i.wanted.remove(&channel)
            }
        };
        if changed {
            self.changed.notify_one();
        }
    }

    async fn ready(&self, channel: Uuid) {
        let mut settled = self.settled.subscribe();
        let _ = tokio::time::timeout(READY_WAIT, async {
            loop {
                {
                    let i = self.interest.lock().unwrap();
                    if !self.subscribed.load(Ordering::Relaxed)
                        || i.subscribed.contains(&channel)
                        || !i.wanted.contains(&channel)
                    {
                        return;
                    }
                }
                if settled.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }
}

/// Channel events to this node's members at once, and to every other node's through Redis.
/// Connections are always local: per-connection calls stay on this node.
struct ClusterFanOut {
    cluster: Arc<RedisCluster>,
    local: Arc<dyn FanOut>,
}

impl ClusterFanOut {
    async fn relay(&self, channel: Uuid, event: &ServerEvent, legacy: bool) {
        let payload = match serde_json::to_value(event) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an event for the cluster");
                return;
            }
        };
        self.cluster
            .publish(
                channel,
                &Envelope::Event {
                    node: self.cluster.config.node_id.clone(),
                    channel,
                    legacy,
                    name: event.name().to_owned(),
                    payload,
                },
            )
            .await;
    }
}

#[async_trait]
impl FanOut for ClusterFanOut {
    async fn to_channel(
        &self,
        channel: Uuid,
        event: &ServerEvent,
        except: Option<&ConnId>,
    ) -> Vec<ConnId> {
        let refused = self.local.to_channel(channel, event, except).await;
        self.relay(channel, event, false).await;
        refused
    }

    async fn to_legacy_members(
        &self,
        channel: Uuid,
        event: &ServerEvent,
        except: Option<&ConnId>,
    ) -> Vec<ConnId> {
        let refused = self.local.to_legacy_members(channel, event, except).await;
        self.relay(channel, event, true).await;
        refused
    }

    async fn to_conn(&self, conn: &ConnId, event: &ServerEvent) -> bool {
        self.local.to_conn(conn, event).await
    }

    async fn join(&self, conn: &ConnId, channel: Uuid, legacy: bool) {
        self.local.join(conn, channel, legacy).await;
    }

    async fn leave(&self, conn: &ConnId, channel: Uuid) {
        self.local.leave(conn, channel).await;
    }
}
