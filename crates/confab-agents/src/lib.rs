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
pub mod registry;
mod run;
pub mod runtime;

pub use character::Character;
pub use registry::{Agent, AgentError, Agents, Brains, ModelDefaults};
pub use runtime::{AgentEvent, AgentEventKind, Runtime, RuntimeConfig};
