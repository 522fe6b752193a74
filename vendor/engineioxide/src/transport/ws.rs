//! The ws transport module is responsible for handling websocket connections
//! The only public function is [`new_req`] which is used to upgrade a http request to a websocket connection
//!
//! Other functions are used internally to handle the websocket connection through tasks and channels
//! and to handle upgrade from polling to ws

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, request::Parts};
use smallvec::smallvec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};
use tokio_util::future::FutureExt as _;

use engineioxide_core::{Packet, PacketBuf, ProtocolVersion, Sid, Str, TransportType};

use crate::{
    DisconnectReason, Socket,
    body::ResponseBody,
    config::EngineIoConfig,
    engine::EngineIo,
    errors::Error,
    handler::EngineIoHandler,
    socket::{InternalRx, Queued},
    transport::make_open_packet,
};

/// Create a response for websocket upgrade
fn ws_response<B>(ws_key: &HeaderValue) -> Response<ResponseBody<B>> {
    let derived = derive_accept_key(ws_key.as_bytes());
    let sec = derived.parse::<HeaderValue>().unwrap();
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::UPGRADE, HeaderValue::from_static("websocket"))
        .header(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        )
        .header(http::header::SEC_WEBSOCKET_ACCEPT, sec)
        .body(ResponseBody::empty_response())
        .unwrap() // we are only using constants
}

/// Upgrade a websocket request to create a websocket connection.
///
/// If a sid is provided in the query it means that is is upgraded from an existing HTTP polling request.
/// In this case the http polling request is closed and the SID is kept for the websocket
pub fn new_req<R: Send + 'static, B, H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req: Request<R>,
) -> Result<Response<ResponseBody<B>>, Error> {
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts.clone(), body);

    let ws_key = parts
        .headers
        .get("Sec-WebSocket-Key")
        .ok_or(Error::InvalidWebSocketKey)?
        .clone();

    // This task lives as long as the connection: it keeps the upgrade future and the request's
    // parts (boxed, and given away once the connection is upgraded), not the whole request.
    let upgrade = hyper::upgrade::on(req);
    let parts = Box::new(parts);
    tokio::spawn(async move {
        let conn = upgrade.await.map(hyper_util::rt::TokioIo::new);

        let res = match conn {
            Ok(conn) => on_init(engine.clone(), conn, protocol, sid, *parts).await,
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!("ws upgrade error: {}", _e);
                return;
            }
        };

        match res {
            Ok(_) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed")
            }
            Err(Error::MultipleWebsocketRequests) => {}
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed with error: {_e}");
                if let Some(sid) = sid {
                    engine.close_session(sid, DisconnectReason::TransportError);
                }
            }
        }
    });

    Ok(ws_response(&ws_key))
}

/// Handle a websocket connection upgrade
///
/// Sends an open packet if it is not an upgrade from a polling request
///
/// Read packets from the websocket and handle them, it will block until the connection is closed
///
/// The future it returns lives as long as the connection, so it is kept small: the session's
/// setup (the websocket handshake or the upgrade from polling, with the connection, the request
/// parts and their timers) is boxed and freed once done, and only the reading loop stays.
pub fn on_init<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> impl Future<Output = Result<(), Error>> + Send + 'static
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let setup = Box::pin(init_session::<H, S>(
        engine.clone(),
        conn,
        protocol,
        sid,
        req_data,
    ));
    run_session::<H, S, _>(engine, setup)
}

