//! From committed messages to agent runs.
//!
//! One dispatcher task reads every committed message (in commit order) and decides which
//! agents it concerns; each (agent, channel) pair then has its own lane, a task that runs that
//! agent's replies in that channel one at a time, in order. Lanes end when idle.
//!
//! An agent answers a message when it is a participant of the channel, did not write the
//! message, and either the channel is a DM or the message addresses it (its name, `@username`,
//! `metadata.targetAgentId`, or a reply to one of its messages). A message written by an agent
//! is answered only while the chain of agent-only turns leading to it is shorter than the loop
//! guard (each agent reply records its depth in `metadata.agentTurn`). Each message is answered
//! at most once per agent: remembered in memory, and checked against storage.
//!
//! In a cluster each run holds a lease ([`crate::lease`]); runs whose node died are taken over.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use confab_hub::{Committed, Hub};
use confab_store::channel_type;
use lru::LruCache;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::lease::{RunKey, RunLeases};
use crate::registry::{Agent, Agents};
use crate::run::{self, RunContext};

/// What HTTP transports and jobs can follow of an agent run.
#[derive(Debug, Clone)]
pub struct AgentEvent {
    pub agent_id: Uuid,
    pub channel_id: Uuid,
    /// The message being answered.
    pub reply_to: Uuid,
    pub kind: AgentEventKind,
}

#[derive(Debug, Clone)]
pub enum AgentEventKind {
    /// Which agents were handed the message (`agent_id` is nil); empty when none will answer.
    Dispatched {
        agents: Vec<Uuid>,
    },
    /// An agent looked closer and will not answer (not addressed, or answered already).
    Skipped,
    Started {
        message_id: Uuid,
    },
    Chunk {
        message_id: Uuid,
        index: u32,
        text: String,
    },
    /// The reply is stored and broadcast.
    Replied(Arc<Committed>),
    /// The agent chose not to answer.
    Declined,
    Failed {
        message_id: Uuid,
        error: String,
    },
    /// The run is over (after any of the three above).
    Finished,
}

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The longest chain of agent-only turns; agents do not answer an agent message deeper than
    /// this.
    pub max_agent_turns: u32,
    /// Messages of history given to brains that want it.
    pub history: u32,
    /// How long an idle lane waits for more work before ending.
    pub lane_idle: Duration,
    /// Where uploaded files are, for brains that are shown images.
    pub media: Option<std::sync::Arc<dyn confab_store::media::MediaStore>>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_agent_turns: 3,
            history: 20,
            lane_idle: Duration::from_secs(30),
            media: None,
        }
    }
}

/// The running agent runtime.
#[derive(Clone)]
pub struct Runtime {
    agents: Arc<Agents>,
    events: broadcast::Sender<AgentEvent>,
}

impl Runtime {
    /// Starts the dispatcher. It runs until the hub stops.
    pub fn start(
        hub: Hub,
        agents: Arc<Agents>,
        config: RuntimeConfig,
        leases: Option<Arc<dyn RunLeases>>,
    ) -> Runtime {
        let (events, _) = broadcast::channel(16 * 1024);
        let committed = hub.subscribe();
        let (takeover_tx, takeovers) = mpsc::unbounded_channel();
        if let Some(leases) = &leases {
            tokio::spawn(take_over(
                hub.clone(),
                agents.clone(),
                leases.clone(),
                takeover_tx,
            ));
        }
        let ctx = Arc::new(RunContext {
            hub,
            events: events.clone(),
            history: config.history,
            media: config.media.clone(),
            leases,
        });
        tokio::spawn(
            Dispatcher {
                ctx,
                agents: agents.clone(),
                lanes: HashMap::new(),
                answered: LruCache::new(NonZeroUsize::new(100_000).expect("non-zero")),
                config,
            }
            .run(committed, takeovers),
        );
        Runtime { agents, events }
    }

    pub fn agents(&self) -> &Arc<Agents> {
        &self.agents
    }

    /// Follows agent runs. Subscribe before submitting the message whose answer you wait for.
    pub fn events(&self) -> broadcast::Receiver<AgentEvent> {
        self.events.subscribe()
    }
}

/// One run to do in a lane.
struct RunRequest {
    agent: Arc<Agent>,
    message: Arc<Committed>,
}

struct Dispatcher {
    ctx: Arc<RunContext>,
    agents: Arc<Agents>,
    lanes: HashMap<(Uuid, Uuid), mpsc::UnboundedSender<RunRequest>>,
    /// (agent, message) pairs already handed to a lane.
    answered: LruCache<(Uuid, Uuid), ()>,
    config: RuntimeConfig,
}

