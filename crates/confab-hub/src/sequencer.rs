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
//! Delivery goes through a gate that releases each channel's messages strictly in offset order,
//! channel by channel: there is no order between channels, and nothing in one channel waits for
//! another. On one node that is commit order and nothing waits. In a cluster, messages other
//! nodes committed arrive over the [`ClusterLink`](crate::ClusterLink) and are merged into their
//! channel's lane by offset; a gap in a channel (a node that died between its commit and its
//! publish, or a link that was down) is filled from storage (that channel's messages after its
//! delivered offset) after a short wait, and a periodic check of each channel with members on
//! this node against the store's last offset catches up on anything the link never carried.
//! Each message is delivered once, in the same order on every node. A gap is never filled while
//! this node's own commits to that channel are on their way from the store to the gate: they
//! fill it themselves, and their senders' acknowledgements go with them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_protocol::ServerEvent;
use confab_protocol::outbound::{AckReply, RecoveryReason, RecoveryReport, ResumedFrom};
use confab_store::{Appended, Cursor, NewMessage, Store, StoredMessage};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

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
    /// An offset with no message any more (deleted before this node saw it).
    Gone,
}

/// How long a gap may stay open before it is filled from storage.
const GAP_WAIT: Duration = Duration::from_millis(150);
/// How often a cluster node compares what it delivered in each of its channels with the store.
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);

/// How far delivery has gone in one channel on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub epoch: i64,
    /// Every message of the channel up to this offset has been delivered (or was committed
    /// before this node had anyone in the channel).
    pub upto: i64,
}

/// Each channel's delivery point on this node: written by the sequencer as it delivers, read by
/// joins and resume points. Channels are independent: nothing here orders one after another.
#[derive(Default)]
pub(crate) struct Delivered {
    marks: Mutex<HashMap<Uuid, Mark>>,
}

impl Delivered {
    pub fn get(&self, channel: Uuid) -> Option<Mark> {
        self.marks.lock().unwrap().get(&channel).copied()
    }

    /// The offset delivered up to in the channel (0 if this node has not tracked it).
    pub fn upto(&self, channel: Uuid) -> i64 {
        self.get(channel).map_or(0, |m| m.upto)
    }

    /// Moves the channel's point forward (never back within an epoch); returns where it is.
    pub fn raise(&self, channel: Uuid, to: Mark) -> Mark {
        let mut marks = self.marks.lock().unwrap();
        let mark = marks.entry(channel).or_insert(to);
        if to.epoch > mark.epoch || (to.epoch == mark.epoch && to.upto > mark.upto) {
            *mark = to;
        }
        *mark
    }

    /// Sets the channel's point, backwards too (a channel created anew starts over).
    fn reset(&self, channel: Uuid, to: Mark) {
        self.marks.lock().unwrap().insert(channel, to);
    }
}

/// This node's own commits on their way from the store to the gate, per channel: a gap in a
/// channel with commits in flight is not filled from storage, since the commits that fill it
/// are this node's own and will arrive (with whoever waits for them).
#[derive(Default)]
struct InFlight(Mutex<HashMap<Uuid, usize>>);

impl InFlight {
    fn add(&self, channels: &[Uuid]) {
        let mut m = self.0.lock().unwrap();
        for c in channels {
            *m.entry(*c).or_default() += 1;
        }
    }

    fn done(&self, channels: &[Uuid]) {
        let mut m = self.0.lock().unwrap();
        for c in channels {
            if let Some(n) = m.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    m.remove(c);
                }
            }
        }
    }

    fn contains(&self, channel: Uuid) -> bool {
        self.0.lock().unwrap().contains_key(&channel)
    }
}

pub(crate) struct Sequencer {
    pub store: Arc<dyn Store>,
    pub fanout: Arc<dyn FanOut>,
    /// How far delivery has gone in each channel.
    pub delivered: Arc<Delivered>,
    pub max_batch: usize,
    pub committed_tx: tokio::sync::broadcast::Sender<Arc<Committed>>,
    pub cluster: Option<Arc<dyn ClusterLink>>,
    /// Where each connection's resume points are kept (refused deliveries cut them).
    pub presence: Arc<Mutex<Presence>>,
    /// The most bytes one replay may queue on a connection (0: no bound).
    pub resume_bytes: usize,
}