/// Sets a websocket session up: a new session and its open packet, or the upgrade of a polling
/// session. Returns the socket and its websocket.
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", name = "init_websocket", skip(engine, conn, req_data))
)]
async fn init_session<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> Result<(Arc<Socket<H::Data>>, WebSocketStream<S>, bool), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(engine.config.ws_read_buffer_size)
        .max_message_size(Some(engine.config.ws_max_message_size))
        .max_frame_size(Some(engine.config.ws_max_frame_size));

    let ws_init = move || WebSocketStream::from_raw_socket(conn, Role::Server, Some(ws_config));
    let (socket, ws) = if let Some(sid) = sid {
        match engine.get_socket(sid) {
            None => return Err(Error::UnknownSessionID(sid)),
            Some(socket) if socket.is_ws() => return Err(Error::MultipleWebsocketRequests),
            Some(socket) => {
                let mut ws = ws_init().await;

                let upgrade_fut = upgrade_handshake::<H, S>(&socket, &mut ws);
                match tokio::time::timeout(engine.config.upgrade_timeout, upgrade_fut)
                    .with_cancellation_token(&socket.cancellation_token)
                    .await
                {
                    Some(Ok(res)) => res?,
                    Some(Err(_)) => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "ws upgrade timed out, closing session");
                        engine.close_session(socket.id, DisconnectReason::TransportError);
                        return Err(Error::Upgrade);
                    }
                    None => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "socket is being closed");
                        return Err(Error::Upgrade);
                    }
                }
                (socket, ws)
            }
        }
    } else {
        let socket = engine.create_session(protocol, TransportType::Websocket, req_data, false);

        #[cfg(feature = "tracing")]
        tracing::debug!("new websocket connection");

        let mut ws = ws_init().await;
        init_handshake(socket.id, &mut ws, &engine.config).await?;
        // The session's task runs its heartbeat (see `Heartbeat`).
        return Ok((socket, ws, true));
    };
    Ok((socket, ws, false))
}

/// Runs a websocket session once [`init_session`] has set it up: one task reads the websocket,
/// writes what is queued for it and, for a session opened on the websocket, runs its heartbeat.
///
/// The future it returns lives as long as the connection, so what it keeps inline is what
/// waiting needs (the websocket, the queue's receiving ends, one timer); handling a batch to
/// write is a boxed future, freed once written.
async fn run_session<H: EngineIoHandler, S, F>(
    engine: Arc<EngineIo<H>>,
    setup: std::pin::Pin<Box<F>>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Future<Output = Result<(Arc<Socket<H::Data>>, WebSocketStream<S>, bool), Error>>,
{
    let (socket, ws, own_heartbeat) = setup.await?;
    let heartbeat = own_heartbeat.then(|| Heartbeat::new(&engine.config, socket.protocol));
    session_loop::<H, S>(&engine, &socket, ws, heartbeat).await;
    Ok(())
}

/// The heartbeat of a session opened on a websocket, run by its task (a session upgraded from
/// polling keeps the heartbeat task it started with).
///
/// v4: the server pings every `ping_interval` (the first ping at once) and expects a pong
/// within `ping_timeout`. v3: the client pings; the server answers and expects the next ping
/// within `ping_interval + ping_timeout`.
struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    /// v4: a ping was sent at this instant and its pong has not arrived.
    awaiting_pong: Option<tokio::time::Instant>,
    /// When the timer fires next: the next ping (v4), or the heartbeat's deadline.
    due: tokio::time::Instant,
    v3: bool,
}

impl Heartbeat {
    fn new(config: &EngineIoConfig, protocol: ProtocolVersion) -> Self {
        let now = tokio::time::Instant::now();
        let v3 = protocol == ProtocolVersion::V3;
        Self {
            interval: config.ping_interval,
            timeout: config.ping_timeout,
            awaiting_pong: None,
            due: if v3 {
                now + config.ping_interval + config.ping_timeout
            } else {
                now
            },
            v3,
        }
    }

    /// The timer fired: sends the ping that is due (v4), or reports the heartbeat's timeout.
    fn fire<D: Default + Send + Sync + 'static>(
        &mut self,
        socket: &Socket<D>,
    ) -> Result<(), Error> {
        if self.v3 || self.awaiting_pong.is_some() {
            return Err(Error::HeartbeatTimeout);
        }
        #[cfg(feature = "tracing")]
        tracing::trace!(sid = ?socket.id, "emitting ping");
        socket
            .internal_tx
            .try_send(Box::new(smallvec![Packet::Ping]))
            .map_err(|_| Error::HeartbeatTimeout)?;
        let now = tokio::time::Instant::now();
        self.awaiting_pong = Some(now);
        self.due = now + self.timeout;
        Ok(())
    }

    /// A pong (v4) or ping (v3) arrived.
    fn heard<D: Default + Send + Sync + 'static>(
        &mut self,
        socket: &Socket<D>,
    ) -> Result<(), Error> {
        if self.v3 {
            #[cfg(feature = "tracing")]
            tracing::trace!(sid = ?socket.id, "ping received, sending pong");
            socket
                .internal_tx
                .try_send(Box::new(smallvec![Packet::Pong]))
                .map_err(|_| Error::HeartbeatTimeout)?;
            self.due = tokio::time::Instant::now() + self.interval + self.timeout;
        } else if let Some(sent) = self.awaiting_pong.take() {
            #[cfg(feature = "tracing")]
            tracing::trace!(sid = ?socket.id, "pong received");
            // Pings keep their rhythm: every `interval` from the first.
            self.due = (sent + self.interval).max(tokio::time::Instant::now());
        }
        // A pong that answers no ping is ignored.
        Ok(())
    }

    /// How long writing one batch may block before the peer is taken for gone: it cannot
    /// answer a heartbeat it does not read.
    fn write_bound(&self) -> Duration {
        self.interval + self.timeout
    }
}

