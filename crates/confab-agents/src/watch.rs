//! Following the agents' answer to one message, for callers that answer over HTTP (the `http`
//! and `sse` transports, jobs).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use confab_hub::Committed;
use tokio::sync::broadcast;
use tokio::time::Instant;
use uuid::Uuid;

use crate::runtime::{AgentEvent, AgentEventKind, Runtime};

/// How the answer to a message ended.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The first reply stored.
    Replied(Arc<Committed>),
    /// No agent answers messages there.
    NoAgent,
    /// Every agent that looked at it chose not to answer.
    Declined,
    Failed(String),
    TimedOut,
}

/// Subscribed before the message is submitted, so nothing is missed.
pub struct Watch {
    rx: broadcast::Receiver<AgentEvent>,
    /// Agents still working on the message; `None` until the dispatcher has said who.
    pending: Option<HashSet<Uuid>>,
    failure: Option<String>,
    deadline: Instant,
}

impl Runtime {
    pub fn watch(&self, timeout: Duration) -> Watch {
        Watch {
            rx: self.events(),
            pending: None,
            failure: None,
            deadline: Instant::now() + timeout,
        }
    }
}

impl Watch {
    /// The next event about `message`; `None` once every agent is done or time is up.
    pub async fn next(&mut self, message: Uuid) -> Option<AgentEvent> {
        if self.pending.as_ref().is_some_and(HashSet::is_empty) {
            return None;
        }
        loop {
            let event = match tokio::time::timeout_at(self.deadline, self.rx.recv()).await {
                Err(_) => return None,
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    tracing::warn!(missed = n, "reply watcher fell behind");
                    continue;
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                Ok(Ok(e)) => e,
            };
            if event.reply_to != message {
                continue;
            }
            match &event.kind {
                AgentEventKind::Dispatched { agents } => {
                    self.pending = Some(agents.iter().copied().collect());
                }
                AgentEventKind::Finished | AgentEventKind::Skipped => {
                    if let Some(p) = self.pending.as_mut() {
                        p.remove(&event.agent_id);
                    }
                }
                AgentEventKind::Failed { error, .. } => self.failure = Some(error.clone()),
                _ => {}
            }
            return Some(event);
        }
    }

    pub fn timed_out(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Waits for the first reply to `message`, or for every agent to be done without one.
    pub async fn answer(mut self, message: Uuid) -> Answer {
        let mut dispatched_to_none = false;
        while let Some(event) = self.next(message).await {
            match event.kind {
                AgentEventKind::Replied(c) => return Answer::Replied(c),
                AgentEventKind::Dispatched { agents } if agents.is_empty() => {
                    dispatched_to_none = true;
                }
                _ => {}
            }
        }
        if dispatched_to_none {
            Answer::NoAgent
        } else if let Some(e) = self.failure {
            Answer::Failed(e)
        } else if self.pending.as_ref().is_some_and(HashSet::is_empty) {
            Answer::Declined
        } else {
            Answer::TimedOut
        }
    }
}
