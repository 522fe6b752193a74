//! Who is behind a socket or a request, once [`super::Auth`] has looked at its credentials.

use std::collections::HashSet;

use uuid::Uuid;

/// How the entity a principal acts as is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Authentication is off: everything is open, entities are what clients say (ElizaOS).
    Open,
    /// Only API keys are configured: entities are what clients say (ElizaOS), and count as such.
    Asserted,
    /// Tokens are configured but none came: whatever the client says, it is nobody in
    /// particular — never a participant, never an owner.
    Unverified,
    /// A verified token's `sub`.
    Verified,
}

/// The party behind a socket or an HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The entity it acts as: a token's `sub`; otherwise what the client said (`auth.entityId`,
    /// `X-Entity-Id`), if anything.
    pub entity: Option<Uuid>,
    pub trust: Trust,
    /// An admin token or the operator key: administration, logs, metrics, every channel.
    pub operator: bool,
    /// The channels a token's `channels` claim limits it to (`None`: no limit).
    pub channels: Option<HashSet<Uuid>>,
    /// The token's expiry, seconds since the epoch.
    pub expires: Option<u64>,
}

impl Principal {
    /// Anyone, when authentication is off.
    pub fn open(entity: Option<Uuid>) -> Self {
        Principal {
            entity,
            trust: Trust::Open,
            operator: false,
            channels: None,
            expires: None,
        }
    }

    /// The entity membership and ownership are checked against: a verified one, or a
    /// self-asserted one where the deployment has no tokens.
    pub fn member_entity(&self) -> Option<Uuid> {
        match self.trust {
            Trust::Unverified => None,
            Trust::Open | Trust::Asserted | Trust::Verified => self.entity,
        }
    }

    /// The entity fixed by the credential (a token's `sub`); a client cannot choose another.
    pub fn token_entity(&self) -> Option<Uuid> {
        match self.trust {
            Trust::Verified => self.entity,
            _ => None,
        }
    }
}
