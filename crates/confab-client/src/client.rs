//! The connection manager: one background task owns the WebSocket and everything that must
//! survive a reconnect (joined channels with their resume points, the offline queue, the ids
//! already seen). The [`Client`] handle talks to it over a channel.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use crate::media::Attachment;
use crate::packet::{self, Inbound};
use crate::rest::Rest;
use crate::types::{
    Ack, ConnectionState, DEFAULT_SERVER, Event, Joined, Message, Recovery, event_from_wire,
};

/// Errors of the client.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("the server refused the connection: {0}")]
    Refused(String),
    #[error("the connection was lost before the server acknowledged the message")]
    ConnectionLost,
    #[error("the offline queue is full ({0} messages waiting)")]
    QueueFull(usize),
    #[error("the server rejected the message: {0}")]
    Rejected(String),
    #[error("the client is closed")]
    Closed,
    #[error("HTTP request failed: {0}")]
    Http(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Reconnection policy: the delay before attempt `n` (1-based) is
/// `initial_delay × 2ⁿ⁻¹`, capped at `max_delay`; after `max_attempts` failed attempts in a row
/// the client gives up (seed 000: 1 s, doubling, 5 attempts).
#[derive(Debug, Clone)]
pub struct Reconnect {
    pub enabled: bool,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// `None`: never give up.
    pub max_attempts: Option<u32>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            enabled: true,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_attempts: Some(5),
        }
    }
}

impl Reconnect {
    /// The wait before attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server, e.g. `http://localhost:3000`.
    pub url: String,
    /// Who this client is (handshake `auth.entityId`, `senderId` of its messages).
    pub entity_id: Uuid,
    /// Display name on sent messages.
    pub sender_name: String,
    /// Sent as `auth.apiKey` and the `x-api-key` header (ElizaOS `SERVER_API_KEY`).
    pub api_key: Option<String>,
    pub message_server_id: Uuid,
    pub reconnect: Reconnect,
    /// Most sends held while offline (or waiting for the throttle); more fail with `QueueFull`.
    pub offline_queue: usize,
    /// Optional minimum time between two sends; sends wait their turn, none is dropped.
    pub min_send_interval: Option<Duration>,
    /// Bound on opening one connection.
    pub connect_timeout: Duration,
    /// Ids remembered for de-duplication.
    pub dedup_window: usize,
    /// Certificates (PEM) trusted for `https://` / `wss://` besides the system's roots.
    pub root_certificates: Vec<Vec<u8>>,
}

impl Config {
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            entity_id: Uuid::new_v4(),
            sender_name: "User".into(),
            api_key: None,
            message_server_id: DEFAULT_SERVER,
            reconnect: Reconnect::default(),
            offline_queue: 100,
            min_send_interval: None,
            connect_timeout: Duration::from_secs(10),
            dedup_window: 10_000,
            root_certificates: Vec::new(),
        }
    }
    /// Trusts the certificates in this PEM data (a private CA, a self-signed server) for
    /// `https://` / `wss://`, besides the system's roots. Checked when connecting.
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }
    pub fn entity_id(mut self, id: Uuid) -> Self {
        self.entity_id = id;
        self
    }
    pub fn sender_name(mut self, name: impl Into<String>) -> Self {
        self.sender_name = name.into();
        self
    }
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
    pub fn reconnect(mut self, r: Reconnect) -> Self {
        self.reconnect = r;
        self
    }
    pub fn offline_queue(mut self, n: usize) -> Self {
        self.offline_queue = n;
        self
    }
    pub fn min_send_interval(mut self, d: Duration) -> Self {
        self.min_send_interval = Some(d);
        self
    }
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub channel_id: Uuid,
    pub text: String,
    /// Echoed back as `clientMessageId` on the sender's copy and in the ack.
    pub client_message_id: String,
    pub metadata: Option<Value>,
    pub source: Option<String>,
    /// Sent as the payload's `attachments` (ElizaOS's `Media` objects).
    pub attachments: Vec<Attachment>,
}

