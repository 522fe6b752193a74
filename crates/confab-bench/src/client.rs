//! One Socket.IO connection over a websocket: handshake, join, and a small frame loop helper.
//! The scenario modules drive the connection themselves (one task per connection).

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};
use uuid::Uuid;

use crate::target::Target;
use crate::wire::{self, Frame};

pub type Ws = WebSocketStream<TcpStream>;

/// A connected Socket.IO client.
pub struct Conn {
    pub ws: Ws,
    pub entity: Uuid,
}

fn ws_config() -> WebSocketConfig {
    // Small read buffers: the benchmark holds tens of thousands of connections.
    let mut c = WebSocketConfig::default();
    c.read_buffer_size = 4096;
    c.write_buffer_size = 0;
    c
}

/// TCP connect, websocket upgrade, Engine.IO open, Socket.IO connect with `auth.entityId`.
pub async fn connect(target: &Target, entity: Uuid, timeout: Duration) -> anyhow::Result<Conn> {
    tokio::time::timeout(timeout, connect_inner(target, entity))
        .await
        .map_err(|_| anyhow!("handshake timed out after {timeout:?}"))?
}

async fn connect_inner(target: &Target, entity: Uuid) -> anyhow::Result<Conn> {
    let tcp = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("connecting to {}", target.addr))?;
    tcp.set_nodelay(true)?;
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        target.host_port()
    );
    let (mut ws, _) = client_async_with_config(url, tcp, Some(ws_config()))
        .await
        .context("websocket upgrade")?;
    // Engine.IO OPEN first.
    match next_text(&mut ws).await? {
        t if matches!(wire::parse(&t), Frame::Open(_)) => {}
        t => bail!("expected Engine.IO open, got {t:.80}"),
    }
    ws.send(Message::text(wire::connect_packet(entity))).await?;
    loop {
        let t = next_text(&mut ws).await?;
        match wire::parse(&t) {
            Frame::Connected => break,
            Frame::ConnectError(e) => bail!("connect_error: {e}"),
            Frame::Ping => ws.send(Message::text("3")).await?,
            Frame::Close | Frame::Disconnect => bail!("closed during handshake"),
            _ => {}
        }
    }
    Ok(Conn { ws, entity })
}

/// The next text frame (answering nothing).
pub async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => bail!("connection closed"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

impl Conn {
    /// Joins a channel (`message {type:1}`) and waits for `channel_joined`, answering pings.
    /// Events that arrive meanwhile (greetings) are skipped.
    pub async fn join(&mut self, channel: &str, server_id: &str) -> anyhow::Result<()> {
        self.ws
            .send(Message::text(wire::join_packet(
                channel,
                self.entity,
                server_id,
            )))
            .await?;
        loop {
            let t = next_text(&mut self.ws).await?;
            match wire::parse(&t) {
                Frame::Event {
                    name: "channel_joined",
                    ..
                } => return Ok(()),
                Frame::Event {
                    name: "messageError",
                    data,
                } => bail!("join refused: {data}"),
                Frame::Ping => self.ws.send(Message::text("3")).await?,
                Frame::Close | Frame::Disconnect => bail!("closed while joining"),
                _ => {}
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.send(Message::text("41")).await;
        let _ = self.ws.close(None).await;
    }
}