impl Dispatcher {
    async fn run(
        mut self,
        mut committed: broadcast::Receiver<Arc<Committed>>,
        mut takeovers: mpsc::UnboundedReceiver<RunRequest>,
    ) {
        loop {
            let next = tokio::select! {
                next = committed.recv() => next,
                Some(req) = takeovers.recv() => {
                    // Taken over from a node that died: answered here, once.
                    self.answered.put((req.agent.id, req.message.message.id), ());
                    self.hand_to_lane(req);
                    continue;
                }
            };
            match next {
                Ok(message) => self.dispatch(message).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::error!(missed = n, "agent dispatcher fell behind; messages skipped");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        tracing::debug!("agent dispatcher stopped");
    }

    async fn dispatch(&mut self, message: Arc<Committed>) {
        let runs = self.concerned(&message).await;
        // Said before any lane can report, so followers know whom to wait for. Only worth
        // building when someone (an HTTP request, a job) follows agent runs.
        if self.ctx.events.receiver_count() > 0 {
            let _ = self.ctx.events.send(AgentEvent {
                agent_id: Uuid::nil(),
                channel_id: message.channel.id,
                reply_to: message.message.id,
                kind: AgentEventKind::Dispatched {
                    agents: runs.iter().map(|r| r.agent.id).collect(),
                },
            });
        }
        for run in runs {
            self.hand_to_lane(run);
        }
        if self.lanes.len() > 1024 {
            self.lanes.retain(|_, tx| !tx.is_closed());
        }
    }

    /// The runs the message calls for: one per running agent it concerns.
    async fn concerned(&mut self, message: &Arc<Committed>) -> Vec<RunRequest> {
        let m = &message.message;
        let mut runs = Vec::new();
        let participants = match self.ctx.hub.channel_participants(m.channel_id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(channel = %m.channel_id, error = %e, "cannot read participants");
                return runs;
            }
        };
        for participant in participants.iter() {
            let Ok(agent_id) = Uuid::parse_str(participant) else {
                continue;
            };
            let Some(agent) = self.agents.running(agent_id) else {
                continue;
            };
            if !self.concerns(&agent, message) {
                continue;
            }
            if self.answered.put((agent_id, m.id), ()).is_some() {
                tracing::debug!(agent = %agent_id, message = %m.id, "already answered; duplicate delivery ignored");
                continue;
            }
            runs.push(RunRequest {
                agent,
                message: message.clone(),
            });
        }
        runs
    }

    /// The cheap part of the decision; what needs storage (a reply to one of the agent's own
    /// messages, an answer already stored) is checked in the lane.
    fn concerns(&self, agent: &Agent, message: &Committed) -> bool {
        let m = &message.message;
        if m.author_id == agent.id.to_string() {
            return false;
        }
        let from_agent = self.agents.is_agent(&m.author_id)
            || m.source_type.as_deref() == Some(confab_hub::delivery::source::AGENT_RESPONSE);
        if from_agent {
            let depth = agent_turn(m.metadata.as_ref());
            if depth >= self.config.max_agent_turns {
                tracing::info!(
                    agent = %agent.id,
                    channel = %m.channel_id,
                    message = %m.id,
                    depth,
                    "loop guard: not answering another agent"
                );
                return false;
            }
        }
        true
    }

    fn hand_to_lane(&mut self, req: RunRequest) {
        let key = (req.agent.id, req.message.channel.id);
        let req = match self.lanes.get(&key) {
            Some(tx) => match tx.send(req) {
                Ok(()) => return,
                // The lane ended meanwhile: start another.
                Err(mpsc::error::SendError(req)) => req,
            },
            None => req,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(req);
        self.lanes.insert(key, tx);
        tokio::spawn(lane(self.ctx.clone(), rx, self.config.lane_idle));
    }
}

/// Runs one agent's replies in one channel, in order, until idle.
async fn lane(ctx: Arc<RunContext>, mut rx: mpsc::UnboundedReceiver<RunRequest>, idle: Duration) {
    loop {
        match tokio::time::timeout(idle, rx.recv()).await {
            Ok(Some(req)) => decide_and_run(&ctx, req).await,
            Ok(None) => return,
            Err(_) => {
                // Refuse new work, then finish what was already queued.
                rx.close();
                while let Ok(req) = rx.try_recv() {
                    decide_and_run(&ctx, req).await;
                }
                return;
            }
        }
    }
}

async fn decide_and_run(ctx: &RunContext, req: RunRequest) {
    let RunRequest { agent, message } = req;
    let m = &message.message;
    let dm = message.channel.kind == channel_type::DM;
    if !dm && !addressed(ctx, &agent, &message).await {
        ctx.skipped(&agent, &message);
        return;
    }
    match ctx
        .hub
        .store()
        .find_reply(m.id, &agent.id.to_string())
        .await
    {
        Ok(Some(_)) => {
            tracing::debug!(agent = %agent.id, message = %m.id, "already answered (stored)");
            ctx.skipped(&agent, &message);
            return;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot check for an earlier answer"),
    }
    let Some(leases) = &ctx.leases else {
        run::run(ctx, &agent, &message).await;
        return;
    };
    let key = RunKey {
        agent: agent.id,
        message: m.id,
        channel: message.channel.id,
    };
    if !leases.claim(key).await {
        tracing::debug!(agent = %agent.id, message = %m.id, "another node runs this");
        ctx.skipped(&agent, &message);
        return;
    }
    let renewing = {
        let leases = leases.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(leases.period());
            tick.tick().await;
            loop {
                tick.tick().await;
                if !leases.renew(key).await {
                    tracing::warn!(agent = %key.agent, message = %key.message, "lost the run's lease");
                }
            }
        })
    };
    run::run(ctx, &agent, &message).await;
    renewing.abort();
    leases.release(key).await;
}

/// Cluster mode: claims the runs whose lease ran out and hands them to this node's lanes.
async fn take_over(
    hub: Hub,
    agents: Arc<Agents>,
    leases: Arc<dyn RunLeases>,
    lanes: mpsc::UnboundedSender<RunRequest>,
) {
    let mut tick = tokio::time::interval(leases.period());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for key in leases.take_expired().await {
            let Some(agent) = agents.running(key.agent) else {
                // Not running here: its lease runs out again for a node that runs it.
                continue;
            };
            let message = match hub.store().get_message(key.message).await {
                Ok(Some(m)) => m,
                Ok(None) => {
                    leases.release(key).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a run to take over");
                    continue;
                }
            };
            let Ok(Some(channel)) = hub.directory().find(key.channel).await else {
                leases.release(key).await;
                continue;
            };
            tracing::info!(agent = %key.agent, message = %key.message, "taking over a run whose node stopped");
            let req = RunRequest {
                agent,
                message: Arc::new(Committed {
                    message,
                    channel,
                    repeat: false,
                }),
            };
            if lanes.send(req).is_err() {
                return;
            }
        }
    }
}

