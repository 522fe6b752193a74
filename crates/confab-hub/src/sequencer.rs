//! The one task that commits messages and fans them out.
//!
//! Jobs queue up while a commit is in flight; the next turn takes everything queued (up to a
//! bound) and commits it in one transaction: group commit, no transaction per message. Only
//! after the commit does it broadcast, in commit order, so every member of a channel sees
//! messages in the order they were stored, and acknowledgements never precede durability.
//! Resuming joins go through the same queue, which makes replay and live delivery seamless:
//! history is read up to the last message already broadcast, then the connection joins the room.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use confab_protocol::ServerEvent;
use confab_protocol::outbound::{AckReply, RecoveryReport};
use confab_store::{Cursor, NewMessage, Store, StoredMessage};
use tokio::sync::{mpsc, oneshot};

use crate::delivery;
use crate::directory::ChannelInfo;
use crate::fanout::{ConnId, FanOut};
use crate::{Committed, HubError};

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
}

pub(crate) struct Sequencer {
    pub store: Arc<dyn Store>,
    pub fanout: Arc<dyn FanOut>,
    /// The highest sequence number broadcast so far.
    pub broadcast_upto: Arc<AtomicI64>,
    pub max_batch: usize,
    pub committed_tx: tokio::sync::broadcast::Sender<Arc<Committed>>,
}

impl Sequencer {
    pub async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(self.max_batch);
        let mut last_created_at = 0i64;
        while rx.recv_many(&mut jobs, self.max_batch).await > 0 {
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
                            self.deliver(&committed, &delivery).await;
                            reply.finish(Ok(&committed));
                            let _ = self.committed_tx.send(committed);
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
                        let report = self.resume(&conn, &channel, from, legacy, limit).await;
                        let _ = reply.send(report);
                    }
                }
            }
        }
        tracing::debug!("sequencer stopped");
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
        self.broadcast_upto
            .fetch_max(message.seq, Ordering::Release);
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
