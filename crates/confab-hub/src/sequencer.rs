//! The one task that commits messages and fans them out.
//!
//! Jobs queue up while a commit is in flight; the next turn takes everything queued (up to a
//! bound) and commits it in one transaction: group commit, no transaction per message. Only
//! after the commit does it broadcast, in commit order, so every member of a channel sees
//! messages in the order they were stored, and acknowledgements never precede durability.
//! Resuming joins go through the same queue, which makes replay and live delivery seamless:
//! history is read up to the last message already broadcast, then the connection joins the room.
//!
//! Delivery goes through a gate that releases messages strictly in `seq` order. On one node that
//! is commit order and nothing waits. In a cluster, messages other nodes committed arrive over
//! the [`ClusterLink`](crate::ClusterLink) and are merged in by `seq`; a gap (a node that died
//! between its commit and its publish, or a link that was down) is filled from storage after a
//! short wait, and a periodic check against the store's last `seq` catches up on anything the
//! link never carried. Each message is delivered once, in the same order on every node.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use confab_protocol::ServerEvent;
use confab_protocol::outbound::{AckReply, RecoveryReport};
use confab_store::{Cursor, NewMessage, Store, StoredMessage};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::delivery;
use crate::directory::ChannelInfo;
use crate::fanout::{ConnId, FanOut};
use crate::{ClusterLink, Committed, HubError};

/// Who gets what once a message is committed.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// From a socket client: the room but the sender gets the broadcast; the sender gets its own
    /// copy with `clientMessageId`, then `messageAck` (and seed 000's `ack`).
    FromConnection {
        origin: ConnId,
        client_message_id: Option<String>,
        legacy: bool,
    },
    /// From REST or an agent: the whole room gets the broadcast.
    ToRoom,
    /// Stored and seen by agents, but not broadcast (a sessions-API user message, as ElizaOS
    /// does it).
    Quiet,
}

/// Called by the sequencer once the message is committed and delivered (or failed). It runs on
/// the sequencer task, so it must only hand work off (answer an ack, emit an event).
pub type CommitCallback = Box<dyn FnOnce(Result<&Committed, &HubError>) + Send>;

/// How the submitter learns the outcome.
pub enum Reply {
    /// Someone awaits it.
    Wait(oneshot::Sender<Result<Committed, HubError>>),
    /// Call this; nobody waits (socket sends keep pipelining).
    Callback(CommitCallback),
}

impl Reply {
    pub(crate) fn finish(self, outcome: Result<&Committed, HubError>) {
        match self {
            Reply::Wait(tx) => {
                let _ = tx.send(outcome.cloned());
            }
            Reply::Callback(f) => f(outcome.as_ref().copied()),
        }
    }
}

pub(crate) enum Job {
    Append {
        message: Box<NewMessage>,
        channel: Arc<ChannelInfo>,
        delivery: Delivery,
        reply: Reply,
    },
    Resume {
        conn: ConnId,
        channel: Arc<ChannelInfo>,
        from: Cursor,
        legacy: bool,
        limit: u32,
        reply: oneshot::Sender<Result<RecoveryReport, HubError>>,
    },
    /// Messages other nodes committed.
    Remote(Vec<Arc<Committed>>),
}

/// A committed message waiting for its turn at the gate.
enum Waiting {
    Message {
        committed: Arc<Committed>,
        delivery: Delivery,
        /// Set for this node's own messages: someone learns the outcome, agents see it.
        reply: Option<Reply>,
    },
    /// A sequence number with no message any more (deleted before this node saw it).
    Gone,
}

/// How long a gap may stay open before it is filled from storage.
const GAP_WAIT: Duration = Duration::from_millis(150);
/// How often a cluster node compares what it delivered with the store's last `seq`.
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Sequencer {
    pub store: Arc<dyn Store>,
    pub fanout: Arc<dyn FanOut>,
    /// The highest sequence number broadcast so far.
    pub broadcast_upto: Arc<AtomicI64>,
    pub max_batch: usize,
    pub committed_tx: tokio::sync::broadcast::Sender<Arc<Committed>>,
    pub cluster: Option<Arc<dyn ClusterLink>>,
}