/// Whether a group-channel message is meant for the agent.
async fn addressed(ctx: &RunContext, agent: &Agent, message: &Committed) -> bool {
    let m = &message.message;
    if m.meta_str("targetAgentId") == Some(agent.id.to_string().as_str()) {
        return true;
    }
    if mentions(&m.content, &agent.character.handles()) {
        return true;
    }
    if let Some(parent) = m
        .in_reply_to
        .as_deref()
        .and_then(|s| Uuid::parse_str(s).ok())
        && let Ok(Some(parent)) = ctx.hub.store().get_message(parent).await
    {
        return parent.author_id == agent.id.to_string();
    }
    false
}

/// Whether `text` names one of `handles` as a whole word (case-insensitive), with or without
/// a leading `@`.
pub fn mentions(text: &str, handles: &[String]) -> bool {
    let lower = text.to_lowercase();
    handles.iter().filter(|h| !h.is_empty()).any(|h| {
        lower.match_indices(h.as_str()).any(|(i, _)| {
            let before = lower[..i].chars().next_back();
            let after = lower[i + h.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

/// How many agent-only turns led to this message (0 for a message from a person).
pub fn agent_turn(metadata: Option<&Value>) -> u32 {
    metadata
        .and_then(|m| m.get("agentTurn"))
        .and_then(Value::as_u64)
        .map_or(0, |d| d.min(u32::MAX as u64) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_whole_words_only() {
        let h = vec!["eliza".to_string(), "doc".to_string()];
        assert!(mentions("Hey Eliza, how are you?", &h));
        assert!(mentions("@doc help", &h));
        assert!(mentions("ELIZA!", &h));
        assert!(!mentions("Elizabeth is here", &h));
        assert!(!mentions("the doctor is in", &h));
        assert!(!mentions("", &h));
        assert!(mentions("ünïcode then eliza", &h));
    }

    #[test]
    fn agent_turn_reads_metadata() {
        assert_eq!(agent_turn(None), 0);
        assert_eq!(agent_turn(Some(&serde_json::json!({"agentTurn": 2}))), 2);
        assert_eq!(agent_turn(Some(&serde_json::json!({"agentTurn": "x"}))), 0);
    }
}
