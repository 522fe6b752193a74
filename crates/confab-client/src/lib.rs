//! A Rust client for confab — and for ElizaOS 1.x servers, which speak the same protocol.
//!
//! * [`Client::connect`] opens a Socket.IO (Engine.IO v4, WebSocket) connection with
//!   `auth.entityId` (and `apiKey` if set).
//! * [`Client::join`] / [`Client::leave`] channels; [`Client::send`] resolves with the server's
//!   acknowledgement, which carries the stored message's id.
//! * [`Events`] is the typed stream of what arrives: messages (each id once), stream chunks,
//!   `controlMessage`, `messageComplete`, errors, presence, connection changes.
//! * When the connection drops it reconnects with exponential backoff (1 s × 2ⁿ, 5 attempts by
//!   default: [`Reconnect`]), rejoins every channel with `lastMessageId` so the server replays
//!   what was missed, and sends what was queued meanwhile (a bounded offline queue). A message
//!   sent on the lost connection but not acknowledged is sent again first, with its original
//!   `messageId`: the server stores it once and acknowledges the resend as a repeat
//!   ([`Ack::repeat`]). Sends can be throttled ([`Config::min_send_interval`]).
//! * [`Rest`] has the HTTP calls a chat needs: agents, channels, DMs, history, and media
//!   uploads ([`Rest::upload_channel_media`], [`Rest::upload_agent_media`]); a message carries
//!   an uploaded file as an [`Attachment`] ([`Outgoing::attach`]).
//! * `https://` (and `wss://`) servers work through rustls, with the system's root certificates;
//!   [`Config::add_root_certificate_pem`] trusts a private CA or a self-signed server too.
//!
//! The Socket.IO layer is this crate's own small implementation over `tokio-tungstenite` (see
//! [`packet`]): `rust_socketio`, the maintained Socket.IO client crate, ties in OpenSSL
//! (`native-tls`) and a second, older WebSocket stack, and its reconnection would still need this
//! crate's rejoin/resume logic on top.
//!
//! ```no_run
//! use confab_client::{Client, Config, Event, Outgoing};
//! use uuid::Uuid;
//!
//! # async fn run() -> Result<(), confab_client::Error> {
//! let eliza: Uuid = "b850bc30-45f8-0041-a00a-83df46d8555d".parse().unwrap();
//! let (client, mut events) =
//!     Client::connect(Config::new("http://localhost:3000").sender_name("Pat")).await?;
//! let dm = client.rest().dm_channel(client.entity_id(), eliza).await?;
//! client.join(dm.id).await?;
//! let ack = client.send(Outgoing::new(dm.id, "I am unhappy.").dm_with(eliza)).await?;
//! println!("stored as {}", ack.message_id);
//! while let Some(event) = events.next().await {
//!     match event {
//!         Event::StreamChunk { chunk, .. } => print!("{chunk}"),
//!         Event::Message(m) if m.is_agent_reply() => println!("\n{}: {}", m.sender_name, m.text),
//!         Event::Complete { .. } => break,
//!         _ => {}
//!     }
//! }
//! client.close();
//! # Ok(()) }
//! ```

mod client;
mod media;
pub mod packet;
mod rest;
mod tls;
mod types;

pub use client::{Client, Config, Error, Events, Outgoing, Reconnect, Result, within};
pub use media::{Attachment, MediaFile, MediaUpload, content_kind};
pub use rest::{AgentInfo, ChannelInfo, Rest};
pub use types::{
    Ack, ConnectionState, DEFAULT_SERVER, Event, Joined, Message, PresenceKind, Recovery,
};