/// The ordering gate's state, owned by the sequencer task.
#[derive(Default)]
struct Gate {
    waiting: BTreeMap<i64, Waiting>,
    /// When the current gap in `waiting` was first seen.
    gap_since: Option<Instant>,
    /// When the store was first seen ahead of what this node delivered (nothing waiting).
    lag_since: Option<Instant>,
}

impl Gate {
    fn behind(&self) -> bool {
        self.gap_since.is_some() || self.lag_since.is_some()
    }
}

impl Sequencer {
    pub async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(self.max_batch);
        let mut last_created_at = 0i64;
        let mut gate = Gate::default();
        let mut next_check = Instant::now() + CATCH_UP_EVERY;
        loop {
            let received = if self.cluster.is_none() {
                rx.recv_many(&mut jobs, self.max_batch).await
            } else {
                tokio::select! {
                    n = rx.recv_many(&mut jobs, self.max_batch) => n,
                    _ = tokio::time::sleep_until(next_check) => {
                        self.check(&mut gate).await;
                        self.release(&mut gate).await;
                        next_check = Instant::now()
                            + if gate.behind() { GAP_WAIT / 3 } else { CATCH_UP_EVERY };
                        continue;
                    }
                }
            };
            if received == 0 {
                break;
            }
            // Creation times never go backwards, so `since` and `seq` agree on order.
            let now = confab_protocol::now_ms();
            last_created_at = last_created_at.max(now);
            let mut batch = Vec::new();
            for job in jobs.iter_mut() {
                if let Job::Append { message, .. } = job {
                    message.created_at = last_created_at;
                    batch.push(NewMessage::clone(message));
                }
            }
            let mut results = self.commit(batch).await.into_iter();
            let mut ours = Vec::new();
            for job in jobs.drain(..) {
                match job {
                    Job::Append {
                        channel,
                        delivery,
                        reply,
                        ..
                    } => match results.next() {
                        Some(Ok(stored)) => {
                            let committed = Arc::new(Committed {
                                message: stored,
                                channel,
                            });
                            ours.push(committed.clone());
                            gate.waiting.insert(
                                committed.message.seq,
                                Waiting::Message {
                                    committed,
                                    delivery,
                                    reply: Some(reply),
                                },
                            );
                        }
                        Some(Err(e)) => reply.finish(Err(e)),
                        None => {
                            reply.finish(Err(HubError::Internal("commit lost a message".into())))
                        }
                    },
                    Job::Resume {
                        conn,
                        channel,
                        from,
                        legacy,
                        limit,
                        reply,
                    } => {
                        // Everything deliverable goes out first, so the replay (read up to the
                        // last delivered message) and live delivery meet without a gap.
                        self.release(&mut gate).await;
                        let report = self.resume(&conn, &channel, from, legacy, limit).await;
                        let _ = reply.send(report);
                    }
                    Job::Remote(commits) => {
                        let upto = self.broadcast_upto.load(Ordering::Acquire);
                        for committed in commits {
                            if committed.message.seq > upto {
                                gate.waiting.entry(committed.message.seq).or_insert(
                                    Waiting::Message {
                                        committed,
                                        delivery: Delivery::ToRoom,
                                        reply: None,
                                    },
                                );
                            }
                        }
                    }
                }
            }
            if let Some(cluster) = &self.cluster
                && !ours.is_empty()
            {
                cluster.publish_commits(&ours).await;
            }
            self.release(&mut gate).await;
        }
        tracing::debug!("sequencer stopped");
    }

    /// Delivers every waiting message whose turn has come.
    async fn release(&self, gate: &mut Gate) {
        let mut upto = self.broadcast_upto.load(Ordering::Acquire);
        while let Some(entry) = gate.waiting.first_entry() {
            let seq = *entry.key();
            if seq <= upto {
                entry.remove();
                continue;
            }
            if seq != upto + 1 {
                break;
            }
            match entry.remove() {
                Waiting::Message {
                    committed,
                    delivery,
                    reply,
                } => {
                    self.deliver(&committed, &delivery).await;
                    if let Some(reply) = reply {
                        reply.finish(Ok(&committed));
                        let _ = self.committed_tx.send(committed);
                    }
                }
                Waiting::Gone => {}
            }
            upto = seq;
            self.broadcast_upto.store(upto, Ordering::Release);
        }
        if gate.waiting.is_empty() {
            gate.gap_since = None;
        } else {
            gate.gap_since.get_or_insert_with(Instant::now);
        }
    }

    /// Cluster mode: fills a gap that stayed open, or catches up with the store when messages
    /// were committed that no node told us about.
    async fn check(&self, gate: &mut Gate) {
        let upto = self.broadcast_upto.load(Ordering::Acquire);
        let (target, since) = match gate.waiting.first_key_value() {
            Some((&first, _)) => (first - 1, *gate.gap_since.get_or_insert_with(Instant::now)),
            None => match self.store.last_seq().await {
                Ok(last) if last > upto => (last, *gate.lag_since.get_or_insert_with(Instant::now)),
                Ok(_) => {
                    gate.lag_since = None;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the last sequence number");
                    return;
                }
            },
        };
        if since.elapsed() < GAP_WAIT {
            return;
        }
        match self.store.messages_in_seq_range(upto + 1, target).await {
            Ok(found) => {
                tracing::info!(
                    from = upto + 1,
                    to = target,
                    found = found.len(),
                    "filling a delivery gap from storage"
                );
                let mut channels: HashMap<uuid::Uuid, Option<Arc<ChannelInfo>>> = HashMap::new();
                let mut next = upto + 1;
                for m in found {
                    for missing in next..m.seq {
                        gate.waiting.entry(missing).or_insert(Waiting::Gone);
                    }
                    next = m.seq + 1;
                    let channel = match channels.get(&m.channel_id) {
                        Some(c) => c.clone(),
                        None => {
                            let c = self
                                .store
                                .get_channel(m.channel_id)
                                .await
                                .ok()
                                .flatten()
                                .map(|c| Arc::new(ChannelInfo::from_channel(&c)));
                            channels.insert(m.channel_id, c.clone());
                            c
                        }
                    };
                    let seq = m.seq;
                    gate.waiting.entry(seq).or_insert(match channel {
                        Some(channel) => Waiting::Message {
                            committed: Arc::new(Committed {
                                message: m,
                                channel,
                            }),
                            delivery: Delivery::ToRoom,
                            reply: None,
                        },
                        None => Waiting::Gone,
                    });
                }
                for missing in next..=target {
                    gate.waiting.entry(missing).or_insert(Waiting::Gone);
                }
                gate.gap_since = None;
                gate.lag_since = None;
            }
            Err(e) => tracing::warn!(error = %e, "cannot fill a delivery gap"),
        }
    }

    /// One transaction for the batch; if it fails, each message alone, so one bad message
    /// (a channel deleted meanwhile, a duplicate id) fails only itself.
    async fn commit(&self, batch: Vec<NewMessage>) -> Vec<Result<StoredMessage, HubError>> {
        if batch.is_empty() {
            return Vec::new();
        }
        match self.store.append_messages(&batch).await {
            Ok(stored) => stored.into_iter().map(Ok).collect(),
            Err(e) if batch.len() == 1 => vec![Err(HubError::from(e))],
            Err(e) => {
                tracing::warn!(error = %e, size = batch.len(), "batch commit failed; committing one by one");
                let mut out = Vec::with_capacity(batch.len());
                for m in batch {
                    out.push(
                        self.store
                            .append_messages(std::slice::from_ref(&m))
                            .await
                            .map_err(HubError::from)
                            .and_then(|mut v| {
                                v.pop()
                                    .ok_or_else(|| HubError::Internal("empty commit".into()))
                            }),
                    );
                }
                out
            }
        }
    }

    async fn deliver(&self, c: &Committed, delivery: &Delivery) {
        let message = &c.message;
        let channel = &c.channel;
        let payload = delivery::broadcast(message, channel);
        match delivery {
            Delivery::FromConnection {
                origin,
                client_message_id,
                legacy,
            } => {
                let legacy_event = ServerEvent::LegacyMessage(delivery::legacy(message, channel));
                self.fanout
                    .to_legacy_members(channel.id, &legacy_event, Some(origin))
                    .await;
                let mut own = payload.clone();
                self.fanout
                    .to_channel(
                        channel.id,
                        &ServerEvent::MessageBroadcast(payload),
                        Some(origin),
                    )
                    .await;
                own.client_message_id = client_message_id.clone();
                self.fanout
                    .to_conn(origin, &ServerEvent::MessageBroadcast(own))
                    .await;
                self.fanout
                    .to_conn(
                        origin,
                        &ServerEvent::MessageAck(delivery::ack(
                            message,
                            channel,
                            client_message_id.clone(),
                        )),
                    )
                    .await;
                if *legacy {
                    let mut ack = AckReply::failure("");
                    ack.success = true;
                    ack.error = None;
                    ack.message_id = Some(message.id);
                    self.fanout
                        .to_conn(origin, &ServerEvent::LegacyAck(ack))
                        .await;
                }
            }
            Delivery::ToRoom => {
                let legacy_event = ServerEvent::LegacyMessage(delivery::legacy(message, channel));
                self.fanout
                    .to_legacy_members(channel.id, &legacy_event, None)
                    .await;
                self.fanout
                    .to_channel(channel.id, &ServerEvent::MessageBroadcast(payload), None)
                    .await;
            }
            Delivery::Quiet => {}
        }
    }

    async fn resume(
        &self,
        conn: &ConnId,
        channel: &ChannelInfo,
        from: Cursor,
        legacy: bool,
        limit: u32,
    ) -> Result<RecoveryReport, HubError> {
        let upto = self.broadcast_upto.load(Ordering::Acquire);
        tracing::debug!(%conn, channel = %channel.id, ?from, upto, limit, "resuming");
        // One more than the limit tells whether everything fitted.
        let mut missed = self
            .store
            .messages_after(channel.id, from, upto, limit.saturating_add(1))
            .await;
        let complete = match &missed {
            Ok(m) => m.len() <= limit as usize,
            Err(_) => false,
        };
        if let Ok(m) = &mut missed
            && m.len() > limit as usize
        {
            // Keep the newest: the older ones stay reachable through history paging.
            m.remove(0);
        }
        let delivered = missed.as_ref().map(Vec::len).unwrap_or(0);
        for m in missed.as_deref().unwrap_or_default() {
            if legacy {
                self.fanout
                    .to_conn(
                        conn,
                        &ServerEvent::LegacyMessage(delivery::legacy(m, channel)),
                    )
                    .await;
            }
            self.fanout
                .to_conn(
                    conn,
                    &ServerEvent::MessageBroadcast(delivery::broadcast(m, channel)),
                )
                .await;
        }
        // Joined only now: nothing broadcast later can overtake the replay.
        self.fanout.join(conn, channel.id, legacy).await;
        Ok(RecoveryReport {
            complete,
            delivered,
            reason: match missed {
                Err(e) => Some(format!("history unavailable: {e}")),
                Ok(_) if !complete => Some(format!(
                    "more than {limit} messages were missed; the older ones are in the channel history"
                )),
                Ok(_) => None,
            },
        })
    }
}
