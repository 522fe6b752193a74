//! A connection's checks before a command reaches the hub: who it is (handshake), what it may
//! reach (asked of [`crate::access`], the same decision REST gets), how fast and how much
//! (limits), and no posting as anyone else. Refusals are typed ([`Refused`]): `messageError
//! {error, retryAfterMs?}` plus a failed acknowledgement; nothing reaches the hub.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use confab_hub::{ConnId, Hub, Rejoined};
use confab_protocol::inbound::Command;
use confab_protocol::outbound::{self, Unauthorized};
use confab_protocol::{ServerEvent, texts};
use serde_json::Value;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::socket::Sid;
use uuid::Uuid;

use super::handshake::{Identity, Refused, identify};
use crate::access::{Action, Denied, Resource};
use crate::auth::Principal;
use crate::limits::ConnSlot;
use crate::metrics::Refusal as Kind;
use crate::security::Security;

/// Runs in the handshake middleware: authenticates, fixes the entity, takes a connection slot.
/// The [`Identity`], [`Principal`] and slot are left in the socket's extensions.
pub fn admit(
    security: &Security,
    socket: &SocketRef,
    auth: Option<&Value>,
    strict: bool,
) -> Result<Identity, Refused> {
    let refuse = |reason: &'static str, kind: Kind| {
        crate::metrics::refused(kind);
        metrics::counter!(crate::metrics::CONNECTIONS_REFUSED, "reason" => kind.as_str())
            .increment(1);
        Refused(reason)
    };
    let mut principal = security
        .auth
        .socket(auth, socket.req_parts())
        .map_err(|e| refuse(e.reason, e.kind))?;
    let identity = match principal.token_entity() {
        // The token's subject; a client-supplied entityId cannot override it.
        Some(entity) => Identity {
            entity,
            named: true,
        },
        None => identify(auth, strict).map_err(|e| refuse(e.0, Kind::Unauthenticated))?,
    };
    principal.entity = Some(identity.entity);
    let parts = socket.req_parts();
    let ip = security.limits.client_ip(&parts.extensions, &parts.headers);
    let slot = security
        .limits
        .connect(ip, identity.entity)
        .map_err(|e| {
            // Counted as a refusal by `connect`.
            metrics::counter!(crate::metrics::CONNECTIONS_REFUSED, "reason" => Kind::ConnectionLimit.as_str())
                .increment(1);
            Refused(e)
        })?;
    socket.extensions.insert(slot);
    socket.extensions.insert(principal);
    socket.extensions.insert(identity);
    Ok(identity)
}

/// Why a command was refused: the protocol's typed refusal.
pub type Refusal = outbound::Refused;

impl From<Denied> for Refusal {
    fn from(d: Denied) -> Self {
        Refusal::new(d.reason)
    }
}

impl From<crate::limits::Exceeded> for Refusal {
    fn from(e: crate::limits::Exceeded) -> Self {
        Refusal::new(e.error).retry_after(e.retry_after_ms)
    }
}

/// One connection's guard, owned by its worker.
pub struct Guard {
    security: Arc<Security>,
    principal: Principal,
    joins: Option<governor::DefaultDirectRateLimiter>,
    channels: HashSet<Uuid>,
    _slot: Option<ConnSlot>,
}

impl Guard {
    pub fn new(security: Arc<Security>, socket: &SocketRef) -> Self {
        // `admit` always leaves one; without it, the connection is nobody in particular.
        let principal = socket.extensions.get::<Principal>().unwrap_or(Principal {
            trust: crate::auth::Trust::Unverified,
            ..Principal::open(None)
        });
        // The worker owns the slot from here on: it is given back when the worker ends.
        let slot = socket.extensions.remove::<ConnSlot>();
        let guard = Guard {
            joins: security.limits.join_limiter(),
            principal,
            channels: HashSet::new(),
            _slot: slot,
            security,
        };
        if let Some(exp) = guard.principal.expires {
            guard.close_at_expiry(socket.id, exp);
        }
        guard
    }

    async fn allow(&self, resource: Resource, action: Action) -> Result<(), Refusal> {
        Ok(self
            .security
            .access
            .decide(&self.principal, resource, action)
            .await?)
    }

