//! [`FanOut`] over one node's Socket.IO rooms: room name = the channel's UUID (as in ElizaOS),
//! plus `legacy:<uuid>` for members speaking seed 000's dialect.

use async_trait::async_trait;
use confab_hub::{ConnId, FanOut};
use confab_protocol::ServerEvent;
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Sid;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

pub struct SocketIoFanOut {
    io: SocketIo,
    /// Packets dropped because a connection's outgoing buffer was full.
    pub dropped: AtomicU64,
}

impl SocketIoFanOut {
    pub fn new(io: SocketIo) -> Self {
        SocketIoFanOut {
            io,
            dropped: AtomicU64::new(0),
        }
    }

    fn sid(conn: &ConnId) -> Option<Sid> {
        Sid::from_str(&conn.0).ok()
    }

    /// The default namespace. Not `io.to` / `io.get_socket`: those panic once the namespace is
    /// gone, which happens while the server closes at shutdown and disconnects are still handled.
    fn ns(&self) -> Option<BroadcastOperators> {
        self.io.of("/")
    }

    fn socket(&self, conn: &ConnId) -> Option<SocketRef> {
        self.ns()?.get_socket(Self::sid(conn)?)
    }

    fn note_drops(&self, n: usize, event: &ServerEvent) {
        if n > 0 {
            let total = self.dropped.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
            tracing::warn!(
                event = event.name(),
                dropped = n,
                total,
                "slow connections: outgoing buffer full, packet dropped (the connection is closed and can resume)"
            );
        }
    }

    /// Returns the connections that could not take the event.
    async fn to_room(
        &self,
        room: String,
        event: &ServerEvent,
        except: Option<&ConnId>,
    ) -> Vec<ConnId> {
        // `socket.to(room)` leaves that socket out, as in socket.io.
        let op = match except.and_then(|conn| self.socket(conn)) {
            Some(socket) => socket.to(room.clone()),
            None => match self.ns() {
                Some(ns) => ns.to(room.clone()),
                None => return Vec::new(),
            },
        };
        let counters = crate::metrics::per_message();
        counters.messages_out.increment(1);
        let receivers = op.clone().sockets().len();
        if receivers == 0 {
            // A direct message's sender alone in its channel, say: nothing to encode.
            return Vec::new();
        }
        counters.deliveries.increment(receivers as u64);
        match op.emit(event.name(), event).await {
            Ok(()) => Vec::new(),
            Err(socketioxide::BroadcastError::Socket(errors)) => {
                self.note_drops(errors.len(), event);
                // Slow consumers: find the full connections and disconnect them (socket::slow).
                match self.ns() {
                    Some(ns) => super::slow::evict_full(&ns, room)
                        .into_iter()
                        .map(|sid| ConnId(sid.to_string()))
                        .collect(),
                    None => Vec::new(),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, event = event.name(), "broadcast failed");
                Vec::new()
            }
        }
    }
}

pub fn room(channel: Uuid) -> String {
    channel.to_string()
}

pub fn legacy_room(channel: Uuid) -> String {
    format!("legacy:{channel}")
}

#[async_trait]
impl FanOut for SocketIoFanOut {
    async fn to_channel(
        &self,
        channel: Uuid,
        event: &ServerEvent,
        except: Option<&ConnId>,
    ) -> Vec<ConnId> {
        self.to_room(room(channel), event, except).await
    }

    fn has_legacy_members(&self, channel: Uuid) -> bool {
        // Most channels have no seed-000 members: the caller skips building their event.
        self.ns()
            .is_some_and(|ns| !ns.to(legacy_room(channel)).sockets().is_empty())
    }

    async fn to_legacy_members(
        &self,
        channel: Uuid,
        event: &ServerEvent,
        except: Option<&ConnId>,
    ) -> Vec<ConnId> {
        if self.has_legacy_members(channel) {
            self.to_room(legacy_room(channel), event, except).await
        } else {
            Vec::new()
        }
    }

    async fn to_conn(&self, conn: &ConnId, event: &ServerEvent) -> bool {
        let Some(socket) = self.socket(conn) else {
            return false;
        };
        crate::metrics::per_message().deliveries.increment(1);
        let Err(e) = socket.emit(event.name(), event) else {
            return true;
        };
        match e {
            socketioxide::SendError::Socket(socketioxide::SocketError::Closed) => {}
            socketioxide::SendError::Socket(socketioxide::SocketError::InternalChannelFull) => {
                self.note_drops(1, event);
                super::slow::evict(socket);
            }
            _ => self.note_drops(1, event),
        }
        false
    }

    async fn join(&self, conn: &ConnId, channel: Uuid, legacy: bool) {
        if let Some(socket) = self.socket(conn) {
            if legacy {
                socket.join(vec![room(channel), legacy_room(channel)]);
            } else {
                socket.join(room(channel));
            }
        }
    }

    async fn leave(&self, conn: &ConnId, channel: Uuid) {
        if let Some(socket) = self.socket(conn) {
            socket.leave(vec![room(channel), legacy_room(channel)]);
        }
    }
}
