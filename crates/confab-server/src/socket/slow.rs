//! Slow consumers. Each connection's outgoing queue is bounded, in packets (`--socket-buffer`)
//! and in payload bytes (`--socket-buffer-bytes`); a broadcast never waits for it, and a packet
//! that does not fit is dropped for that connection only. A connection whose queue is full is
//! then evicted: it leaves its rooms at once and its transport is closed at once, without a
//! Socket.IO DISCONNECT packet (which could not be queued anyway). The client sees its
//! transport close, as after a network failure, so a stock socket.io-client reconnects by
//! itself, and resumes with `lastMessageId` (the automatic rejoin does it for it).
//!
//! What one stalled connection can hold is bounded: its queue (`--socket-buffer-bytes` plus
//! one packet), the websocket writer's buffer (128 KiB plus one frame), and the kernel's send
//! buffer (`--socket-send-buffer`, doubled by Linux). After the eviction the server holds
//! none of it within a second: the websocket writer gives a peer that does not read one second
//! to take its close frame, then drops the connection (the engineioxide patch in `vendor/`).
//!
//! socketioxide reports a broadcast's failures without saying which sockets failed, so the
//! room's sockets are probed: an acknowledgement packet with an id no client ever uses, which
//! clients ignore, and which cannot be queued on exactly the full ones.

use std::convert::Infallible;
use std::sync::{Arc, Weak};

use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::{FromConnectParts, FromMessageParts, Value};
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::{Sid, Socket};

/// An acknowledgement id no client allocates (they count up from 0).
const PROBE_ACK_ID: i64 = 9_007_199_254_740_991;

/// A weak handle on the socket, taken at the handshake (the only place socketioxide hands one
/// out), kept in the socket's extensions.
#[derive(Clone)]
pub struct Probe(Weak<Socket<LocalAdapter>>);

impl FromConnectParts<LocalAdapter> for Probe {
    type Error = Infallible;
    fn from_connect_parts(
        s: &Arc<Socket<LocalAdapter>>,
        _: &Option<Value>,
    ) -> Result<Self, Infallible> {
        Ok(Probe(Arc::downgrade(s)))
    }
}

impl Probe {
    /// True if the socket's outgoing queue has no room.
    pub fn is_full(&self) -> bool {
        let Some(socket) = self.0.upgrade() else {
            return false;
        };
        let Ok(ack) = AckSender::from_message_parts(
            &socket,
            &mut Value::Bytes(Default::default()),
            &Some(PROBE_ACK_ID),
        );
        matches!(
            ack.send(&()),
            Err(socketioxide::SendError::Socket(
                socketioxide::SocketError::InternalChannelFull
            ))
        )
    }
}

/// After a broadcast to `room` reported full queues: finds and disconnects those connections,
/// and returns them (the hub stops their resume points before this broadcast).
pub fn evict_full(ns: &BroadcastOperators, room: String) -> Vec<Sid> {
    let mut evicted = Vec::new();
    for socket in ns.clone().to(room).sockets() {
        let full = socket
            .extensions
            .get::<Probe>()
            .is_some_and(|p| p.is_full());
        if full {
            evicted.push(socket.id);
            evict(socket);
        }
    }
    evicted
}

/// Disconnects a connection that stopped reading: it leaves its rooms, and its transport is
/// closed now, whether or not it ever reads again (see the module comment).
pub fn evict(socket: SocketRef) {
    if socket.extensions.insert(Evicted).is_some() {
        return;
    }
    metrics::counter!(crate::metrics::SLOW_CONSUMERS).increment(1);
    tracing::warn!(socket = %socket.id, "slow consumer: outgoing queue full; closing its transport (it can reconnect and resume)");
    socket.leave_all();
    socket.close_transport();
}

#[derive(Clone)]
struct Evicted;
