//! The tasks that commit messages and fan them out.
//!
//! Jobs queue up while a commit is in flight; the next turn takes everything queued (up to a
//! bound) and commits it in one transaction: group commit, no transaction per message. The
//! sequencer is a two-stage pipeline: a committer task writes batch N+1 while the deliverer
//! broadcasts batch N. A message is broadcast only after its commit, in commit order, so every
//! member of a channel sees messages in the order they were stored, and acknowledgements never
//! precede durability.
//! Resuming joins go through the same queue, which makes replay and live delivery seamless:
//! history is read up to the last message already broadcast, then the connection joins the room.
//! A resume on a connection already in the room replays only what it has not been sent.
//!
//! A message that repeats one stored before (same author, same client id) is not stored or
//! broadcast again: its sender gets the original's acknowledgement, marked as a repeat.
//! Deliveries a connection refuses (its outgoing queue full) stop its resume point before them.
//!
//! Delivery goes through a gate that releases messages strictly in `seq` order. On one node that
//! is commit order and nothing waits. In a cluster, messages other nodes committed arrive over
//! the [`ClusterLink`](crate::ClusterLink) and are merged in by `seq`; a gap (a node that died
//! between its commit and its publish, or a link that was down) is filled from storage after a
//! short wait, and a periodic check against the store's last `seq` catches up on anything the
//! link never carried. Each message is delivered once, in the same order on every node.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_protocol::ServerEvent;
use confab_protocol::outbound::{AckReply, RecoveryReason, RecoveryReport, ResumedFrom};
use confab_store::{Appended, Cursor, NewMessage, Store, StoredMessage};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::delivery;
use crate::directory::ChannelInfo;
use crate::fanout::{ConnId, FanOut};
use crate::presence::Connections as Presence;
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
    /// Passes the store untouched and reaches the deliverer in queue order.
    InOrder(InOrder),
}

pub(crate) enum InOrder {
    Resume {
        conn: ConnId,
        channel: Arc<ChannelInfo>,
        resume: Resume,
        legacy: bool,
        limit: u32,
        reply: oneshot::Sender<Result<Resumed, HubError>>,
    },
    /// Messages other nodes committed.
    Remote(Vec<Arc<Committed>>),
}

/// What a resuming join asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resume {
    /// Replay the channel's messages after this point...
    pub from: Cursor,
    /// ...reported as this.
    pub reported_from: ResumedFrom,
    /// `Some(n)` when the connection is in the room already and has been sent everything after
    /// `n`: replay only up to `n`, and join nothing. `None`: replay up to the last message
    /// delivered, then join the room.
    pub sent_after: Option<i64>,
    /// Why the replay cannot be complete even if it fits (the automatic rejoin's caveats).
    pub caveat: Option<RecoveryReason>,
}

/// How a resume went.
#[derive(Debug, Clone)]
pub(crate) struct Resumed {
    pub report: RecoveryReport,
    /// The connection has now been sent every message of the channel after this.
    pub sent_after: i64,
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
    /// Where each connection's resume points are kept (refused deliveries cut them).
    pub presence: Arc<Mutex<Presence>>,
    /// The most bytes one replay may queue on a connection (0: no bound).
    pub resume_bytes: usize,
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

/// How many committed batches may wait for delivery while the next one commits. Commits and
/// deliveries overlap (the store writes batch N+1 while batch N goes out); past this depth the
/// committer waits, so a slow delivery shows up as ack latency, not as memory.
const PIPELINE_DEPTH: usize = 2;

/// A job after its turn at the store, in the order the jobs arrived.
// Nearly every step is `Appended`, the large one; boxing it would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
enum Step {
    Appended {
        result: Result<Written, HubError>,
        channel: Arc<ChannelInfo>,
        delivery: Delivery,
        reply: Reply,
    },
    InOrder(InOrder),
}

/// The first half of the pipeline: takes everything queued (up to `max_batch`), commits the
/// appends in one transaction and hands the batch, in order, to the deliverer.
struct Committer {
    store: Arc<dyn Store>,
    max_batch: usize,
}

impl Committer {
    async fn run(self, mut rx: mpsc::Receiver<Job>, steps: mpsc::Sender<Vec<Step>>) {
        let mut jobs = Vec::with_capacity(self.max_batch);
        // Creation times never go backwards, not even across a restart with the clock set
        // back, so `since` and `seq` agree on order (the SQLite store's indexes rely on it).
        let mut last_created_at = self.newest_created_at().await;
        while rx.recv_many(&mut jobs, self.max_batch).await > 0 {
            last_created_at = last_created_at.max(confab_protocol::now_ms());
            let mut batch = Vec::new();
            for job in jobs.iter_mut() {
                if let Job::Append { message, .. } = job {
                    message.created_at = last_created_at;
                    batch.push(std::mem::take(&mut **message));
                }
            }
            let mut results = self.commit(batch).await.into_iter();
            let turn = jobs
                .drain(..)
                .map(|job| match job {
                    Job::Append {
                        channel,
                        delivery,
                        reply,
                        ..
                    } => Step::Appended {
                        result: results.next().unwrap_or_else(|| {
                            Err(HubError::Internal("commit lost a message".into()))
                        }),
                        channel,
                        delivery,
                        reply,
                    },
                    Job::InOrder(job) => Step::InOrder(job),
                })
                .collect();
            if steps.send(turn).await.is_err() {
                break;
            }
        }
    }

