//! The Socket.IO adapter: handshake, one ordered worker per connection, and the fan-out rooms.

pub mod compact;
mod connection;
pub mod fanout;
pub mod guard;
pub mod handshake;
pub mod slow;

use std::sync::Arc;

use confab_hub::Hub;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;

use crate::logs::LogHub;
use crate::security::Security;
use handshake::{Identity, Refused};

/// Registers the default namespace.
pub fn attach(
    io: &SocketIo,
    hub: Hub,
    logs: LogHub,
    strict_auth: bool,
    inbound_queue: usize,
    security: Arc<Security>,
) {
    let admitting = security.clone();
    let authenticate = async move |socket: SocketRef,
                                   TryData(auth): TryData<Value>,
                                   probe: slow::Probe|
                -> Result<(), Refused> {
        // API key / token, entity, connection limits (see `guard::admit`).
        guard::admit(&admitting, &socket, auth.as_ref().ok(), strict_auth)?;
        socket.extensions.insert(probe);
        // Listen now, before the CONNECT packet goes out: socketioxide runs the connect handler
        // on a spawned task after sending it, and a client may emit the moment it sees
        // `connect` (every seed joins from its `connect` handler).
        connection::listen(&socket, inbound_queue);
        Ok(())
    };
    let handler = async move |socket: SocketRef| {
        let Some(identity) = socket.extensions.get::<Identity>() else {
            return;
        };
        tracing::debug!(socket = %socket.id, entity = %identity.entity, transport = ?socket.transport_type(), "connected");
        let guard = guard::Guard::new(security.clone(), &socket);
        connection::on_connect(socket, identity, hub.clone(), logs.clone(), guard).await;
    };
    io.ns("/", handler.with(authenticate));
}
