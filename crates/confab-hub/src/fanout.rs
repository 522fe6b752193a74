//! Delivery to connections, behind a trait: the Socket.IO adapter implements it for one node; a
//! Redis-backed implementation carries the same calls to every node.

use async_trait::async_trait;
use confab_protocol::ServerEvent;
use uuid::Uuid;

/// A connection's id as the transport knows it (the Socket.IO socket id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub String);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[async_trait]
pub trait FanOut: Send + Sync + 'static {
    /// Every connection in the channel, but `except`. The event is encoded once for all.
    /// Returns the connections of this node that could not take it (outgoing queue full), as
    /// far as the transport can tell; they are being disconnected.
    async fn to_channel(
        &self,
        channel: Uuid,
        event: &ServerEvent,
        except: Option<&ConnId>,
    ) -> Vec<ConnId>;
    /// Whether [`to_legacy_members`](FanOut::to_legacy_members) could reach anyone, so the
    /// caller can skip building an event nobody receives. `true` when unsure.
    fn has_legacy_members(&self, _channel: Uuid) -> bool {
        true
    }
    /// Only the channel members that speak seed 000's dialect (they also get `message`).
    /// Returns the connections that could not take it, as [`to_channel`](FanOut::to_channel).
    async fn to_legacy_members(
        &self,
        channel: Uuid,
        event: &ServerEvent,
        except: Option<&ConnId>,
    ) -> Vec<ConnId>;
    /// One connection; false if it could not take the event (gone, or its queue full).
    async fn to_conn(&self, conn: &ConnId, event: &ServerEvent) -> bool;
    /// Adds the connection to the channel's delivery group (and its legacy group if `legacy`).
    async fn join(&self, conn: &ConnId, channel: Uuid, legacy: bool);
    async fn leave(&self, conn: &ConnId, channel: Uuid);
}

/// The link between the nodes of a cluster: tells the others what this node committed, and
/// receives what they committed in the channels this node has members in.
#[async_trait]
pub trait ClusterLink: Send + Sync + 'static {
    /// Called by the sequencer right after each commit, with this node's messages in commit
    /// order. Must not block for long: the sequencer waits.
    async fn publish_commits(&self, commits: &[std::sync::Arc<crate::Committed>]);
    /// Whether this node wants other nodes' commits and events of `channel`: true when its
    /// first local member joins (or is about to), false when its last one left. The hub calls
    /// it in order, under its membership lock, so the last call is the truth: it must not
    /// block.
    fn interest(&self, channel: Uuid, wanted: bool);
    /// Resolves once the interest in `channel` has taken effect, or after a short bound (a
    /// link that is down does not hold a join back; storage covers what it misses).
    async fn ready(&self, _channel: Uuid) {}
}
