//! Agent runs in a cluster: each run holds a lease while it lives, so a run whose node died is
//! taken over by another node and the user still gets an answer (and `enable_input`).
//!
//! A run is started by the node that committed the message (its dispatcher sees only its own
//! commits, so each message is answered once cluster-wide). That node claims the run's lease
//! and renews it every [`RunLeases::period`] until the run is over. Every node looks for leases
//! that ran out (their node stopped renewing: killed, cut off) at the same pace, claims them and
//! runs them again; the stored-answer check before a run keeps a reply that was stored before
//! the node died from being written twice.

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

/// One agent's answer to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunKey {
    pub agent: Uuid,
    pub message: Uuid,
    pub channel: Uuid,
}

/// Where run leases live (the cluster's Redis).
#[async_trait]
pub trait RunLeases: Send + Sync + 'static {
    /// Takes the run for this node; false when another live node holds it. When the lease
    /// store is unreachable, true: answering locally beats never answering.
    async fn claim(&self, run: RunKey) -> bool;
    /// Extends this node's lease; false if it is no longer this node's.
    async fn renew(&self, run: RunKey) -> bool;
    /// The run is over (answered, declined or failed).
    async fn release(&self, run: RunKey);
    /// Runs whose lease ran out, now claimed for this node.
    async fn take_expired(&self) -> Vec<RunKey>;
    /// How often leases are renewed and expired ones looked for (a third of the lease).
    fn period(&self) -> Duration;
}