    /// The creation time of the newest stored message (0 if none or unreadable).
    async fn newest_created_at(&self) -> i64 {
        let Ok(last) = self.store.last_seq().await else {
            return 0;
        };
        match self.store.messages_in_seq_range(last, last).await {
            Ok(found) => found.last().map_or(0, |m| m.created_at),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the newest message's time");
                0
            }
        }
    }

    /// One transaction for the batch; if it fails, each message alone, so one bad message
    /// (a channel deleted meanwhile, a duplicate id) fails only itself. When the database
    /// itself failed (unreachable, out of disk), retrying piece by piece cannot help: the whole
    /// batch fails with that cause at once (and the store fails fast until it is back).
    async fn commit(&self, batch: Vec<NewMessage>) -> Vec<Result<Written, HubError>> {
        if batch.is_empty() {
            return Vec::new();
        }
        match self.store.insert_messages(&batch).await {
            Ok(seqs) => stored(batch, seqs),
            Err(e) if batch.len() == 1 || e.is_dependency() => {
                let e = HubError::from(e);
                batch.iter().map(|_| Err(e.clone())).collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, size = batch.len(), "batch commit failed; committing one by one");
                let mut out = Vec::with_capacity(batch.len());
                for m in batch {
                    out.push(
                        match self.store.insert_messages(std::slice::from_ref(&m)).await {
                            Ok(seqs) => stored(vec![m], seqs).remove(0),
                            Err(e) => Err(HubError::from(e)),
                        },
                    );
                }
                out
            }
        }
    }
}

/// A message after its commit: stored now, or a repeat of one stored before.
pub(crate) struct Written {
    message: StoredMessage,
    repeat: bool,
}

/// Pairs each message with what the store made of it.
fn stored(batch: Vec<NewMessage>, seqs: Vec<Appended>) -> Vec<Result<Written, HubError>> {
    if seqs.len() != batch.len() {
        return batch
            .iter()
            .map(|_| {
                Err(HubError::Internal(
                    "the store returned the wrong number of sequence numbers".into(),
                ))
            })
            .collect();
    }
    batch
        .into_iter()
        .zip(seqs)
        .map(|(m, outcome)| {
            Ok(match outcome {
                Appended::New(seq) => Written {
                    message: StoredMessage::from_new(m, seq),
                    repeat: false,
                },
                Appended::Repeat(original) => Written {
                    message: *original,
                    repeat: true,
                },
            })
        })
        .collect()
}

impl Sequencer {
    pub async fn run(self, rx: mpsc::Receiver<Job>) {
        let (steps_tx, steps) = mpsc::channel(PIPELINE_DEPTH);
        let committer = Committer {
            store: self.store.clone(),
            max_batch: self.max_batch,
        };
        let committing = tokio::spawn(committer.run(rx, steps_tx));
        self.deliver_turns(steps).await;
        let _ = committing.await;
        tracing::debug!("sequencer stopped");
    }