/// What woke the session's task.
enum Wake {
    Read(Option<Result<Message, tungstenite::Error>>),
    Write(Batch),
    Heartbeat,
    Closed,
}

/// The session's task: until the session is closed, reads from the websocket, writes what is
/// queued, and runs the heartbeat; then writes what was queued before the close and a close
/// frame, within [`WS_CLOSE_GRACE`].
async fn session_loop<H: EngineIoHandler, S>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    mut ws: WebSocketStream<S>,
    mut heartbeat: Option<Heartbeat>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A polling request that was in progress during the upgrade may still hold the lock.
    let lock = socket.internal_rx.lock();
    let Some(mut internal_rx) = lock
        .with_cancellation_token(&socket.cancellation_token)
        .await
    else {
        #[cfg(feature = "tracing")]
        tracing::debug!(sid = %socket.id, "session closed before starting the ws writer");
        return;
    };
    let InternalRx {
        buffered_rx,
        volatile_rx,
        ..
    } = &mut *internal_rx;

    let timer = tokio::time::sleep_until(
        heartbeat
            .as_ref()
            .map_or_else(tokio::time::Instant::now, |h| h.due),
    );
    tokio::pin!(timer);

    loop {
        let wake = tokio::select! {
            biased;
            items = buffered_rx.recv() => match items {
                Some(packets) => Wake::Write(Batch::Buffered(packets)),
                None => Wake::Closed,
            },
            _ = socket.cancellation_token.cancelled() => Wake::Closed,
            msg = ws.next() => Wake::Read(msg),
            Ok(()) = volatile_rx.changed() => {
                match volatile_rx.borrow_and_update().clone() {
                    Some(packets) => Wake::Write(Batch::Volatile(packets)),
                    None => continue,
                }
            },
            _ = &mut timer, if heartbeat.is_some() => Wake::Heartbeat,
        };
        match wake {
            Wake::Closed => break,
            Wake::Write(batch) => {
                let bound = heartbeat.as_ref().map(Heartbeat::write_bound);
                let written = Box::pin(write_until_closed::<H, S>(
                    socket,
                    buffered_rx,
                    &mut ws,
                    batch,
                    bound,
                ))
                .await;
                match written {
                    Written::Done => {}
                    Written::Closed => return,
                    Written::Stalled => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(sid = %socket.id, "ws peer not reading: heartbeat timeout");
                        socket.close(DisconnectReason::HeartbeatTimeout);
                        return;
                    }
                }
            }
            Wake::Heartbeat => {
                let Some(hb) = heartbeat.as_mut() else {
                    continue;
                };
                if let Err(_e) = hb.fire(socket) {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(sid = ?socket.id, "heartbeat error: {_e}");
                    socket.close(DisconnectReason::HeartbeatTimeout);
                    break;
                }
                timer.as_mut().reset(hb.due);
            }
            Wake::Read(msg) => {
                let read = match msg {
                    Some(Ok(msg)) => on_ws_message(engine, socket, msg, heartbeat.as_mut()),
                    Some(Err(e)) => Err(e.into()),
                    None => Ok(Read::Closed),
                };
                match read {
                    Ok(Read::Continue) => {}
                    Ok(Read::Heard) => {
                        if let Some(hb) = heartbeat.as_mut() {
                            if let Err(_e) = hb.heard(socket) {
                                socket.close(DisconnectReason::HeartbeatTimeout);
                                break;
                            }
                            timer.as_mut().reset(hb.due);
                        }
                    }
                    Ok(Read::Closed) => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(sid = %socket.id, "ws transport was closed");
                        engine.close_session(socket.id, DisconnectReason::TransportClose);
                        break;
                    }
                    Err(e) => {
                        let reason = Option::<DisconnectReason>::from(&e)
                            .unwrap_or(DisconnectReason::TransportError);
                        #[cfg(feature = "tracing")]
                        tracing::debug!("error when handling packet: {:?}", e);
                        engine.close_session(socket.id, reason);
                        break;
                    }
                }
            }
        }
    }

    // The closing: what was queued before the close (e.g. a DISCONNECT packet), then a close
    // frame, for at most WS_CLOSE_GRACE: a peer that does not read is dropped instead.
    let deadline = tokio::time::Instant::now() + WS_CLOSE_GRACE;
    let drain = async {
        while let Ok(packets) = buffered_rx.try_recv() {
            socket.dequeued(&packets);
            for item in *packets {
                feed_packet::<H, S>(socket, &mut ws, item).await;
            }
        }
    };
    if tokio::time::timeout_at(deadline, Box::pin(drain))
        .await
        .is_err()
    {
        #[cfg(feature = "tracing")]
        tracing::debug!(sid = %socket.id, "ws peer not reading: dropping the websocket");
        return;
    }
    #[cfg(feature = "tracing")]
    tracing::trace!(sid = %socket.id, "ws closing flush");
    // Release the lock first: the session's close waits for it.
    drop(internal_rx);
    let close = async {
        ws.flush().await.ok();
        ws.close(None).await.ok();
    };
    if tokio::time::timeout_at(deadline, Box::pin(close))
        .await
        .is_err()
    {
        #[cfg(feature = "tracing")]
        tracing::debug!(sid = %socket.id, "ws peer not reading: dropping the websocket");
    }
}