/// The ordering gate's state, owned by the sequencer task: one lane per channel with messages
/// waiting for an earlier offset. A gap in one channel holds back that channel only.
#[derive(Default)]
struct Gate {
    lanes: HashMap<Uuid, Lane>,
    /// Channels whose stored messages were first seen ahead of what this node delivered (with
    /// nothing waiting), and when.
    lagging: HashMap<Uuid, Instant>,
}

#[derive(Default)]
struct Lane {
    waiting: BTreeMap<i64, Waiting>,
    /// When the current gap was first seen.
    gap_since: Option<Instant>,
}

impl Gate {
    fn behind(&self) -> bool {
        !self.lanes.is_empty() || !self.lagging.is_empty()
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
    /// A new message of this node, committed (what `Appended` becomes before delivery).
    Own {
        committed: Arc<Committed>,
        delivery: Delivery,
        reply: Reply,
    },
}

/// One committed batch: its steps, and the channels it committed to (in flight until the
/// deliverer has taken it).
struct Turn {
    steps: Vec<Step>,
    channels: Vec<Uuid>,
}

/// The first half of the pipeline: takes everything queued (up to `max_batch`), commits the
/// appends in one transaction and hands the batch, in order, to the deliverer.
struct Committer {
    store: Arc<dyn Store>,
    max_batch: usize,
    in_flight: Arc<InFlight>,
}

impl Committer {
    async fn run(self, mut rx: mpsc::Receiver<Job>, turns: mpsc::Sender<Turn>) {
        let mut jobs = Vec::with_capacity(self.max_batch);
        while rx.recv_many(&mut jobs, self.max_batch).await > 0 {
            // The store stamps the commit time: at least this, and never earlier than the
            // channel's previous message (within a channel, times follow offsets).
            let now = confab_protocol::now_ms();
            let mut batch = Vec::new();
            for job in jobs.iter_mut() {
                if let Job::Append { message, .. } = job {
                    message.created_at = now;
                    batch.push(std::mem::take(&mut **message));
                }
            }
            let mut channels: Vec<Uuid> = batch.iter().map(|m| m.channel_id).collect();
            channels.sort_unstable();
            channels.dedup();
            self.in_flight.add(&channels);
            let mut results = self.commit(batch).await.into_iter();
            let steps = jobs
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
            if turns.send(Turn { steps, channels }).await.is_err() {
                break;
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
            Ok(outcomes) => stored(batch, outcomes),
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
                            Ok(outcomes) => stored(vec![m], outcomes).remove(0),
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
fn stored(batch: Vec<NewMessage>, outcomes: Vec<Appended>) -> Vec<Result<Written, HubError>> {
    if outcomes.len() != batch.len() {
        return batch
            .iter()
            .map(|_| {
                Err(HubError::Internal(
                    "the store returned the wrong number of outcomes".into(),
                ))
            })
            .collect();
    }
    batch
        .into_iter()
        .zip(outcomes)
        .map(|(m, outcome)| {
            Ok(match outcome {
                Appended::New(at) => Written {
                    message: StoredMessage::from_new(m, at),
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
        let (turns_tx, turns) = mpsc::channel(PIPELINE_DEPTH);
        let in_flight = Arc::new(InFlight::default());
        let committer = Committer {
            store: self.store.clone(),
            max_batch: self.max_batch,
            in_flight: in_flight.clone(),
        };
        let committing = tokio::spawn(committer.run(rx, turns_tx));
        self.deliver_turns(turns, &in_flight).await;
        let _ = committing.await;
        tracing::debug!("sequencer stopped");
    }

    /// The second half of the pipeline: delivers each committed batch through the gate.
    async fn deliver_turns(&self, mut turns: mpsc::Receiver<Turn>, in_flight: &InFlight) {
        let mut gate = Gate::default();
        let mut next_check = Instant::now() + CATCH_UP_EVERY;
        loop {
            let turn = if self.cluster.is_none() {
                turns.recv().await
            } else {
                tokio::select! {
                    turn = turns.recv() => turn,
                    _ = tokio::time::sleep_until(next_check) => {
                        self.check(&mut gate, in_flight).await;
                        next_check = Instant::now()
                            + if gate.behind() { GAP_WAIT / 3 } else { CATCH_UP_EVERY };
                        continue;
                    }
                }
            };
            let Some(Turn { steps, channels }) = turn else {
                break;
            };
            // This node's new messages go to the other nodes first, then out here.
            let mut ours = Vec::new();
            let steps: Vec<Step> = steps
                .into_iter()
                .map(|step| match step {
                    Step::Appended {
                        result:
                            Ok(Written {
                                message,
                                repeat: false,
                            }),
                        channel,
                        delivery,
                        reply,
                    } => {
                        let committed = Arc::new(Committed {
                            message,
                            channel,
                            repeat: false,
                        });
                        ours.push(committed.clone());
                        Step::Own {
                            committed,
                            delivery,
                            reply,
                        }
                    }
                    other => other,
                })
                .collect();
            if let Some(cluster) = &self.cluster
                && !ours.is_empty()
            {
                cluster.publish_commits(&ours).await;
            }
            // Each message is released as soon as it is admitted: on one node nothing waits,
            // and the commit order holds across channels too.
            for step in steps {
                match step {
                    Step::Own {
                        committed,
                        delivery,
                        reply,
                    } => {
                        let channel = committed.message.channel_id;
                        self.admit(&mut gate, committed, delivery, Some(reply))
                            .await;
                        self.release(&mut gate, channel).await;
                    }
                    Step::Appended {
                        result,
                        channel,
                        delivery,
                        reply,
                    } => match result {
                        Ok(Written { message, .. }) => {
                            // A repeat: the original goes out first (it may be in this very
                            // batch).
                            self.release(&mut gate, message.channel_id).await;
                            let committed = Committed {
                                message,
                                channel,
                                repeat: true,
                            };
                            self.acknowledge_repeat(&committed, &delivery).await;
                            reply.finish(Ok(&committed));
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
                        // Everything deliverable in the channel goes out first, so the replay
                        // (read up to the last delivered message) and live delivery meet
                        // without a gap.
                        self.release(&mut gate, channel.id).await;
                        let report = self.resume(&conn, &channel, resume, legacy, limit).await;
                        let _ = reply.send(report);
                    }
                    Step::InOrder(InOrder::Remote(commits)) => {
                        for committed in commits {
                            let channel = committed.message.channel_id;
                            self.admit(&mut gate, committed, Delivery::ToRoom, None)
                                .await;
                            self.release(&mut gate, channel).await;
                        }
                    }
                }
            }
            in_flight.done(&channels);
        }
    }

    /// Takes a committed message to its channel's lane. The first message of a channel this
    /// node has not tracked yet starts the channel's point just before it: it never waits for
    /// older messages (its members joined after those, from the store's last offset).
    async fn admit(
        &self,
        gate: &mut Gate,
        committed: Arc<Committed>,
        delivery: Delivery,
        reply: Option<Reply>,
    ) {
        let (channel, epoch, offset) = {
            let m = &committed.message;
            (m.channel_id, m.epoch, m.offset)
        };
        let start = Mark {
            epoch,
            upto: offset - 1,
        };
        let mark = match self.delivered.get(channel) {
            None => self.delivered.raise(channel, start),
            Some(mark) if epoch > mark.epoch => {
                // A new epoch: the history was cleared (offsets go on), or the channel was
                // deleted and created again (offsets start over). What waits of the old one
                // goes out as it is.
                self.flush(gate, channel).await;
                let next = Mark {
                    epoch,
                    upto: if offset <= mark.upto { 0 } else { mark.upto },
                };
                self.delivered.reset(channel, next);
                next
            }
            Some(mark) => mark,
        };
        if epoch < mark.epoch || offset <= mark.upto {
            self.late(Waiting::Message {
                committed,
                delivery,
                reply,
            })
            .await;
            return;
        }
        let lane = gate.lanes.entry(channel).or_default();
        let waiting = Waiting::Message {
            committed,
            delivery,
            reply,
        };
        if let Waiting::Message { reply: Some(_), .. } = &waiting {
            // This node's own message takes the place of a copy read from storage.
            lane.waiting.insert(offset, waiting);
        } else {
            lane.waiting.entry(offset).or_insert(waiting);
        }
    }

    /// A message whose offset was delivered already. Another node's, or a copy from storage:
    /// nothing to do. This node's own (its offset was passed while it was on its way): its
    /// sender still gets its copy and acknowledgement, and agents see it; the room had it.
    async fn late(&self, waiting: Waiting) {
        let Waiting::Message {
            committed,
            delivery,
            reply: Some(reply),
        } = waiting
        else {
            return;
        };
        tracing::debug!(channel = %committed.message.channel_id, offset = committed.message.offset,
            "own message delivered from storage before it reached the gate");
        if let Delivery::FromConnection {
            origin,
            client_message_id,
            legacy,
        } = &delivery
        {
            let mut own = delivery::broadcast(&committed.message, &committed.channel);
            own.client_message_id = client_message_id.clone();
            self.to_conn(
                origin,
                &ServerEvent::MessageBroadcast(own),
                committed.channel.id,
                committed.message.offset,
            )
            .await;
            self.acknowledge(&committed, origin, client_message_id, *legacy)
                .await;
        }
        reply.finish(Ok(&committed));
        let _ = self.committed_tx.send(committed);
    }

    /// Delivers every waiting message of the channel whose turn has come.
    async fn release(&self, gate: &mut Gate, channel: Uuid) {
        let Some(lane) = gate.lanes.get_mut(&channel) else {
            return;
        };
        let Some(mut mark) = self.delivered.get(channel) else {
            return;
        };
        while let Some(entry) = lane.waiting.first_entry() {
            let offset = *entry.key();
            if offset <= mark.upto {
                self.late(entry.remove()).await;
                continue;
            }
            if offset != mark.upto + 1 {
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
            mark = self.delivered.raise(
                channel,
                Mark {
                    epoch: mark.epoch,
                    upto: offset,
                },
            );
        }
        if lane.waiting.is_empty() {
            gate.lanes.remove(&channel);
        } else {
            lane.gap_since.get_or_insert_with(Instant::now);
        }
    }

    /// Delivers whatever waits in the channel, in offset order, gaps or not.
    async fn flush(&self, gate: &mut Gate, channel: Uuid) {
        let Some(lane) = gate.lanes.remove(&channel) else {
            return;
        };
        for (_, waiting) in lane.waiting {
            if let Waiting::Message {
                committed,
                delivery,
                reply,
            } = waiting
            {
                self.deliver(&committed, &delivery).await;
                if let Some(reply) = reply {
                    reply.finish(Ok(&committed));
                    let _ = self.committed_tx.send(committed);
                }
            }
        }
    }

    /// Cluster mode: fills the gaps that stayed open, and catches up, in each channel with a
    /// member on this node, with messages committed that no node told us about. Channels with
    /// this node's own commits on the way are left for those to arrive.
    async fn check(&self, gate: &mut Gate, in_flight: &InFlight) {
        let gapped: Vec<(Uuid, i64)> = gate
            .lanes
            .iter()
            .filter(|(_, lane)| lane.gap_since.is_some_and(|t| t.elapsed() >= GAP_WAIT))
            .filter_map(|(c, lane)| Some((*c, *lane.waiting.keys().next()? - 1)))
            .collect();
        for (channel, target) in gapped {
            if !in_flight.contains(channel) {
                self.fill(gate, channel, target).await;
            }
        }
        let local = self.presence.lock().unwrap().channels();
        gate.lagging.retain(|c, _| local.contains(c));
        for channel in local {
            if gate.lanes.contains_key(&channel) {
                continue;
            }
            let Some(mark) = self.delivered.get(channel) else {
                continue;
            };
            let position = match self.store.channel_position(channel).await {
                Ok(Some(p)) => p,
                Ok(None) => {
                    gate.lagging.remove(&channel);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "cannot read a channel's position");
                    continue;
                }
            };
            let behind = position.epoch > mark.epoch
                || (position.epoch == mark.epoch && position.last_offset > mark.upto);
            if !behind {
                gate.lagging.remove(&channel);
                continue;
            }
            let since = *gate.lagging.entry(channel).or_insert_with(Instant::now);
            if since.elapsed() < GAP_WAIT || in_flight.contains(channel) {
                continue;
            }
            if position.epoch > mark.epoch && position.last_offset < mark.upto {
                // Created anew: its offsets started over.
                self.delivered.reset(
                    channel,
                    Mark {
                        epoch: position.epoch,
                        upto: 0,
                    },
                );
            }
            gate.lagging.remove(&channel);
            self.fill(gate, channel, position.last_offset).await;
        }
    }

    /// Reads the channel's messages after its delivery point up to offset `target` from
    /// storage, and delivers what it can.
    async fn fill(&self, gate: &mut Gate, channel: Uuid, target: i64) {
        let Some(mark) = self.delivered.get(channel) else {
            return;
        };
        let found = match self
            .store
            .messages_in_offset_range(channel, mark.upto, target)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(%channel, error = %e, "cannot fill a delivery gap");
                return;
            }
        };
        tracing::info!(
            %channel,
            after = mark.upto,
            upto = target,
            found = found.len(),
            "filling a delivery gap from storage"
        );
        let info = match self.store.get_channel(channel).await {
            Ok(Some(c)) => Some(Arc::new(ChannelInfo::from_channel(&c))),
            _ => None,
        };
        let mut next = mark.upto + 1;
        for m in found {
            let offset = m.offset;
            let lane = gate.lanes.entry(channel).or_default();
            for missing in next..offset {
                lane.waiting.entry(missing).or_insert(Waiting::Gone);
            }
            next = offset + 1;
            match &info {
                Some(info) => {
                    let committed = Arc::new(Committed {
                        message: m,
                        channel: info.clone(),
                        repeat: false,
                    });
                    self.admit(gate, committed, Delivery::ToRoom, None).await;
                }
                None => {
                    lane.waiting.entry(offset).or_insert(Waiting::Gone);
                }
            }
        }
        let lane = gate.lanes.entry(channel).or_default();
        for missing in next..=target {
            lane.waiting.entry(missing).or_insert(Waiting::Gone);
        }
        lane.gap_since = None;
        self.release(gate, channel).await;
    }

    /// Where delivery stands in a channel for a connection about to join it. A channel with
    /// nobody of this node in it may have moved on unseen (this node only hears of channels it
    /// has members in): its point is brought up to the store's last offset first.
    pub(crate) async fn baseline(
        store: &dyn Store,
        delivered: &Delivered,
        presence: &Mutex<Presence>,
        channel: Uuid,
    ) -> Result<i64, HubError> {
        let known = delivered.get(channel);
        if known.is_some() && presence.lock().unwrap().has_members(channel) {
            return Ok(known.map_or(0, |m| m.upto));
        }
        let position = store.channel_position(channel).await?.unwrap_or_default();
        let mark = Mark {
            epoch: position.epoch,
            upto: position.last_offset,
        };
        Ok(match known {
            Some(k) if position.epoch > k.epoch && position.last_offset < k.upto => {
                delivered.reset(channel, mark);
                mark.upto
            }
            _ => delivered.raise(channel, mark).upto,
        })
    }

    /// Connections that refused message `offset` of `channel` have been sent nothing from
    /// there on.
    fn refused(&self, conns: Vec<ConnId>, channel: Uuid, offset: i64) {
        if conns.is_empty() {
            return;
        }
        let mut presence = self.presence.lock().unwrap();
        for conn in conns {
            presence.refused(&conn, |c| {
                if c == channel {
                    offset - 1
                } else {
                    self.delivered.upto(c)
                }
            });
        }
    }

    /// One connection; notes a refusal of message `offset` of `channel`.
    async fn to_conn(&self, conn: &ConnId, event: &ServerEvent, channel: Uuid, offset: i64) {
        if !self.fanout.to_conn(conn, event).await {
            self.refused(vec![conn.clone()], channel, offset);
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
            self.refused(refused, c.channel.id, c.message.offset);
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
                self.refused(refused, channel.id, message.offset);
                own.client_message_id = client_message_id.clone();
                self.to_conn(
                    origin,
                    &ServerEvent::MessageBroadcast(own),
                    channel.id,
                    message.offset,
                )
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
                self.refused(refused, channel.id, message.offset);
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
            self.delivered.upto(c.channel.id) + 1
        } else {
            c.message.offset + 1
        };
        self.to_conn(origin, &ServerEvent::MessageAck(ack), c.channel.id, next)
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
        let upto = match resume.sent_after {
            Some(n) => n,
            None => {
                Self::baseline(&*self.store, &self.delivered, &self.presence, channel.id).await?
            }
        };
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
                    channel.id,
                    m.offset,
                )
                .await;
            }
            self.to_conn(
                conn,
                &ServerEvent::MessageBroadcast(delivery::broadcast(m, channel)),
                channel.id,
                m.offset,
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
            Ok([first, ..]) => first.offset - 1,
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
