//! One connection: its inbound events are queued in arrival order (bounded) and handled one at
//! a time, so a client's messages keep their order all the way into the sequencer. Replies go
//! out through the socket; channel deliveries through the hub.
//!
//! The queue is drained by a task that exists only while there are events: an idle connection
//! keeps its state ([`Worker`], boxed) and an empty queue, not a task and a channel.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use confab_hub::{ConnId, Hub, HubError};
use confab_protocol::inbound::{ClientEvent, Command, DecodeError, Dialect, Refusal, decode};
use confab_protocol::outbound::{
    AckReply, Authenticated, ChannelJoined, ConnectionEstablished, MessageError, Refused,
};
use confab_protocol::{ServerEvent, now_ms, texts};
use serde_json::Value;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::{FromMessageParts, MessageHandler};
use socketioxide::socket::{DisconnectReason, Socket};

use super::guard::Guard;
use super::handshake::Identity;
use crate::logs::LogHub;

/// One inbound event, as received.
pub struct Inbound {
    event: String,
    /// The first argument (`Null` when there is none), or why it could not be read.
    data: Result<Value, String>,
    ack: AckSender,
}

enum Item {
    Event(Box<Inbound>),
    Disconnect,
}

/// A connection's inbound queue and the state of whoever handles it.
struct Queue {
    items: VecDeque<Item>,
    /// Most events waiting (`--inbound-queue`); the disconnect always fits.
    cap: usize,
    handler: Handler,
}

enum Handler {
    /// Before the connect handler: events wait.
    NotStarted,
    /// A task is draining the queue.
    Running,
    /// Nothing to do; the next event starts a task with this state.
    Idle(Box<Worker>),
    /// The disconnect was handled.
    Done,
}

#[derive(Clone)]
struct Inbox(Arc<Mutex<Queue>>);

impl Inbox {
    /// Queues `item`; starts a task if the connection was idle. Gives the event back if the
    /// queue is full.
    fn push(&self, item: Item) -> Result<(), Box<Inbound>> {
        let mut q = self.0.lock().unwrap();
        if let Item::Event(inbound) = item {
            if q.items.len() >= q.cap {
                return Err(inbound);
            }
            q.items.push_back(Item::Event(inbound));
        } else {
            q.items.push_back(item);
        }
        if let Handler::Idle(_) = q.handler
            && let Handler::Idle(worker) = std::mem::replace(&mut q.handler, Handler::Running)
        {
            tokio::spawn(self.clone().drain(worker));
        }
        Ok(())
    }

    /// Handles queued events in order until the queue is empty; then parks the state.
    async fn drain(self, mut worker: Box<Worker>) {
        loop {
            let item = {
                let mut q = self.0.lock().unwrap();
                match q.items.pop_front() {
                    Some(item) => item,
                    None => {
                        // A burst may have grown the queue: an idle connection keeps little.
                        if q.items.capacity() > 4 {
                            q.items = VecDeque::new();
                        }
                        q.handler = Handler::Idle(worker);
                        return;
                    }
                }
            };
            match item {
                Item::Event(inbound) => Box::pin(worker.handle(*inbound)).await,
                Item::Disconnect => {
                    self.0.lock().unwrap().handler = Handler::Done;
                    Box::pin(worker.finish()).await;
                    return;
                }
            }
        }
    }
}

/// The socket's catch-all event handler: decodes nothing, only queues, synchronously, so the
/// queue order is the wire order.
#[derive(Clone)]
struct Enqueue {
    inbox: Inbox,
}

/// Marker type for [`MessageHandler`].
pub struct ViaQueue;

impl MessageHandler<LocalAdapter, ViaQueue> for Enqueue {
    fn call(
        &self,
        s: Arc<Socket<LocalAdapter>>,
        mut v: socketioxide::handler::Value,
        ack_id: Option<i64>,
    ) {
        let Ok(Event(event)) = Event::from_message_parts(&s, &mut v, &ack_id) else {
            return;
        };
        let Ok(ack) = AckSender::from_message_parts(&s, &mut v, &ack_id);
        let data = match TryData::<Value>::from_message_parts(&s, &mut v, &ack_id) {
            Ok(TryData(Ok(v))) => Ok(v),
            // No argument at all (`emit("subscribe_logs")`).
            Ok(TryData(Err(e))) if e.to_string().starts_with("first element not found") => {
                Ok(Value::Null)
            }
            // Not JSON we can hold: nested too deep, binary, a lone surrogate...
            Ok(TryData(Err(e))) => Err(e.to_string()),
            Err(_) => Ok(Value::Null),
        };
        let item = Item::Event(Box::new(Inbound { event, data, ack }));
        if let Err(inbound) = self.inbox.push(item) {
            let refused = Refused::new(texts::QUEUE_FULL);
            crate::metrics::refused(crate::metrics::Refusal::QueueFull);
            let event = refused.event(None);
            let _ = s.emit(event.name(), &event);
            let _ = inbound.ack.send(&refused.ack());
        }
    }
}

