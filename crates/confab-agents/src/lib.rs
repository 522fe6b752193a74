//! Agents: the built-in runtime that answers in channels.
//!
//! * [`character`]: ElizaOS character JSON; agent ids.
//! * [`registry`]: the agents this server runs, their brains, REST-driven changes.
//! * [`brain`]: what writes a reply: offline ELIZA (default) or an OpenAI-compatible model.
//! * [`breaker`]: the circuit breaker in front of model endpoints.
//! * [`runtime`]: committed message → which agents answer → a run per (agent, channel) lane.
//! * `run`: one run and the events clients see.
//! * [`sessions`]: the sessions API's logic (timeouts, renewal), stored.
//! * [`jobs`]: one-shot request/response jobs that complete with the agent's reply.

pub mod brain;
pub mod breaker;
pub mod character;
pub mod lease;
pub mod registry;
mod run;
pub mod runtime;

pub use character::Character;
pub use lease::{RunKey, RunLeases};
pub use registry::{Agent, AgentError, Agents, Brains, ModelDefaults};
pub use runtime::{AgentEvent, AgentEventKind, Runtime, RuntimeConfig};
pub mod jobs;
pub mod sessions;
pub mod watch;

pub use jobs::Jobs;
pub use sessions::{SessionConfig, Sessions};
pub use watch::{Answer, Watch};

use std::sync::Arc;

use confab_hub::Hub;

/// Everything about agents the server needs to know.
#[derive(Debug, Clone, Default)]
pub struct AgentsConfig {
    /// Characters to run (from `--character` files and the characters directory); none means
    /// the stored agents, or the default ELIZA on a new database.
    pub characters: Vec<Character>,
    /// Makes ELIZA's choices reproducible.
    pub eliza_seed: Option<u64>,
    pub model: ModelDefaults,
    pub breaker: breaker::BreakerConfig,
    pub runtime: RuntimeConfig,
    pub sessions: SessionConfig,
}

/// The started agent side of the server.
#[derive(Clone)]
pub struct AgentSystem {
    pub agents: Arc<Agents>,
    pub runtime: Runtime,
    pub sessions: Arc<Sessions>,
    pub jobs: Arc<Jobs>,
}

impl AgentSystem {
    /// `leases`: in a cluster, where run leases live (runs of a dead node are taken over).
    pub async fn start(
        hub: Hub,
        config: AgentsConfig,
        leases: Option<Arc<dyn RunLeases>>,
    ) -> Result<AgentSystem, AgentError> {
        let brains = Brains::new(config.eliza_seed, config.model, config.breaker);
        let agents = Agents::load(hub.clone(), brains, config.characters).await?;
        let runtime = Runtime::start(hub.clone(), agents.clone(), config.runtime, leases);
        let sessions = Sessions::new(hub.clone(), agents.clone(), config.sessions);
        sessions.start_sweeper();
        let jobs = Jobs::new(hub, runtime.clone());
        Ok(AgentSystem {
            agents,
            runtime,
            sessions,
            jobs,
        })
    }
}
