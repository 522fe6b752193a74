//! Graceful shutdown on SIGTERM / SIGINT: stop accepting; tell every client to reconnect
//! (`server_shutdown {reconnect:true}`, then the transport closes, which socket.io clients
//! answer by reconnecting); let each connection's worker hand what it already received to the
//! hub; wait for the sequencer to commit everything queued; exit — all within a bound.

use std::time::{Duration, Instant};

use confab_hub::Hub;
use serde_json::json;
use socketioxide::SocketIo;

/// Tells clients the server is going away and closes their transports.
pub async fn close_sockets(io: &SocketIo) {
    if let Some(ns) = io.of("/") {
        let _ = ns
            .emit(
                "server_shutdown",
                &json!({
                    "reconnect": true,
                    "message": "The server is restarting; reconnect shortly.",
                }),
            )
            .await;
    }
    io.close().await;
}

/// Waits (bounded) for every connection's worker to finish and for the hub to commit what it
/// was given. An acknowledged message was committed before its acknowledgement went out; this
/// also commits those still in flight.
pub async fn drain(hub: &Hub, deadline: Instant) {
    // Closing the server drops the namespace before its sockets, so connection workers are not
    // told they are done; they still hand what they had queued to the hub. The hub has drained
    // once the last stored sequence number stops moving (the sequencer holds the store's commit
    // lock for every batch, so reading it waits for a batch in flight).
    let mut last = None;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok(seq)) = tokio::time::timeout(left, hub.store().last_seq()).await else {
            break;
        };
        if last == Some(seq) {
            return;
        }
        last = Some(seq);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!("shutdown: time limit reached before everything was committed");
}