/// Starts queueing the socket's events. Called by the handshake middleware, so that nothing a
/// client emits right after `connect` arrives before there is a handler to take it.
pub fn listen(socket: &SocketRef, queue: usize) {
    let inbox = Inbox(Arc::new(Mutex::new(Queue {
        items: VecDeque::new(),
        cap: queue.max(1),
        handler: Handler::NotStarted,
    })));
    socket.on_fallback(Enqueue {
        inbox: inbox.clone(),
    });
    let on_disconnect = inbox.clone();
    socket.on_disconnect(async move |_s: SocketRef, _reason: DisconnectReason| {
        let _ = on_disconnect.push(Item::Disconnect);
    });
    socket.extensions.insert(inbox);
}

/// Called once the handshake is accepted and the CONNECT packet sent: greets the client, then
/// handles what [`listen`] queued, in order.
pub async fn on_connect(
    socket: SocketRef,
    identity: Identity,
    hub: Hub,
    logs: LogHub,
    guard: Guard,
) {
    let Some(inbox) = socket.extensions.remove::<Inbox>() else {
        tracing::error!(socket = %socket.id, "connected without an event queue");
        return;
    };
    let conn = ConnId(socket.id.to_string());
    emit(
        &socket,
        ServerEvent::Authenticated(Authenticated {
            entity_id: identity.entity,
            timestamp: now_ms(),
        }),
    );
    emit(
        &socket,
        ServerEvent::ConnectionEstablished(ConnectionEstablished {
            message: texts::CONNECTED,
            socket_id: socket.id.to_string(),
            entity_id: identity.entity,
        }),
    );
    let mut worker = Box::new(Worker {
        socket,
        conn,
        identity,
        hub,
        logs,
        dialect: Dialect::Eliza,
        guard,
    });
    inbox.0.lock().unwrap().handler = Handler::Running;
    tokio::spawn(async move {
        Box::pin(worker.rejoin()).await;
        inbox.drain(worker).await;
    });
}

struct Worker {
    socket: SocketRef,
    conn: ConnId,
    identity: Identity,
    hub: Hub,
    logs: LogHub,
    dialect: Dialect,
    /// Access, limits, no impersonation (see `guard`).
    guard: Guard,
}

impl Worker {
    /// Registers the connection; puts it back into the channels of a recent connection.
    async fn rejoin(&mut self) {
        let rejoined = self
            .hub
            .connect(&self.conn, self.identity.entity, self.identity.named)
            .await;
        let rejoined = (self.guard)
            .filter_rejoined(&self.hub, &self.conn, &self.identity, rejoined)
            .await;
        for r in rejoined {
            let payload = ChannelJoined {
                message: texts::joined(&self.conn.0, &r.channel.id),
                scope: r.channel.scope(),
                entity_id: self.identity.entity,
                agent_id: None,
                rejoined: true,
                recovery: Some(r.recovery),
            };
            emit(&self.socket, ServerEvent::ChannelJoined(payload.clone()));
            emit(&self.socket, ServerEvent::RoomJoined(payload));
        }
    }

    async fn finish(&mut self) {
        self.logs.unsubscribe(&self.conn);
        self.hub.disconnect(&self.conn, self.identity.entity).await;
    }