/// What a message read from the websocket asks of the session's task.
enum Read {
    Continue,
    /// A pong (v4) or ping (v3): the heartbeat heard from the peer.
    Heard,
    /// The peer closed the session or the websocket.
    Closed,
}

/// Handles a message read from the websocket.
fn on_ws_message<H: EngineIoHandler>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    msg: Message,
    heartbeat: Option<&mut Heartbeat>,
) -> Result<Read, Error> {
    match msg {
        Message::Text(msg) => match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
            Packet::Close => {
                #[cfg(feature = "tracing")]
                tracing::debug!("[sid={}] closing session", socket.id);
                Ok(Read::Closed)
            }
            Packet::Pong | Packet::Ping => {
                if heartbeat.is_some() {
                    Ok(Read::Heard)
                } else {
                    // The heartbeat task of a session upgraded from polling.
                    socket.heartbeat.notify_one();
                    Ok(Read::Continue)
                }
            }
            Packet::Message(msg) => {
                engine.handler.on_message(msg, socket.clone());
                Ok(Read::Continue)
            }
            p => Err(Error::BadPacket(p)),
        },
        Message::Binary(mut data) => {
            if socket.protocol == ProtocolVersion::V3 && !data.is_empty() {
                // The first byte is the message type, which we don't need.
                data = data.split_off(1);
            }
            engine.handler.on_binary(data, socket.clone());
            Ok(Read::Continue)
        }
        Message::Close(_) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("websocket closed, closing session");
            Ok(Read::Closed)
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = ?socket.id, "unexpected ws message");
            Ok(Read::Continue)
        }
    }
}

/// How long a closing websocket may take to write what was queued before the session was
/// closed, and its close frame, to a peer that does not read; after that it is dropped.
const WS_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How writing a batch ended.
enum Written {
    Done,
    /// The session was closed while the peer was not reading; the batch got
    /// [`WS_CLOSE_GRACE`] more and the websocket is to be dropped.
    Closed,
    /// The peer did not read for longer than the heartbeat allows.
    Stalled,
}

