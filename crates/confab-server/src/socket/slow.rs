//! Slow consumers. Each connection's outgoing queue is bounded (`max_buffer_size`, the
//! `--socket-buffer` setting); a broadcast never waits for it, and a packet that does not fit
//! is dropped for that connection only. A connection whose queue is full is then disconnected:
//! it leaves its rooms at once (so it costs nothing more); if it reads again, it gets
//! `messageError {error, reason:"slow_consumer", reconnect:true}` and a DISCONNECT; if it
//! never does, its transport is closed by the next heartbeat, which cannot be queued either
//! (within one ping interval). Either way it can reconnect and resume with `lastMessageId`.
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

/// What a dropped slow consumer is told, as `messageError` (every client listens for it).
pub const SLOW_CONSUMER: &str = "Disconnected: this connection stopped reading and its outgoing queue is full. Reconnect and join with lastMessageId to recover.";

/// Disconnects a connection that stopped reading: it leaves its rooms now; the reason and the
/// DISCONNECT packet go out as soon as its queue has room for them (a client that resumes
/// reading gets them after what was already queued). A client that never reads again is closed
/// by the heartbeat, which cannot be queued either.
pub fn evict(socket: SocketRef) {
    if socket.extensions.insert(Evicted).is_some() {
        return;
    }
    metrics::counter!(crate::metrics::SLOW_CONSUMERS).increment(1);
    tracing::warn!(socket = %socket.id, "slow consumer: outgoing queue full; disconnecting it (it can reconnect and resume)");
    socket.leave_all();
    tokio::spawn(async move {
        let reason = serde_json::json!({
            "error": SLOW_CONSUMER,
            "reason": "slow_consumer",
            "reconnect": true,
        });
        let mut told = false;
        while socket.connected() {
            if !told {
                told = socket.emit("messageError", &reason).is_ok();
            }
            if told && socket.clone().disconnect().is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
}

#[derive(Clone)]
struct Evicted;
