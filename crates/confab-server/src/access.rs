//! Private channels: only participants may join, post, read history, list participants or see
//! presence — over the socket and over REST. A channel is private when it was created with
//! `private: true` (or `metadata.private: true`), or always when `ENABLE_DATA_ISOLATION=true`.
//!
//! A token's `channels` claim narrows further: it may reach only the channels it names. Over
//! REST an operator (API key, admin token) reaches every channel; over a socket the API key is a
//! shared client credential and grants no channel rights of its own.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use confab_hub::{ConnId, Hub};
use confab_protocol::texts;
use socketioxide::SocketIo;
use uuid::Uuid;

use crate::auth::Principal;
use crate::socket::handshake::Identity;

pub const DENIED_JOIN: &str = texts::ACCESS_DENIED_JOIN;
pub const DENIED_SEND: &str = "Access denied: You don't have permission to send to this channel";
pub const DENIED_READ: &str = "Access denied: You don't have permission to access this channel";

/// What a client wants to do with a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Join,
    /// Post a message (creating the channel if it does not exist, which makes the sender a
    /// participant) or send a typing indicator.
    Send,
    /// History, participants, presence, details, changes.
    Read,
}

impl Op {
    fn denied(self) -> &'static str {
        match self {
            Op::Join => DENIED_JOIN,
            Op::Send => DENIED_SEND,
            Op::Read => DENIED_READ,
        }
    }
}

pub struct Access {
    isolation: bool,
    private: RwLock<HashSet<Uuid>>,
    hub: Hub,
    io: Option<SocketIo>,
}

impl Access {
    /// Loads the private channels.
    pub async fn load(hub: Hub, io: Option<SocketIo>, isolation: bool) -> anyhow::Result<Self> {
        let private = hub.store().private_channels().await?;
        Ok(Access {
            isolation,
            private: RwLock::new(private.into_iter().collect()),
            hub,
            io,
        })
    }

    pub fn isolation(&self) -> bool {
        self.isolation
    }

    /// Whether only participants may use the channel.
    pub fn is_private(&self, channel: Uuid) -> bool {
        self.isolation || self.private.read().unwrap().contains(&channel)
    }

    /// Marks a channel private, durably.
    pub async fn mark_private(&self, channel: Uuid) -> anyhow::Result<()> {
        self.hub.store().set_channel_private(channel, true).await?;
        self.private.write().unwrap().insert(channel);
        Ok(())
    }

    /// May `entity` (acting under `principal`) do `op` on `channel`? `operator_bypass`: an
    /// operator's REST request reaches every channel.
    pub async fn check(
        &self,
        principal: &Principal,
        entity: Option<Uuid>,
        channel: Uuid,
        op: Op,
        operator_bypass: bool,
    ) -> Result<(), &'static str> {
        if operator_bypass && principal.is_operator() {
            return Ok(());
        }
        if let Some(allowed) = principal.channel_limit()
            && !allowed.contains(&channel)
        {
            return Err(op.denied());
        }
        if !self.is_private(channel) {
            return Ok(());
        }
        let exists = matches!(self.hub.directory().find(channel).await, Ok(Some(_)));
        if !exists {
            // Under isolation a message may create a channel (its sender becomes the participant);
            // nothing else can be done with a channel that does not exist.
            return if op == Op::Send {
                Ok(())
            } else {
                Err(op.denied())
            };
        }
        let Some(entity) = entity else {
            return Err(op.denied());
        };
        match self.hub.channel_participants(channel).await {
            Ok(p)
                if p.iter()
                    .any(|e| e.eq_ignore_ascii_case(&entity.to_string())) =>
            {
                Ok(())
            }
            _ => Err(op.denied()),
        }
    }

    /// Takes every connection whose entity is no longer a participant out of a private
    /// channel's room (after its participants changed).
    pub async fn enforce_members(&self, channel: Uuid) {
        if !self.is_private(channel) {
            return;
        }
        let Some(ns) = self.io.as_ref().and_then(|io| io.of("/")) else {
            return;
        };
        self.hub.directory().forget_participants(channel);
        let participants = match self.hub.channel_participants(channel).await {
            Ok(p) => p,
            Err(_) => Arc::new(Vec::new()),
        };
        for socket in ns.to(channel.to_string()).sockets() {
            let Some(identity) = socket.extensions.get::<Identity>() else {
                continue;
            };
            let id = identity.entity.to_string();
            if !participants.iter().any(|p| p.eq_ignore_ascii_case(&id)) {
                let conn = ConnId(socket.id.to_string());
                let _ = self
                    .hub
                    .leave(
                        &conn,
                        identity.entity,
                        &confab_protocol::ChannelRef {
                            id: channel,
                            spelled: None,
                        },
                    )
                    .await;
                // Not in presence (a join still in flight): the room is what delivers.
                socket.leave(vec![
                    crate::socket::fanout::room(channel),
                    crate::socket::fanout::legacy_room(channel),
                ]);
                tracing::info!(%channel, entity = %identity.entity, "removed from a private channel it no longer belongs to");
            }
        }
    }
}