/// Writes a batch (see [`write_batch`]) unless the session is closed while the peer does not
/// read: then the batch gets [`WS_CLOSE_GRACE`] more. With a heartbeat, a write blocked for
/// longer than `bound` ends the session.
async fn write_until_closed<H: EngineIoHandler, S>(
    socket: &Arc<Socket<H::Data>>,
    buffered_rx: &mut tokio::sync::mpsc::Receiver<Queued>,
    ws: &mut WebSocketStream<S>,
    batch: Batch,
    bound: Option<Duration>,
) -> Written
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let write = write_batch::<H, S>(socket, buffered_rx, ws, batch);
    tokio::pin!(write);
    let stalled = async {
        match bound {
            Some(bound) => tokio::time::sleep(bound).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = &mut write => return Written::Done,
        _ = socket.cancellation_token.cancelled() => {}
        _ = stalled => return Written::Stalled,
    }
    if tokio::time::timeout(WS_CLOSE_GRACE, write).await.is_ok() {
        // Written after all: the closing can still write the rest and a close frame.
        return Written::Done;
    }
    Written::Closed
}

/// What the writer woke up for.
enum Batch {
    /// Packets from the buffer (more may follow in it).
    Buffered(Queued),
    /// The latest volatile packets.
    Volatile(PacketBuf),
}

/// Writes a batch, and whatever else the buffer holds, then flushes the websocket.
async fn write_batch<H: EngineIoHandler, S>(
    socket: &Arc<Socket<H::Data>>,
    buffered_rx: &mut tokio::sync::mpsc::Receiver<Queued>,
    tx: &mut WebSocketStream<S>,
    batch: Batch,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match batch {
        Batch::Buffered(packets) => {
            socket.dequeued(&packets);
            for item in *packets {
                feed_packet::<H, S>(socket, tx, item).await;
            }
            while let Ok(packets) = buffered_rx.try_recv() {
                socket.dequeued(&packets);
                for item in *packets {
                    feed_packet::<H, S>(socket, tx, item).await;
                }
            }
        }
        Batch::Volatile(packets) => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = ?socket.id, "ws volatile flush: {} packets", packets.len());
            for item in packets {
                feed_packet::<H, S>(socket, tx, item).await;
            }
        }
    }

    #[cfg(feature = "tracing")]
    tracing::trace!(sid = %socket.id, "ws flush");
    tx.flush().await.ok();
}

/// Maps a packet to a websocket message and feeds it to the websocket (not flushed).
async fn feed_packet<H: EngineIoHandler, S>(
    socket: &Arc<Socket<H::Data>>,
    tx: &mut WebSocketStream<S>,
    item: Packet,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let res = match item {
        Packet::Binary(bin) | Packet::BinaryV3(bin) => {
            if socket.protocol == ProtocolVersion::V3 {
                // v3 protocol requires packet type as the first byte.
                // This requires a new buffer. This is OK as it is only for the V3 protocol.
                let mut buff = Vec::with_capacity(bin.len() + 1);
                buff.push(0x04);
                buff.extend(bin);
                tx.feed(Message::Binary(buff.into())).await
            } else {
                tx.feed(Message::Binary(bin)).await
            }
        }
        // A Noop Packet maybe sent by the server to upgrade from a polling connection
        // In the case that the packet was not poll in time it will remain in the buffer and therefore
        // it should be discarded here
        Packet::Noop => Ok(()),
        _ => {
            let packet: String = item.try_into().unwrap();
            tx.feed(Message::Text(packet.into())).await
        }
    };
    if let Err(_e) = res {
        #[cfg(feature = "tracing")]
        tracing::debug!("[sid={}] error sending packet: {}", socket.id, _e);
    }
}

/// Send a Engine.IO [`OpenPacket`] to initiate a websocket connection
async fn init_handshake<S>(
    sid: Sid,
    ws: &mut WebSocketStream<S>,
    config: &EngineIoConfig,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let packet = Packet::Open(make_open_packet(TransportType::Websocket, sid, config));
    let packet: String = packet.into();
    ws.send(Message::Text(packet.into())).await?;
    Ok(())
}

