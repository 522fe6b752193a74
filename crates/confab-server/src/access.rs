//! What a principal may reach, decided in one place: [`Access::decide`]. The REST handlers
//! (through the [`Principal`] extractor) and the socket guard both ask it; nothing else
//! decides access. The matrix it implements is in docs/security.md.
//!
//! * A channel is private when it was created with `private: true` (or `metadata.private`),
//!   or always under `ENABLE_DATA_ISOLATION=true`. Only participants reach a private channel
//!   (its messages, participants, presence, details, typing); membership is checked against
//!   [`Principal::member_entity`], so an unverified entity is never a participant.
//! * A token's `channels` claim narrows any channel, private or not.
//! * Things that belong to an entity — its DMs, sessions and jobs — are for their owner.
//! * Administration (agents, servers, logs, metrics) is for operators.
//! * Media: a channel's files are the channel's (members only when it is private); agents'
//!   files are public to read, uploading them is administration.
//! * Operators reach everything. With authentication off, administration and ownership are
//!   open as in ElizaOS; private channels still need a (self-asserted) participant.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use confab_hub::{ConnId, Hub};
use confab_protocol::texts;
use socketioxide::SocketIo;
use uuid::Uuid;

use crate::auth::{Principal, Trust};
use crate::metrics::Refusal;
use crate::socket::handshake::Identity;

/// What is being reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A channel: its messages (history, search, posts, edits, deletes), participants,
    /// presence, details, typing, media.
    Channel(Uuid),
    /// Something owned by this entity: its DMs, sessions, jobs.
    OwnedBy(Uuid),
    /// Speaking as this entity: the author of a post, the sender of a socket message.
    Author(Uuid),
    /// Agents, message servers, server logs, metrics.
    Administration,
    /// A media file, or uploading one: a channel's uploads go with the channel (read to
    /// download, write to upload); an agent's uploads and generated files are public to read
    /// (as in ElizaOS) and administration to write.
    Media(MediaOwner),
}

/// Whose media a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaOwner {
    Channel(Uuid),
    Agent(Uuid),
}

/// What is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Join a channel's room (socket).
    Join,
    /// Look: history, participants, presence, details, a session's or job's state.
    Read,
    /// Change: post (which may create the channel), type, edit, delete, manage.
    Write,
}

/// A refusal, with the text the client gets and what it counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    pub reason: &'static str,
    pub kind: Refusal,
}

impl Denied {
    fn channel(action: Action) -> Self {
        Denied {
            reason: match action {
                Action::Join => texts::ACCESS_DENIED_JOIN,
                Action::Write => texts::ACCESS_DENIED_SEND,
                Action::Read => texts::ACCESS_DENIED_READ,
            },
            kind: Refusal::Forbidden,
        }
    }

    const NOT_OWNER: Denied = Denied {
        reason: texts::ACCESS_NOT_OWNER,
        kind: Refusal::Forbidden,
    };
    const IMPERSONATION: Denied = Denied {
        reason: texts::AUTH_IMPERSONATION,
        kind: Refusal::Impersonation,
    };
    const OPERATOR_ONLY: Denied = Denied {
        reason: texts::ACCESS_OPERATOR_ONLY,
        kind: Refusal::OperatorOnly,
    };

    /// Counts the refusal and gives it back.
    pub fn counted(self) -> Self {
        crate::metrics::refused(self.kind);
        self
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

    /// May `p` do `action` on `resource`? The one access decision of confab; a refusal is
    /// counted in `/metrics`.
    pub async fn decide(
        &self,
        p: &Principal,
        resource: Resource,
        action: Action,
    ) -> Result<(), Denied> {
        self.rule(p, resource, action)
            .await
            .map_err(Denied::counted)
    }

    /// The same decision, uncounted: for leaving things out of a list.
    pub async fn permits(&self, p: &Principal, resource: Resource, action: Action) -> bool {
        self.rule(p, resource, action).await.is_ok()
    }

    async fn rule(&self, p: &Principal, resource: Resource, action: Action) -> Result<(), Denied> {
        let open = p.trust == Trust::Open;
        match resource {
            Resource::Administration if p.operator || open => Ok(()),
            Resource::Administration => Err(Denied::OPERATOR_ONLY),
            _ if p.operator => Ok(()),
            Resource::OwnedBy(owner) => match (p.trust, p.entity) {
                (Trust::Open, _) => Ok(()),
                // Self-asserted: a client that names no entity is served as ElizaOS serves it.
                (Trust::Asserted, None) => Ok(()),
                (Trust::Asserted | Trust::Verified, Some(me)) if me == owner => Ok(()),
                _ => Err(Denied::NOT_OWNER),
            },
            Resource::Author(author) => match p.entity {
                Some(me) if !open && me != author => Err(Denied::IMPERSONATION),
                _ => Ok(()),
            },
            Resource::Channel(channel) => self.channel(p, channel, action).await,
            Resource::Media(MediaOwner::Channel(channel)) => self.channel(p, channel, action).await,
            Resource::Media(MediaOwner::Agent(_)) if action == Action::Read || open => Ok(()),
            Resource::Media(MediaOwner::Agent(_)) => Err(Denied::OPERATOR_ONLY),
        }
    }

    async fn channel(&self, p: &Principal, channel: Uuid, action: Action) -> Result<(), Denied> {
        let denied = Denied::channel(action);
        if let Some(allowed) = &p.channels
            && !allowed.contains(&channel)
        {
            return Err(denied);
        }
        if !self.is_private(channel) {
            return Ok(());
        }
        let member = p.member_entity();
        let exists = matches!(self.hub.directory().find(channel).await, Ok(Some(_)));
        if !exists {
            // Under isolation a message may create a channel, whose participant its sender
            // becomes; nothing else can be done with a channel that does not exist.
            return if action == Action::Write && member.is_some() {
                Ok(())
            } else {
                Err(denied)
            };
        }
        let Some(member) = member else {
            return Err(denied);
        };
        match self.hub.channel_participants(channel).await {
            Ok(list) if list.iter().any(|e| same_entity(e, member)) => Ok(()),
            _ => Err(denied),
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
            let operator = socket
                .extensions
                .get::<Principal>()
                .is_some_and(|p| p.operator);
            if operator || participants.iter().any(|p| same_entity(p, identity.entity)) {
                continue;
            }
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

/// Participants are stored as text; compare them as entity ids.
fn same_entity(stored: &str, entity: Uuid) -> bool {
    confab_protocol::parse_uuid(stored).is_some_and(|u| u == entity)
}
