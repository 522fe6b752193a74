//! Several confab nodes as one cluster, over Redis pub/sub.
//!
//! Every node publishes on one Redis channel (`<prefix>:bus`):
//! * the messages it committed ([`ClusterLink::publish_commits`], called by its sequencer), which
//!   every other node hands to its hub; the hub's ordering gate delivers them in `seq` order,
//!   merged with its own, and fills any gap from the shared database;
//! * channel events (presence, typing, agent stream and control events, channel updates) that
//!   go through [`ClusterFanOut`]: delivered to local members at once and relayed to the others.
//!
//! Why our own pub/sub rather than socketioxide's Redis adapter: a message must reach each node's
//! members in the cluster-wide commit order, and a node must notice what it missed (a node that
//! died between commit and publish, a Redis outage) and fetch it from storage. That needs the
//! sequence numbers in the hub's hands, not room broadcasts replayed by an adapter.
//!
//! Redis going away does not stop a node: local members are still served, publishing is skipped
//! while the link is down (health reports it), and the hub's periodic check against the
//! database delivers what other nodes committed meanwhile. The subscriber reconnects with backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use confab_hub::{ChannelInfo, ClusterLink, Committed, ConnId, FanOut, Hub};
use confab_protocol::ServerEvent;
use confab_protocol::outbound::Relayed;
use confab_store::StoredMessage;
use futures::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub redis_url: String,
    /// Namespaces the Redis channel, so several clusters (or tests) can share one Redis.
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

/// This node's side of the cluster.
pub struct RedisCluster {
    config: ClusterConfig,
    client: redis::Client,
    /// Created lazily (and again by the manager itself after a failure).
    publisher: OnceCell<ConnectionManager>,
    /// The subscriber is connected and subscribed.
    subscribed: AtomicBool,
    /// The last publish worked.
    publishing: AtomicBool,
    published: AtomicU64,
    received: AtomicU64,
}

impl RedisCluster {
    pub fn new(config: ClusterConfig) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(config.redis_url.as_str())?;
        Ok(Arc::new(RedisCluster {
            config,
            client,
            publisher: OnceCell::new(),
            subscribed: AtomicBool::new(false),
            publishing: AtomicBool::new(true),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }))
    }

    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    fn bus(&self) -> String {
        format!("{}:bus", self.config.prefix)
    }

    /// Whether the link to the other nodes works both ways.
    pub fn healthy(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed) && self.publishing.load(Ordering::Relaxed)
    }

    /// For `/health`: node, link state, counters.
    pub fn status(&self) -> Value {
        serde_json::json!({
            "node": self.config.node_id,
            "redis": if self.healthy() { "ok" } else { "degraded" },
            "subscribed": self.subscribed.load(Ordering::Relaxed),
            "publishing": self.publishing.load(Ordering::Relaxed),
            "published": self.published.load(Ordering::Relaxed),
            "received": self.received.load(Ordering::Relaxed),
        })
    }

    /// Wraps this node's own fan-out so channel events reach every node.
    pub fn fanout(self: &Arc<Self>, local: Arc<dyn FanOut>) -> Arc<dyn FanOut> {
        Arc::new(ClusterFanOut {
            cluster: self.clone(),
            local,
        })
    }

    async fn publisher(&self) -> Result<ConnectionManager, redis::RedisError> {
        self.publisher
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Duration::from_millis(500))
                    .set_response_timeout(Duration::from_millis(500))
                    .set_number_of_retries(1)
                    .set_max_delay(1000);
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .cloned()
    }

    async fn publish(&self, envelope: &Envelope) {
        let text = match serde_json::to_string(envelope) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode for the cluster");
                return;
            }
        };
        let outcome = match self.publisher().await {
            Ok(mut conn) => conn.publish::<_, _, ()>(self.bus(), text).await,
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

    /// Checks the publishing connection (after Redis came back, a node with nothing to say would
    /// otherwise report it down until it next publishes).
    async fn probe_publisher(&self) {
        let ok = match self.publisher().await {
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

    /// Receives what the other nodes publish, for as long as the process runs: commits go to
    /// the hub, events to this node's connections. Reconnects with backoff.
    pub fn start_receiving(self: &Arc<Self>, hub: Hub, local: Arc<dyn FanOut>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match me.receive(&hub, &local).await {
                    Ok(()) => {}
                    Err(e) => {
                        if me.subscribed.swap(false, Ordering::Relaxed) {
                            tracing::warn!(node = %me.config.node_id, error = %e, "lost the cluster subscription; retrying");
                        }
                    }
                }
                me.subscribed.store(false, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
    }

    async fn receive(&self, hub: &Hub, local: &Arc<dyn FanOut>) -> Result<(), redis::RedisError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.bus()).await?;
        self.subscribed.store(true, Ordering::Relaxed);
        tracing::info!(node = %self.config.node_id, bus = %self.bus(), "subscribed to the cluster");
        self.probe_publisher().await;
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let Ok(text) = msg.get_payload::<String>() else {
                continue;
            };
            let envelope: Envelope = match serde_json::from_str(&text) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable cluster message ignored");
                    continue;
                }
            };
            self.received.fetch_add(1, Ordering::Relaxed);
            match envelope {
                Envelope::Commits { node, .. } | Envelope::Event { node, .. }
                    if node == self.config.node_id => {}
                Envelope::Commits { commits, .. } => {
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
                    let event = ServerEvent::Relayed(Relayed { name, payload });
                    if legacy {
                        local.to_legacy_members(channel, &event, None).await;
                    } else {
                        local.to_channel(channel, &event, None).await;
                    }
                }
            }
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::IoError,
            "the subscription ended",
        )))
    }
}

#[async_trait]
impl ClusterLink for RedisCluster {
    async fn publish_commits(&self, commits: &[Arc<Committed>]) {
        let envelope = Envelope::Commits {
            node: self.config.node_id.clone(),
            commits: commits
                .iter()
                .map(|c| WireCommit {
                    message: c.message.clone(),
                    channel: c.channel.as_ref().clone(),
                })
                .collect(),
        };
        self.publish(&envelope).await;
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
            .publish(&Envelope::Event {
                node: self.cluster.config.node_id.clone(),
                channel,
                legacy,
                name: event.name().to_owned(),
                payload,
            })
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