/// Upgrade a session from a polling request to a websocket request.
///
/// Before upgrading the session the server should send a NOOP packet to any pending polling request.
///
/// ## Handshake :
/// ```text
/// CLIENT                                                 SERVER
///│                                                      │
///│   GET /engine.io/?EIO=4&transport=websocket&sid=...  │
///│ ───────────────────────────────────────────────────► │
///│  ◄─────────────────────────────────────────────────┘ │
///│            HTTP 101 (WebSocket handshake)            │
///│                                                      │
///│            -----  WebSocket frames -----             │
///│  ─────────────────────────────────────────────────►  │
///│                         2probe                       │ (ping packet)
///│  ◄─────────────────────────────────────────────────  │
///│                         3probe                       │ (pong packet)
///│  ─────────────────────────────────────────────────►  │
///│                         5                            │ (upgrade packet)
///│                                                      │
///│            -----  WebSocket frames -----             │
/// ```
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", skip(socket, ws))
)]
async fn upgrade_handshake<H: EngineIoHandler, S>(
    socket: &Arc<Socket<H::Data>>,
    ws: &mut WebSocketStream<S>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tracing")]
    tracing::debug!("starting websocket connection upgrade");

    // The socket is upgrading, from now on all polling
    // request will return a `Packet::Noop`
    socket.start_upgrade();

    // We send a last Noop request to close a potential waiting polling request.
    socket
        .internal_tx
        .send(Box::new(smallvec![Packet::Noop]))
        .await
        .map_err(|_| Error::Upgrade)?;

    // wait for any current polling connection to finish by waiting for the socket to be unlocked
    // All other polling connection will be immediately closed with a NOOP packet.
    let _lock = socket.internal_rx.lock().await;

    // Fetch the next packet from the ws stream, it should be a PingUpgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        _ => Err(Error::Upgrade)?,
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::PingUpgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("received first ping upgrade");
            // Respond with a PongUpgrade packet
            ws.send(Message::Text(String::from(Packet::PongUpgrade).into()))
                .await?;
        }
        p => Err(Error::BadPacket(p))?,
    };

    // Fetch the next packet from the ws stream, it should be an Upgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        Some(Ok(Message::Close(_))) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws stream closed before upgrade");
            Err(Error::Upgrade)?
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!("unexpected ws message before upgrade");
            Err(Error::Upgrade)?
        }
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::Upgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws upgraded successfully")
        }
        p => Err(Error::BadPacket(p))?,
    };

    socket.upgrade_to_websocket();
    Ok(())
}