impl Outgoing {
    pub fn new(channel_id: Uuid, text: impl Into<String>) -> Self {
        Outgoing {
            channel_id,
            text: text.into(),
            client_message_id: Uuid::new_v4().to_string(),
            metadata: None,
            source: None,
            attachments: Vec::new(),
        }
    }
    /// Adds an attachment (an uploaded file: [`Attachment::from_upload`]).
    pub fn attach(mut self, attachment: Attachment) -> Self {
        self.attachments.push(attachment);
        self
    }
    /// Marks the channel as a DM with `peer` (an agent): the server creates it on first use
    /// with both as participants.
    pub fn dm_with(mut self, peer: Uuid) -> Self {
        let mut m = self.metadata.take().unwrap_or_else(|| json!({}));
        m["channelType"] = json!("DM");
        m["isDm"] = json!(true);
        m["targetUserId"] = json!(peer);
        self.metadata = Some(m);
        self.source = Some("client_chat".into());
        self
    }
}

enum Cmd {
    Join(Uuid, oneshot::Sender<Result<Joined>>),
    Leave(Uuid),
    Send(Box<Outgoing>, oneshot::Sender<Result<Ack>>),
    Close,
}

/// A handle on the connection; cheap to clone.
#[derive(Clone)]
pub struct Client {
    cmds: mpsc::UnboundedSender<Cmd>,
    state: watch::Receiver<ConnectionState>,
    config: Arc<Config>,
    rest: Rest,
}

/// The incoming events, in arrival order. Also a [`Stream`].
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the client is closed and everything was read.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

impl Stream for Events {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

impl Client {
    /// Connects; resolves once the first connection is up (after the reconnection policy's
    /// attempts, if the server is not reachable at once).
    pub async fn connect(config: Config) -> Result<(Client, Events)> {
        let config = Arc::new(config);
        let secure = packet::websocket_url(&config.url).starts_with("wss://");
        let tls = if secure {
            Some(crate::tls::client_config(&config.root_certificates)?)
        } else {
            None
        };
        let rest = Rest::with_root_certificates(
            &config.url,
            config.api_key.clone(),
            &config.root_certificates,
        )?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (state_tx, mut state_rx) = watch::channel(ConnectionState::Connecting);
        let last_error = Arc::new(Mutex::new(None));
        let driver = Driver {
            config: config.clone(),
            tls,
            cmds: cmd_rx,
            events: ev_tx,
            state: state_tx,
            last_error: last_error.clone(),
            channels: BTreeMap::new(),
            joined_at: HashMap::new(),
            joins: HashMap::new(),
            outbox: VecDeque::new(),
            inflight: HashMap::new(),
            next_ack: 0,
            seen: Seen::new(config.dedup_window),
            last_sent: None,
            ever_connected: false,
            closing: false,
        };
        tokio::spawn(driver.run());
        let client = Client {
            cmds: cmd_tx,
            state: state_rx.clone(),
            rest,
            config,
        };
        let outcome = state_rx
            .wait_for(|s| matches!(s, ConnectionState::Connected | ConnectionState::Closed))
            .await
            .map(|s| *s);
        match outcome {
            Ok(ConnectionState::Connected) => Ok((client, Events { rx: ev_rx })),
            _ => Err(last_error
                .lock()
                .unwrap()
                .clone()
                .unwrap_or(Error::Connect("closed".into()))),
        }
    }

    pub fn entity_id(&self) -> Uuid {
        self.config.entity_id
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The REST side of the same server.
    pub fn rest(&self) -> &Rest {
        &self.rest
    }

    pub fn state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    /// Watches the connection state.
    pub fn state_changes(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Joins a channel (kept across reconnects, resuming from the last message seen);
    /// resolves on the server's `channel_joined`. Offline, it resolves after the reconnect.
    pub async fn join(&self, channel_id: Uuid) -> Result<Joined> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Join(channel_id, tx))
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Leaves a channel: no more events from it, no rejoin.
    pub fn leave(&self, channel_id: Uuid) -> Result<()> {
        self.cmds
            .send(Cmd::Leave(channel_id))
            .map_err(|_| Error::Closed)
    }

    /// Sends a message and resolves with the server's acknowledgement (sent after the
    /// message is stored), carrying its id. Offline, the message waits in the queue.
    pub async fn send(&self, msg: Outgoing) -> Result<Ack> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Send(Box::new(msg), tx))
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// `send(Outgoing::new(channel, text))`.
    pub async fn send_text(&self, channel_id: Uuid, text: impl Into<String>) -> Result<Ack> {
        self.send(Outgoing::new(channel_id, text)).await
    }