    async fn handle(&mut self, inbound: Inbound) {
        let Inbound { event, data, ack } = inbound;
        if event == crate::logs::SET_LOG_FILTER {
            // Seed 004's log filter (not an ElizaOS event).
            match self.guard.may_stream_logs().await {
                Ok(()) => {
                    let reply = self
                        .logs
                        .set_log_filter(&self.conn, data.unwrap_or_default());
                    let _ = ack.send(&reply);
                    emit(&self.socket, ServerEvent::LogFiltersUpdated(reply));
                }
                Err(r) => Guard::refuse(&self.socket, r, None, ack),
            }
            return;
        }
        let Some((_, kind, dialect)) = ClientEvent::ALL.iter().find(|(name, ..)| *name == event)
        else {
            crate::metrics::error("unknown_event");
            self.refuse(format!("Unknown event: {event}"), None, ack);
            return;
        };
        if *dialect == Dialect::Legacy {
            self.dialect = Dialect::Legacy;
        }
        let decoded = match data {
            Ok(data) => decode(*kind, data),
            Err(e) => Err(Refusal {
                error: DecodeError::Invalid(e),
                client_message_id: None,
            }),
        };
        let command = match decoded {
            Ok(c) => c,
            Err(Refusal {
                error,
                client_message_id,
            }) => {
                crate::metrics::error("decode");
                let legacy_send = *kind == ClientEvent::Send && self.dialect == Dialect::Legacy;
                if legacy_send {
                    emit(
                        &self.socket,
                        ServerEvent::LegacyAck(AckReply::failure(error.to_string())),
                    );
                }
                self.refuse(error.to_string(), client_message_id, ack);
                return;
            }
        };
        if let Err(refusal) = self.guard.check(&self.identity, &command).await {
            let cmid = match &command {
                Command::Send(req) => req.client_message_id.clone(),
                _ => None,
            };
            if matches!(command, Command::Send(_)) && self.dialect == Dialect::Legacy {
                emit(
                    &self.socket,
                    ServerEvent::LegacyAck(AckReply::failure(refusal.error.clone())),
                );
            }
            Guard::refuse(&self.socket, refusal, cmid, ack);
            return;
        }
        let legacy = self.dialect == Dialect::Legacy;
        match command {
            Command::Join(req) => match self
                .hub
                .join(&self.conn, self.identity.entity, &req, legacy)
                .await
            {
                Ok(joined) => {
                    let room = req
                        .channel
                        .spelled
                        .clone()
                        .unwrap_or_else(|| joined.channel.room_id());
                    let _ = ack.send(&AckReply::joined(
                        joined.channel.id,
                        room,
                        joined.recovery.clone(),
                    ));
                    if joined.was_rejoined {
                        // The automatic rejoin announced this channel already: one
                        // `channel_joined` per channel and connection.
                        return;
                    }
                    let payload = ChannelJoined {
                        message: texts::joined(
                            &self.conn.0,
                            &req.channel
                                .spelled
                                .clone()
                                .unwrap_or(joined.channel.id.to_string()),
                        ),
                        scope: {
                            let mut scope = joined.channel.scope();
                            if let Some(spelled) = &req.channel.spelled {
                                scope.room_id = spelled.clone();
                            }
                            scope
                        },
                        entity_id: self.identity.entity,
                        agent_id: req.agent_id.clone(),
                        rejoined: false,
                        recovery: joined.recovery,
                    };
                    emit(&self.socket, ServerEvent::ChannelJoined(payload.clone()));
                    emit(&self.socket, ServerEvent::RoomJoined(payload));
                }
                Err(e) => self.refuse(e.to_string(), None, ack),
            },
            Command::Send(req) => {
                let client_message_id = req.client_message_id.clone();
                let socket = self.socket.clone();
                let cmid = client_message_id.clone();
                let on_commit = Box::new(
                    move |outcome: Result<&confab_hub::Committed, &HubError>| match outcome {
                        Ok(c) => {
                            let _ = ack.send(&AckReply::sent(&confab_hub::delivery::ack(
                                &c.message, &c.channel, cmid, c.repeat,
                            )));
                        }
                        Err(e) => {
                            if legacy {
                                emit(
                                    &socket,
                                    ServerEvent::LegacyAck(AckReply::failure(e.to_string())),
                                );
                            }
                            emit(&socket, message_error(e.to_string(), cmid.clone()));
                            let _ = ack.send(&AckReply::failure(e.to_string()));
                        }
                    },
                );
                // On failure the hub has already answered through `on_commit`.
                if let Err(e) = self
                    .hub
                    .send(&self.conn, self.identity.entity, req, legacy, on_commit)
                    .await
                {
                    tracing::debug!(conn = %self.conn, ?client_message_id, error = %e, "send refused");
                }
            }
            Command::Leave(req) => match self
                .hub
                .leave(&self.conn, self.identity.entity, &req.channel)
                .await
            {
                Ok(info) => {
                    let _ = ack.send(&AckReply::channel(
                        info.id,
                        Some(req.channel.spelled.clone().unwrap_or(info.room_id())),
                    ));
                }
                Err(_) => self.refuse(
                    format!("Not a member of channel {}", req.channel.id),
                    None,
                    ack,
                ),
            },
            Command::Typing(req) => {
                self.hub
                    .typing(&self.conn, self.identity.entity, &req)
                    .await;
                let _ = ack.send(&AckReply::channel(req.channel.id, None));
            }
            Command::SubscribeLogs => {
                let reply = self.logs.subscribe(&self.conn);
                let _ = ack.send(&reply);
                emit(&self.socket, ServerEvent::LogSubscriptionConfirmed(reply));
            }
            Command::UnsubscribeLogs => {
                let reply = self.logs.unsubscribe(&self.conn);
                let _ = ack.send(&reply);
                emit(&self.socket, ServerEvent::LogSubscriptionConfirmed(reply));
            }
            Command::UpdateLogFilters(update) => {
                let reply = self.logs.update_filters(&self.conn, update);
                let _ = ack.send(&reply);
                emit(&self.socket, ServerEvent::LogFiltersUpdated(reply));
            }
        }
    }

    fn refuse(&self, error: String, client_message_id: Option<String>, ack: AckSender) {
        let _ = ack.send(&AckReply::failure(error.clone()));
        emit(&self.socket, message_error(error, client_message_id));
    }
}

fn message_error(error: String, client_message_id: Option<String>) -> ServerEvent {
    ServerEvent::MessageError(MessageError::new(error).for_message(client_message_id))
}

pub(crate) fn emit(socket: &SocketRef, event: ServerEvent) {
    if let Err(e) = socket.emit(event.name(), &event) {
        tracing::debug!(socket = %socket.id, event = event.name(), error = %e, "emit failed");
    }
}