fn ws_bytes_to_str(bytes: tungstenite::Utf8Bytes) -> Str {
    // SAFETY: the bytes are guaranteed to be valid UTF-8 by the tungstenite parser
    unsafe { Str::from_bytes_unchecked(bytes.into()) }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use http::Request;
    use tokio::io::DuplexStream;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[derive(Debug)]
    struct StubHandler;
    impl EngineIoHandler for StubHandler {
        type Data = ();
        fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
        fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
        fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
        fn on_binary(self: &Arc<Self>, _: Bytes, _: Arc<Socket<()>>) {}
    }

    fn socket() -> Arc<Socket<()>> {
        Arc::new(Socket::new(
            ProtocolVersion::V4,
            TransportType::Websocket,
            &EngineIoConfig::default(),
            Request::<()>::default().into_parts().0,
            Box::new(|_, _| ()),
            false,
        ))
    }

    /// The session's task for `socket` over `ws`, without a heartbeat.
    fn run(
        socket: Arc<Socket<()>>,
        ws: WebSocketStream<DuplexStream>,
        heartbeat: Option<Heartbeat>,
    ) -> impl Future<Output = ()> {
        let engine = Arc::new(EngineIo::new(
            Arc::new(StubHandler),
            EngineIoConfig::default(),
        ));
        async move { session_loop::<StubHandler, _>(&engine, &socket, ws, heartbeat).await }
    }

    async fn ws_pair() -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(1024);
        (
            WebSocketStream::from_raw_socket(server, Role::Server, None).await,
            WebSocketStream::from_raw_socket(client, Role::Client, None).await,
        )
    }

    /// A polling request can still hold the lock at the end of an upgrade.
    #[tokio::test]
    async fn writer_waits_for_the_lock_of_a_polling_request() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;

        let polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn(run(socket.clone(), server, None));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!writer.is_finished(), "the writer should wait for the lock");

        drop(polling);
        socket.emit(Str::from("hello")).unwrap();
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .expect("the writer should send the packet")
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("4hello"));
    }

    /// A peer that stops reading blocks the writer in a send; closing the session still stops
    /// it (and releases the lock) within the close grace.
    #[tokio::test]
    async fn writer_blocked_by_a_stalled_peer_stops_with_the_session() {
        let socket = socket();
        let (server, _client) = ws_pair().await;
        let writer = tokio::spawn(run(socket.clone(), server, None));

        // Far more than the duplex pipe (1 KiB) holds: the writer blocks.
        let big = "x".repeat(64 * 1024);
        for _ in 0..8 {
            socket.emit(Str::from(big.clone())).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!writer.is_finished(), "the writer should be blocked");

        socket.cancellation_token.cancel();
        tokio::time::timeout(WS_CLOSE_GRACE + TIMEOUT, writer)
            .await
            .expect("the writer should stop")
            .unwrap();
        assert!(
            socket.internal_rx.try_lock().is_ok(),
            "the lock is released"
        );
    }

    #[tokio::test]
    async fn buffered_bytes_are_bounded() {
        let config = EngineIoConfig::builder().max_buffer_bytes(10).build();
        let socket: Arc<Socket<()>> = Arc::new(Socket::new(
            ProtocolVersion::V4,
            TransportType::Websocket,
            &config,
            Request::<()>::default().into_parts().0,
            Box::new(|_, _| ()),
            false,
        ));
        // An empty buffer takes one packet of any size; then nothing until it drains.
        socket.emit(Str::from("x".repeat(25))).unwrap();
        assert_eq!(socket.buffered_bytes(), 25);
        assert!(socket.emit(Str::from("y")).is_err());
        assert!(socket.reserve().is_err());

        let (server, mut client) = ws_pair().await;
        tokio::spawn(run(socket.clone(), server, None));
        let msg = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
        assert_eq!(
            msg.unwrap().unwrap(),
            Message::text(format!("4{}", "x".repeat(25)))
        );
        assert_eq!(socket.buffered_bytes(), 0);
        socket.emit(Str::from("y")).unwrap();
    }

    #[tokio::test]
    async fn writer_waiting_for_the_lock_stops_with_the_session() {
        let socket = socket();
        let (server, _client) = ws_pair().await;

        let _polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn(run(socket.clone(), server, None));
        tokio::time::sleep(Duration::from_millis(20)).await;

        socket.cancellation_token.cancel();
        tokio::time::timeout(TIMEOUT, writer)
            .await
            .expect("the writer should stop")
            .unwrap();
    }

    /// A peer that does not answer the pings of a session opened on the websocket: the
    /// session's task ends it.
    #[tokio::test]
    async fn unanswered_pings_end_the_session() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;
        let config = EngineIoConfig::builder()
            .ping_interval(Duration::from_millis(50))
            .ping_timeout(Duration::from_millis(50))
            .build();
        let task = tokio::spawn(run(
            socket.clone(),
            server,
            Some(Heartbeat::new(&config, ProtocolVersion::V4)),
        ));
        // The first ping comes at once.
        let msg = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
        assert_eq!(msg.unwrap().unwrap(), Message::text("2"));
        tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("the session should end")
            .unwrap();
    }

    /// Pongs keep the session open, and pings keep coming.
    #[tokio::test]
    async fn answered_pings_keep_the_session() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;
        let config = EngineIoConfig::builder()
            .ping_interval(Duration::from_millis(30))
            .ping_timeout(Duration::from_millis(30))
            .build();
        let task = tokio::spawn(run(
            socket.clone(),
            server,
            Some(Heartbeat::new(&config, ProtocolVersion::V4)),
        ));
        for _ in 0..5 {
            let msg = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
            assert_eq!(msg.unwrap().unwrap(), Message::text("2"));
            client.send(Message::text("3")).await.unwrap();
        }
        assert!(!task.is_finished(), "the session should still run");
        socket.cancellation_token.cancel();
        tokio::time::timeout(TIMEOUT, task).await.unwrap().unwrap();
    }
}