    /// Checks a decoded command. Passing a join or a leave also updates the connection's
    /// channel count.
    pub async fn check(&mut self, identity: &Identity, command: &Command) -> Result<(), Refusal> {
        let limits = &self.security.limits;
        match command {
            Command::Join(req) => {
                let channel = req.channel.id;
                self.allow(Resource::Channel(channel), Action::Join).await?;
                limits.join(
                    self.joins.as_ref(),
                    self.channels.len(),
                    self.channels.contains(&channel),
                )?;
                self.channels.insert(channel);
                metrics::counter!(crate::metrics::JOINS).increment(1);
            }
            Command::Send(req) => {
                crate::metrics::per_message().messages_in.increment(1);
                if let Some(sender) = req.sender_id {
                    self.allow(Resource::Author(sender), Action::Write).await?;
                }
                limits.message_size(&req.text, &req.metadata, req.attachments.as_ref())?;
                self.allow(Resource::Channel(req.channel.id), Action::Write)
                    .await?;
                limits.message(identity.entity)?;
            }
            Command::Typing(req) => {
                if let Some(sender) = req.entity_id {
                    self.allow(Resource::Author(sender), Action::Write).await?;
                }
                self.allow(Resource::Channel(req.channel.id), Action::Write)
                    .await?;
                limits.typing(identity.entity)?;
            }
            Command::Leave(req) => {
                self.channels.remove(&req.channel.id);
            }
            Command::SubscribeLogs | Command::UpdateLogFilters(_) => self.may_stream_logs().await?,
            Command::UnsubscribeLogs => {}
        }
        Ok(())
    }

    /// Log streaming is for operators when authentication is on.
    pub async fn may_stream_logs(&self) -> Result<(), Refusal> {
        self.allow(Resource::Administration, Action::Read)
            .await
            .map_err(|_| Refusal::new(texts::LOGS_NOT_AUTHORISED))
    }

    /// Drops channels a reconnecting client was put back into but may no longer reach.
    pub async fn filter_rejoined(
        &mut self,
        hub: &Hub,
        conn: &ConnId,
        identity: &Identity,
        rejoined: Vec<Rejoined>,
    ) -> Vec<Rejoined> {
        let mut kept = Vec::with_capacity(rejoined.len());
        for r in rejoined {
            let id = r.channel.id;
            let allowed = self
                .security
                .access
                .permits(&self.principal, Resource::Channel(id), Action::Join)
                .await;
            if allowed {
                self.channels.insert(id);
                kept.push(r);
            } else {
                let _ = hub
                    .leave(
                        conn,
                        identity.entity,
                        &confab_protocol::ChannelRef { id, spelled: None },
                    )
                    .await;
            }
        }
        kept
    }

    /// Sends the refusal: `messageError` and a failed acknowledgement. (Counted where it was
    /// decided.)
    pub fn refuse(
        socket: &SocketRef,
        refusal: Refusal,
        client_message_id: Option<String>,
        ack: AckSender,
    ) {
        super::connection::emit(socket, refusal.event(client_message_id));
        let _ = ack.send(&refusal.ack());
    }

    /// Disconnects the socket when its token expires: `unauthorized {message, reason}` (the
    /// event ElizaOS's client listens for), then a server-side disconnect.
    fn close_at_expiry(&self, sid: Sid, exp: u64) {
        let Some(io) = self.security.io.clone() else {
            return;
        };
        let leeway = self.security.settings.jwt_leeway_secs;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let wait = Duration::from_secs(exp.saturating_add(leeway)).saturating_sub(now);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let Some(socket) = io.of("/").and_then(|ns| ns.get_socket(sid)) else {
                return;
            };
            tracing::info!(socket = %sid, "token expired: disconnecting");
            super::connection::emit(
                &socket,
                ServerEvent::Unauthorized(Unauthorized::token_expired()),
            );
            super::connection::emit(
                &socket,
                outbound::Refused::new(texts::TOKEN_EXPIRED).event(None),
            );
            let _ = socket.disconnect();
        });
    }
}