    /// Disconnects for good; queued sends fail with `Closed`.
    pub fn close(&self) {
        let _ = self.cmds.send(Cmd::Close);
    }
}

/// How much earlier than the first join a rejoin without a last message resumes (clock skew
/// between client and server).
const SINCE_SKEW_MS: i64 = 5_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Ids already delivered, bounded (oldest forgotten first).
struct Seen {
    set: HashSet<Uuid>,
    order: VecDeque<Uuid>,
    cap: usize,
}

impl Seen {
    fn new(cap: usize) -> Self {
        Seen {
            set: HashSet::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }
    /// True if `id` is new.
    fn insert(&mut self, id: Uuid) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

struct Pending {
    msg: Box<Outgoing>,
    reply: oneshot::Sender<Result<Ack>>,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Driver {
    config: Arc<Config>,
    /// For `wss://`: rustls with the system's roots and the configured extra certificates.
    tls: Option<Arc<rustls::ClientConfig>>,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    events: mpsc::UnboundedSender<Event>,
    state: watch::Sender<ConnectionState>,
    last_error: Arc<Mutex<Option<Error>>>,
    /// Joined channels → the last message id seen there (the resume point).
    channels: BTreeMap<Uuid, Option<Uuid>>,
    /// When each channel was first joined (local epoch ms): the resume point of a rejoin while
    /// no message has been seen there yet (`since`, a few seconds early for clock skew; the
    /// replayed ids already seen are dropped).
    joined_at: HashMap<Uuid, i64>,
    joins: HashMap<Uuid, Vec<oneshot::Sender<Result<Joined>>>>,
    outbox: VecDeque<Pending>,
    inflight: HashMap<u64, Pending>,
    next_ack: u64,
    seen: Seen,
    last_sent: Option<Instant>,
    ever_connected: bool,
    closing: bool,
}

/// Why a session ended.
enum End {
    Lost(String),
    Closed,
}

impl Driver {
    async fn run(mut self) {
        let mut attempt = 0u32;
        loop {
            match self.open().await {
                Ok((ws, keepalive)) => {
                    attempt = 0;
                    let reconnected = self.ever_connected;
                    self.ever_connected = true;
                    self.state.send_replace(ConnectionState::Connected);
                    self.emit(Event::Connected { reconnected });
                    let end = self.session(ws, keepalive).await;
                    match end {
                        End::Closed => {
                            for (_, p) in self.inflight.drain() {
                                let _ = p.reply.send(Err(Error::ConnectionLost));
                            }
                            break;
                        }
                        End::Lost(reason) => {
                            self.requeue_unacknowledged();
                            self.emit(Event::Disconnected { reason });
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "connect failed");
                    let refused = matches!(e, Error::Refused(_));
                    *self.last_error.lock().unwrap() = Some(e);
                    if refused {
                        break;
                    }
                }
            }
            if self.closing || !self.config.reconnect.enabled {
                break;
            }
            attempt += 1;
            if let Some(max) = self.config.reconnect.max_attempts
                && attempt > max
            {
                self.emit(Event::GaveUp { attempts: max });
                break;
            }
            let delay = self.config.reconnect.delay(attempt);
            self.state
                .send_replace(ConnectionState::Reconnecting { attempt });
            self.emit(Event::Reconnecting { attempt, delay });
            if !self.wait_offline(delay).await {
                break;
            }
        }
        self.state.send_replace(ConnectionState::Closed);
        for p in self.outbox.drain(..) {
            let _ = p.reply.send(Err(Error::Closed));
        }
        for (_, waiters) in self.joins.drain() {
            for w in waiters {
                let _ = w.send(Err(Error::Closed));
            }
        }
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// Opens the WebSocket and the Socket.IO session; returns the keep-alive bound.
    async fn open(&mut self) -> Result<(Ws, Duration)> {
        let url = packet::websocket_url(&self.config.url);
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::Connect(e.to_string()))?;
        if let Some(key) = &self.config.api_key
            && let Ok(v) = key.parse()
        {
            req.headers_mut().insert("x-api-key", v);
        }
        let limit = self.config.connect_timeout;
        let handshake = async {
            let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
            let (mut ws, _) =
                tokio_tungstenite::connect_async_tls_with_config(req, None, false, connector)
                    .await
                    .map_err(crate::tls::connect_error)?;
            let mut keepalive = Duration::from_secs(45);
            let mut auth = json!({ "entityId": self.config.entity_id });
            if let Some(key) = &self.config.api_key {
                auth["apiKey"] = json!(key);
            }
            let mut sent_connect = false;
            loop {
                let frame = match ws.next().await {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(_))) | None => {
                        return Err(Error::Connect("closed during the handshake".into()));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(Error::Connect(e.to_string())),
                };
                match packet::decode(&frame) {
                    Inbound::Open {
                        ping_interval_ms,
                        ping_timeout_ms,
                    } => {
                        keepalive = Duration::from_millis(ping_interval_ms + ping_timeout_ms);
                        if !sent_connect {
                            sent_connect = true;
                            send_text(&mut ws, packet::connect(&auth)).await?;
                        }
                    }
                    Inbound::Ping => send_text(&mut ws, packet::PONG.into()).await?,
                    Inbound::Connected => return Ok((ws, keepalive)),
                    Inbound::ConnectError(m) => return Err(Error::Refused(m)),
                    Inbound::Close | Inbound::Disconnect => {
                        return Err(Error::Connect("closed during the handshake".into()));
                    }
                    _ => {}
                }
            }
        };
        timeout(limit, handshake)
            .await
            .map_err(|_| Error::Connect(format!("no handshake within {limit:?}")))?
    }

    /// Runs one connected session until it ends.
    async fn session(&mut self, mut ws: Ws, keepalive: Duration) -> End {
        // Rejoin every channel, resuming after the last message seen there.
        let rejoin: Vec<(Uuid, Option<Uuid>)> =
            self.channels.iter().map(|(c, l)| (*c, *l)).collect();
        for (channel, last) in rejoin {
            if let Err(e) = send_text(&mut ws, self.join_packet(channel, last)).await {
                return End::Lost(e.to_string());
            }
        }
        let mut watchdog = Instant::now() + keepalive;
        loop {
            if let Err(e) = self.flush(&mut ws).await {
                return End::Lost(e.to_string());
            }
            let throttle = self.throttled_until();
            tokio::select! {
                frame = ws.next() => {
                    let text = match frame {
                        Some(Ok(WsMessage::Text(t))) => t,
                        Some(Ok(WsMessage::Close(_))) | None => return End::Lost("connection closed".into()),
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return End::Lost(e.to_string()),
                    };
                    match packet::decode(&text) {
                        Inbound::Ping => {
                            watchdog = Instant::now() + keepalive;
                            if let Err(e) = send_text(&mut ws, packet::PONG.into()).await {
                                return End::Lost(e.to_string());
                            }
                        }
                        Inbound::Close => return End::Lost("transport close".into()),
                        Inbound::Disconnect => return End::Lost("io server disconnect".into()),
                        Inbound::ConnectError(m) => return End::Lost(m),
                        Inbound::Event { name, data, ack } => {
                            if let Some(id) = ack {
                                let _ = send_text(&mut ws, packet::ack(id, &Value::Null)).await;
                            }
                            self.on_event(&name, data);
                        }
                        Inbound::Ack { id, data } => self.on_ack(id, data),
                        _ => {}
                    }
                }
                cmd = self.cmds.recv() => {
                    let Some(cmd) = cmd else {
                        self.closing = true;
                        let _ = ws.close(None).await;
                        return End::Closed;
                    };
                    match cmd {
                        Cmd::Close => {
                            self.closing = true;
                            let _ = ws.close(None).await;
                            return End::Closed;
                        }
                        Cmd::Join(channel, reply) => {
                            let last = *self.channels.entry(channel).or_default();
                            self.joins.entry(channel).or_default().push(reply);
                            if let Err(e) = send_text(&mut ws, self.join_packet(channel, last)).await {
                                return End::Lost(e.to_string());
                            }
                        }
                        Cmd::Leave(channel) => {
                            self.channels.remove(&channel);
                            self.joined_at.remove(&channel);
                            let payload = json!({"channelId": channel, "roomId": channel, "entityId": self.config.entity_id});
                            let _ = send_text(&mut ws, packet::event("leave_channel", &payload, None)).await;
                        }
                        Cmd::Send(msg, reply) => self.enqueue(msg, reply),
                    }
                }
                _ = sleep_until(watchdog) => return End::Lost("ping timeout".into()),
                _ = sleep_until(throttle.unwrap_or(watchdog)), if throttle.is_some() => {}
            }
        }
    }

    /// Offline: waits `delay` while still taking commands. False if the client was closed.
    async fn wait_offline(&mut self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = sleep_until(deadline) => return true,
                cmd = self.cmds.recv() => match cmd {
                    None | Some(Cmd::Close) => {
                        self.closing = true;
                        return false;
                    }
                    Some(Cmd::Join(channel, reply)) => {
                        self.channels.entry(channel).or_default();
                        self.joins.entry(channel).or_default().push(reply);
                    }
                    Some(Cmd::Leave(channel)) => {
                        self.channels.remove(&channel);
                        self.joined_at.remove(&channel);
                        if let Some(waiters) = self.joins.remove(&channel) {
                            for w in waiters {
                                let _ = w.send(Err(Error::Closed));
                            }
                        }
                    }
                    Some(Cmd::Send(msg, reply)) => self.enqueue(msg, reply),
                },
            }
        }
    }

    /// Messages sent on a lost connection without an acknowledgement may have been stored (the
    /// acknowledgement was lost with the connection): they go out again first, in their order,
    /// with their original ids, and the server answers a repeat with the original's
    /// acknowledgement instead of storing it twice.
    fn requeue_unacknowledged(&mut self) {
        let mut unacked: Vec<(u64, Pending)> = self.inflight.drain().collect();
        unacked.sort_by_key(|(id, _)| *id);
        for (_, p) in unacked.into_iter().rev() {
            self.outbox.push_front(p);
        }
    }

    fn enqueue(&mut self, msg: Box<Outgoing>, reply: oneshot::Sender<Result<Ack>>) {
        if self.outbox.len() >= self.config.offline_queue {
            let _ = reply.send(Err(Error::QueueFull(self.outbox.len())));
        } else {
            self.outbox.push_back(Pending { msg, reply });
        }
    }

    fn throttled_until(&self) -> Option<Instant> {
        let (interval, last) = (self.config.min_send_interval?, self.last_sent?);
        (!self.outbox.is_empty() && last + interval > Instant::now()).then_some(last + interval)
    }

    /// Sends what the throttle allows from the outbox.
    async fn flush(&mut self, ws: &mut Ws) -> Result<()> {
        while !self.outbox.is_empty() && self.throttled_until().is_none() {
            let p = self.outbox.pop_front().expect("not empty");
            self.next_ack += 1;
            let id = self.next_ack;
            let m = &p.msg;
            let mut payload = json!({
                "channelId": m.channel_id,
                "roomId": m.channel_id,
                "senderId": self.config.entity_id,
                "senderName": self.config.sender_name,
                "message": m.text,
                "messageServerId": self.config.message_server_id,
                "messageId": m.client_message_id,
                "source": m.source.as_deref().unwrap_or("confab_client"),
            });
            if let Some(meta) = &m.metadata {
                payload["metadata"] = meta.clone();
            }
            if !m.attachments.is_empty() {
                payload["attachments"] = json!(m.attachments);
            }
            let frame = packet::event("message", &json!({"type": 2, "payload": payload}), Some(id));
            self.last_sent = Some(Instant::now());
            self.inflight.insert(id, p);
            send_text(ws, frame).await?;
        }
        Ok(())
    }

    fn join_packet(&self, channel: Uuid, last: Option<Uuid>) -> String {
        let mut payload = json!({
            "channelId": channel,
            "roomId": channel,
            "entityId": self.config.entity_id,
            "messageServerId": self.config.message_server_id,
        });
        if let Some(last) = last {
            payload["lastMessageId"] = json!(last);
        } else if let Some(at) = self.joined_at.get(&channel) {
            payload["since"] = json!(at - SINCE_SKEW_MS);
        }
        packet::event("message", &json!({"type": 1, "payload": payload}), None)
    }

    fn on_ack(&mut self, id: u64, data: Value) {
        let Some(p) = self.inflight.remove(&id) else {
            return;
        };
        let result = if data["success"].as_bool() == Some(true) {
            match data["messageId"].as_str().and_then(|s| s.parse().ok()) {
                Some(message_id) => Ok(Ack {
                    message_id,
                    client_message_id: p.msg.client_message_id.clone(),
                    channel_id: p.msg.channel_id,
                    created_at: data["createdAt"].as_i64().unwrap_or_default(),
                    repeat: data["repeat"].as_bool() == Some(true),
                }),
                None => Err(Error::Rejected(format!("ack without messageId: {data}"))),
            }
        } else {
            Err(Error::Rejected(
                data["error"].as_str().unwrap_or("unknown error").to_owned(),
            ))
        };
        let _ = p.reply.send(result);
    }

    fn on_event(&mut self, name: &str, data: Value) {
        match name {
            "messageBroadcast" => {
                // Some servers send the payload as a JSON string.
                let data = match data {
                    Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::Null),
                    v => v,
                };
                let Some(m) = Message::from_broadcast(&data) else {
                    return;
                };
                if let Some(last) = self.channels.get_mut(&m.channel_id) {
                    *last = Some(m.id);
                }
                if self.seen.insert(m.id) {
                    self.emit(Event::Message(m));
                }
            }
            "channel_joined" => {
                let Some(channel_id) = data["channelId"]
                    .as_str()
                    .and_then(|s| s.parse::<Uuid>().ok())
                else {
                    return;
                };
                let waiters = self.joins.remove(&channel_id).unwrap_or_default();
                if self.channels.contains_key(&channel_id) {
                    self.joined_at.entry(channel_id).or_insert_with(now_ms);
                }
                let joined = Joined {
                    channel_id,
                    recovered: data["recovery"]["delivered"].as_u64().map(|n| n as usize),
                    recovery: Recovery::from_wire(&data["recovery"]),
                    rejoin: waiters.is_empty(),
                };
                for w in waiters {
                    let _ = w.send(Ok(joined.clone()));
                }
                self.emit(Event::Joined(joined));
            }
            // Duplicates of channel_joined / the ack callback.
            "room_joined" | "messageAck" => {}
            _ => self.emit(event_from_wire(name, data)),
        }
    }
}

async fn send_text(ws: &mut Ws, text: String) -> Result<()> {
    ws.send(WsMessage::text(text))
        .await
        .map_err(|e| Error::Connect(e.to_string()))
}

/// Waits at most `d` for a future; a helper for callers and tests.
pub async fn within<T>(d: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        v = f => Some(v),
        _ = sleep(d) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_and_caps() {
        let r = Reconnect::default();
        let secs: Vec<u64> = (1..=6).map(|n| r.delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30]);
        assert_eq!(r.max_attempts, Some(5));
        assert_eq!(r.delay(200), Duration::from_secs(30));
    }

    #[test]
    fn seen_is_bounded() {
        let mut s = Seen::new(2);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert!(s.insert(a) && s.insert(b));
        assert!(!s.insert(a));
        assert!(s.insert(c));
        assert!(s.insert(a), "the oldest id was forgotten");
    }

    #[test]
    fn dm_metadata() {
        let agent = Uuid::new_v4();
        let m = Outgoing::new(Uuid::nil(), "hi").dm_with(agent);
        let meta = m.metadata.unwrap();
        assert_eq!(meta["channelType"], "DM");
        assert_eq!(meta["targetUserId"], json!(agent));
    }
}