    /// The second half of the pipeline: delivers each committed batch through the gate.
    async fn deliver_turns(&self, mut steps: mpsc::Receiver<Vec<Step>>) {
        let mut gate = Gate::default();
        let mut next_check = Instant::now() + CATCH_UP_EVERY;
        loop {
            let turn = if self.cluster.is_none() {
                steps.recv().await
            } else {
                tokio::select! {
                    turn = steps.recv() => turn,
                    _ = tokio::time::sleep_until(next_check) => {
                        self.check(&mut gate).await;
                        self.release(&mut gate).await;
                        next_check = Instant::now()
                            + if gate.behind() { GAP_WAIT / 3 } else { CATCH_UP_EVERY };
                        continue;
                    }
                }
            };
            let Some(turn) = turn else {
                break;
            };
            let mut ours = Vec::new();
            for step in turn {
                match step {
                    Step::Appended {
                        result,
                        channel,
                        delivery,
                        reply,
                    } => match result {
                        Ok(Written {
                            message,
                            repeat: true,
                        }) => {
                            // The original goes out first (it may be in this very batch).
                            self.release(&mut gate).await;
                            let committed = Committed {
                                message,
                                channel,
                                repeat: true,
                            };
                            self.acknowledge_repeat(&committed, &delivery).await;
                            reply.finish(Ok(&committed));
                        }
                        Ok(Written { message, .. }) => {
                            let committed = Arc::new(Committed {
                                message,
                                channel,
                                repeat: false,
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
                        Err(e) => reply.finish(Err(e)),
                    },
                    Step::InOrder(InOrder::Resume {
                        conn,
                        channel,
                        resume,
                        legacy,
                        limit,
                        reply,
                    }) => {
                        // Everything deliverable goes out first, so the replay (read up to the
                        // last delivered message) and live delivery meet without a gap.
                        self.release(&mut gate).await;
                        let report = self.resume(&conn, &channel, resume, legacy, limit).await;
                        let _ = reply.send(report);
                    }
                    Step::InOrder(InOrder::Remote(commits)) => {
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
                                repeat: false,
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

    /// Connections that refused message `seq` have been sent nothing from there on.
    fn refused(&self, conns: Vec<ConnId>, seq: i64) {
        if conns.is_empty() {
            return;
        }
        let mut presence = self.presence.lock().unwrap();
        for conn in conns {
            presence.refused(&conn, seq);
        }
    }

    /// One connection; notes a refusal of message `seq`.
    async fn to_conn(&self, conn: &ConnId, event: &ServerEvent, seq: i64) {
        if !self.fanout.to_conn(conn, event).await {
            self.refused(vec![conn.clone()], seq);
        }
    }

    /// Seed 000's `message` to the channel's seed-000 members, built only if there are any.
    async fn deliver_legacy(&self, c: &Committed, except: Option<&ConnId>) {
        if self.fanout.has_legacy_members(c.channel.id) {
            let event = ServerEvent::LegacyMessage(delivery::legacy(&c.message, &c.channel));
            let refused = self
                .fanout
                .to_legacy_members(c.channel.id, &event, except)
                .await;
            self.refused(refused, c.message.seq);
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
                self.deliver_legacy(c, Some(origin)).await;
                let mut own = payload.clone();
                let refused = self
                    .fanout
                    .to_channel(
                        channel.id,
                        &ServerEvent::MessageBroadcast(payload),
                        Some(origin),
                    )
                    .await;
                self.refused(refused, message.seq);
                own.client_message_id = client_message_id.clone();
                self.to_conn(origin, &ServerEvent::MessageBroadcast(own), message.seq)
                    .await;
                self.acknowledge(c, origin, client_message_id, *legacy)
                    .await;
            }
            Delivery::ToRoom => {
                self.deliver_legacy(c, None).await;
                let refused = self
                    .fanout
                    .to_channel(channel.id, &ServerEvent::MessageBroadcast(payload), None)
                    .await;
                self.refused(refused, message.seq);
            }
            Delivery::Quiet => {}
        }
    }

    /// The sender's `messageAck` (and seed 000's `ack`).
    async fn acknowledge(
        &self,
        c: &Committed,
        origin: &ConnId,
        client_message_id: &Option<String>,
        legacy: bool,
    ) {
        let ack = delivery::ack(&c.message, &c.channel, client_message_id.clone(), c.repeat);
        // If this is refused, the message itself was handed over before it (or its refusal
        // counted already); a repeat's original is old news, so what counts is what has been
        // delivered so far.
        let next = if c.repeat {
            self.broadcast_upto.load(Ordering::Acquire) + 1
        } else {
            c.message.seq + 1
        };
        self.to_conn(origin, &ServerEvent::MessageAck(ack), next)
            .await;
        if legacy {
            self.fanout
                .to_conn(
                    origin,
                    &ServerEvent::LegacyAck(AckReply::stored(c.message.id)),
                )
                .await;
        }
    }

    /// A repeat is not broadcast: its sender only learns, again, that it is stored.
    async fn acknowledge_repeat(&self, c: &Committed, delivery: &Delivery) {
        if let Delivery::FromConnection {
            origin,
            client_message_id,
            legacy,
        } = delivery
        {
            self.acknowledge(c, origin, client_message_id, *legacy)
                .await;
        }
    }

    async fn resume(
        &self,
        conn: &ConnId,
        channel: &ChannelInfo,
        resume: Resume,
        legacy: bool,
        limit: u32,
    ) -> Result<Resumed, HubError> {
        let upto = resume
            .sent_after
            .unwrap_or_else(|| self.broadcast_upto.load(Ordering::Acquire));
        tracing::debug!(%conn, channel = %channel.id, ?resume, upto, limit, "resuming");
        // One more than the limit tells whether everything fitted.
        let mut missed = self
            .store
            .messages_after(channel.id, resume.from, upto, limit.saturating_add(1))
            .await;
        let fits = match &missed {
            Ok(m) => m.len() <= limit as usize,
            Err(_) => false,
        };
        if let Ok(m) = &mut missed
            && m.len() > limit as usize
        {
            // Keep the newest: the older ones stay reachable through history paging.
            m.remove(0);
        }
        // The replay is queued on the connection at once: keep the newest messages that fit in
        // the byte budget, so a resume never overflows a healthy client's queue.
        let mut fits = fits;
        if let Ok(m) = &mut missed {
            let kept = newest_within(m, self.resume_bytes, |m| {
                replay_size(m, channel) * if legacy { 2 } else { 1 }
            });
            if kept < m.len() {
                m.drain(..m.len() - kept);
                fits = false;
            }
        }
        let delivered = missed.as_ref().map(Vec::len).unwrap_or(0);
        for m in missed.as_deref().unwrap_or_default() {
            if legacy {
                self.to_conn(
                    conn,
                    &ServerEvent::LegacyMessage(delivery::legacy(m, channel)),
                    m.seq,
                )
                .await;
            }
            self.to_conn(
                conn,
                &ServerEvent::MessageBroadcast(delivery::broadcast(m, channel)),
                m.seq,
            )
            .await;
        }
        if resume.sent_after.is_none() {
            // Joined only now: nothing broadcast later can overtake the replay.
            self.fanout.join(conn, channel.id, legacy).await;
        }
        // Everything after the first message replayed has been sent now (older ones of the
        // channel, when the limit cut them off, have not).
        let sent_after = match missed.as_deref() {
            Ok([first, ..]) => first.seq - 1,
            _ => upto,
        };
        let reason = match &missed {
            Err(e) => {
                tracing::warn!(%conn, channel = %channel.id, error = %e, "history unavailable for a resume");
                Some(RecoveryReason::HistoryUnavailable)
            }
            Ok(_) if !fits => Some(RecoveryReason::LimitExceeded),
            Ok(_) => resume.caveat,
        };
        Ok(Resumed {
            report: RecoveryReport::new(resume.reported_from, delivered, reason),
            sent_after,
        })
    }
}

/// The encoded size of a replayed message (its `messageBroadcast` payload).
fn replay_size(m: &StoredMessage, channel: &ChannelInfo) -> usize {
    serde_json::to_vec(&delivery::broadcast(m, channel)).map_or(0, |v| v.len())
}

/// How many of the newest `items` fit in `budget` bytes (0: no budget, all of them).
fn newest_within<T>(items: &[T], budget: usize, size: impl Fn(&T) -> usize) -> usize {
    if budget == 0 {
        return items.len();
    }
    let mut used = 0usize;
    items
        .iter()
        .rev()
        .take_while(|item| {
            used = used.saturating_add(size(item));
            used <= budget
        })
        .count()
}

#[cfg(test)]
mod replay_budget_tests {
    use super::newest_within;

    #[test]
    fn keeps_the_newest_that_fit() {
        let sizes = [5usize, 4, 3, 2, 1];
        assert_eq!(newest_within(&sizes, 0, |s| *s), 5, "no budget");
        assert_eq!(newest_within(&sizes, 15, |s| *s), 5);
        assert_eq!(newest_within(&sizes, 6, |s| *s), 3, "1 + 2 + 3");
        assert_eq!(newest_within(&sizes, 5, |s| *s), 2);
        assert_eq!(newest_within(&sizes, 1, |_| 2), 0, "not even one fits");
    }
}
