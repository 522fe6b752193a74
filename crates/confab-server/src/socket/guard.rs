//! A connection's checks before a command reaches the hub: who it is (handshake), what it may
//! reach (private channels, a token's `channels`), how fast and how much (limits), and no
//! posting as anyone else. Refusals are `messageError {error, retryAfterMs?}` plus a failed
//! acknowledgement; nothing reaches the hub.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use confab_hub::{ConnId, Hub, Rejoined};
use confab_protocol::inbound::Command;
use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::socket::Sid;
use uuid::Uuid;

use super::handshake::{Identity, Refused, identify};
use crate::access::Op;
use crate::auth::{IMPERSONATION, Principal};
use crate::limits::{ConnSlot, peer_ip};
use crate::security::Security;

pub const LOGS_NOT_AUTHORISED: &str =
    "Not authorised to stream logs: connect with the API key or an admin token";

/// Runs in the handshake middleware: authenticates, fixes the entity, takes a connection slot.
/// The [`Identity`], [`Principal`] and slot are left in the socket's extensions.
pub fn admit(
    security: &Security,
    socket: &SocketRef,
    auth: Option<&Value>,
    strict: bool,
) -> Result<Identity, Refused> {
    let mut principal = security
        .auth
        .socket(auth, socket.req_parts())
        .map_err(|e| {
            metrics::counter!(crate::metrics::CONNECTIONS_REFUSED, "reason" => "auth").increment(1);
            Refused(e)
        })?;
    let identity = match principal.token_entity() {
        // The token's subject; a client-supplied entityId cannot override it.
        Some(entity) => Identity {
            entity,
            named: true,
        },
        None => identify(auth, strict)?,
    };
    principal.entity = Some(identity.entity);
    let slot = security
        .limits
        .connect(peer_ip(&socket.req_parts().extensions), identity.entity)
        .map_err(|e| {
            metrics::counter!(crate::metrics::CONNECTIONS_REFUSED, "reason" => "limit")
                .increment(1);
            Refused(e)
        })?;
    socket.extensions.insert(slot);
    socket.extensions.insert(principal);
    socket.extensions.insert(identity);
    Ok(identity)
}

/// Why a command was refused.
pub struct Refusal {
    pub error: String,
    pub retry_after_ms: Option<u64>,
    pub kind: &'static str,
}

impl Refusal {
    fn new(error: impl Into<String>, kind: &'static str) -> Self {
        Refusal {
            error: error.into(),
            retry_after_ms: None,
            kind,
        }
    }
}

impl From<crate::limits::Exceeded> for Refusal {
    fn from(e: crate::limits::Exceeded) -> Self {
        Refusal {
            error: e.error,
            retry_after_ms: (e.retry_after_ms > 0).then_some(e.retry_after_ms),
            kind: "limit",
        }
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
        let principal = socket.extensions.get::<Principal>().unwrap_or(Principal {
            credential: crate::auth::Credential::Open,
            entity: None,
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
        if let Some(exp) = guard.principal.expires() {
            guard.close_at_expiry(socket.id, exp);
        }
        guard
    }

    /// Checks a decoded command. Passing a join or a leave also updates the connection's
    /// channel count.
    pub async fn check(&mut self, identity: &Identity, command: &Command) -> Result<(), Refusal> {
        let s = &self.security;
        let auth_on = s.auth.enabled();
        match command {
            Command::Join(req) => {
                let channel = req.channel.id;
                s.access
                    .check(
                        &self.principal,
                        Some(identity.entity),
                        channel,
                        Op::Join,
                        false,
                    )
                    .await
                    .map_err(|e| Refusal::new(e, "access"))?;
                s.limits.join(
                    self.joins.as_ref(),
                    self.channels.len(),
                    self.channels.contains(&channel),
                )?;
                self.channels.insert(channel);
                metrics::counter!(crate::metrics::JOINS).increment(1);
            }
            Command::Send(req) => {
                crate::metrics::per_message().messages_in.increment(1);
                if auth_on && req.sender_id.is_some_and(|id| id != identity.entity) {
                    return Err(Refusal::new(IMPERSONATION, "auth"));
                }
                s.limits
                    .message_size(&req.text, &req.metadata, req.attachments.as_ref())?;
                s.access
                    .check(
                        &self.principal,
                        Some(identity.entity),
                        req.channel.id,
                        Op::Send,
                        false,
                    )
                    .await
                    .map_err(|e| Refusal::new(e, "access"))?;
                s.limits.message(identity.entity)?;
            }
            Command::Typing(req) => {
                if auth_on && req.entity_id.is_some_and(|id| id != identity.entity) {
                    return Err(Refusal::new(IMPERSONATION, "auth"));
                }
                s.access
                    .check(
                        &self.principal,
                        Some(identity.entity),
                        req.channel.id,
                        Op::Send,
                        false,
                    )
                    .await
                    .map_err(|e| Refusal::new(e, "access"))?;
            }
            Command::Leave(req) => {
                self.channels.remove(&req.channel.id);
            }
            Command::SubscribeLogs | Command::UpdateLogFilters(_) => self.may_stream_logs()?,
            Command::UnsubscribeLogs => {}
        }
        Ok(())
    }

    /// Log streaming is for operators when authentication is on.
    pub fn may_stream_logs(&self) -> Result<(), Refusal> {
        if self.security.auth.enabled() && !self.principal.is_operator() {
            return Err(Refusal::new(LOGS_NOT_AUTHORISED, "auth"));
        }
        Ok(())
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
                .check(&self.principal, Some(identity.entity), id, Op::Join, false)
                .await
                .is_ok();
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

    /// Sends the refusal: `messageError` and a failed acknowledgement.
    pub fn refuse(
        socket: &SocketRef,
        refusal: Refusal,
        client_message_id: Option<String>,
        ack: AckSender,
    ) {
        crate::metrics::error(refusal.kind);
        let mut body = json!({ "error": refusal.error });
        if let Some(ms) = refusal.retry_after_ms {
            body["retryAfterMs"] = json!(ms);
        }
        if let Some(id) = client_message_id {
            body["clientMessageId"] = json!(id);
        }
        let _ = socket.emit("messageError", &body);
        let mut reply = json!({ "success": false, "error": refusal.error });
        if let Some(ms) = refusal.retry_after_ms {
            reply["retryAfterMs"] = json!(ms);
        }
        let _ = ack.send(&reply);
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
            let reason = crate::auth::jwt::TOKEN_EXPIRED;
            tracing::info!(socket = %sid, "token expired: disconnecting");
            let _ = socket.emit(
                "unauthorized",
                &json!({ "message": reason, "reason": "token_expired" }),
            );
            let _ = socket.emit("messageError", &json!({ "error": reason }));
            let _ = socket.disconnect();
        });
    }
}
