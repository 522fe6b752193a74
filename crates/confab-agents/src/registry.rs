//! The agents this server runs: loaded from storage and configuration, changed over REST,
//! each with the brain its character asks for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use confab_hub::Hub;
use confab_protocol::now_ms;
use confab_store::{AgentRecord, Store};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::brain::Brain;
use crate::brain::eliza::{DEFAULT_CONVERSATIONS, ElizaBrain};
use crate::brain::openai::{DEFAULT_BASE_URL, DEFAULT_MODEL, ModelEndpoint, OpenAiBrain};
use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::character::Character;

/// Model settings that apply when a character does not set its own.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDefaults {
    pub api_key: Option<String>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub timeout: Duration,
    pub retries: u32,
    pub backoff: Duration,
    pub max_tokens: Option<u32>,
    /// Models shown attached images (`OPENAI_VISION_MODELS`; see
    /// [`crate::brain::openai::accepts_images`]).
    pub vision_models: Vec<String>,
}

impl Default for ModelDefaults {
    fn default() -> Self {
        ModelDefaults {
            api_key: None,
            base_url: None,
            model: None,
            timeout: Duration::from_secs(60),
            retries: 2,
            backoff: Duration::from_millis(500),
            max_tokens: None,
            vision_models: crate::brain::openai::DEFAULT_VISION_MODELS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
        }
    }
}

/// A running (or stopped) agent.
pub struct Agent {
    pub id: Uuid,
    pub character: Character,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub brain: Arc<dyn Brain>,
}

impl Agent {
    pub fn name(&self) -> &str {
        &self.character.name
    }

    fn record(&self) -> AgentRecord {
        AgentRecord {
            id: self.id,
            name: self.character.name.clone(),
            enabled: self.enabled,
            character: serde_json::to_value(&self.character).unwrap_or(Value::Null),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("Agent not found")]
    NotFound,
    #[error("An agent with id {0} already exists")]
    Exists(Uuid),
    #[error("Invalid character: {0}")]
    InvalidCharacter(String),
    #[error("{0}")]
    Store(String),
}

impl From<confab_store::StoreError> for AgentError {
    fn from(e: confab_store::StoreError) -> Self {
        AgentError::Store(e.to_string())
    }
}

impl From<confab_hub::HubError> for AgentError {
    fn from(e: confab_hub::HubError) -> Self {
        AgentError::Store(e.to_string())
    }
}

/// Chooses and builds brains: ELIZA unless a model endpoint or key is configured, globally or
/// in the character's settings (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_MODEL`); a
/// character can force either with `settings.modelProvider` = `eliza` | `openai`.
pub struct Brains {
    eliza: Arc<ElizaBrain>,
    defaults: ModelDefaults,
    breaker: BreakerConfig,
    client: reqwest::Client,
    /// One breaker per endpoint, shared by every agent that calls it.
    breakers: Mutex<HashMap<String, Arc<CircuitBreaker>>>,
}

impl Brains {
    pub fn new(eliza_seed: Option<u64>, defaults: ModelDefaults, breaker: BreakerConfig) -> Self {
        Brains {
            eliza: Arc::new(ElizaBrain::new(eliza_seed, DEFAULT_CONVERSATIONS)),
            defaults,
            breaker,
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            breakers: Mutex::new(HashMap::new()),
        }
    }

    pub fn for_character(&self, c: &Character) -> Arc<dyn Brain> {
        let d = &self.defaults;
        let api_key = c.setting("OPENAI_API_KEY").or_else(|| d.api_key.clone());
        let base_url = c.setting("OPENAI_BASE_URL").or_else(|| d.base_url.clone());
        let provider = c
            .setting("modelProvider")
            .or_else(|| {
                c.rest
                    .get("modelProvider")
                    .and_then(|v| v.as_str().map(str::to_owned))
            })
            .map(|p| p.to_lowercase());
        let use_model = match provider.as_deref() {
            Some("eliza") => false,
            Some(_) => true,
            None => api_key.is_some() || base_url.is_some(),
        };
        if !use_model {
            return self.eliza.clone();
        }
        let base_url = base_url.unwrap_or_else(|| DEFAULT_BASE_URL.into());
        let model = c
            .setting("OPENAI_MODEL")
            .or_else(|| c.setting("OPENAI_LARGE_MODEL"))
            .or_else(|| c.setting("model"))
            .or_else(|| d.model.clone())
            .unwrap_or_else(|| DEFAULT_MODEL.into());
        let breaker = self
            .breakers
            .lock()
            .unwrap()
            .entry(base_url.clone())
            .or_insert_with(|| Arc::new(CircuitBreaker::new(self.breaker)))
            .clone();
        // A character's `OPENAI_VISION` (true/false) overrides the list of models.
        let vision = match c
            .setting("OPENAI_VISION")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            Some(v) if v == "true" || v == "1" => true,
            Some(v) if v == "false" || v == "0" => false,
            _ => crate::brain::openai::accepts_images(&model, &d.vision_models),
        };
        Arc::new(OpenAiBrain::new(
            self.client.clone(),
            ModelEndpoint {
                vision,
                base_url,
                api_key,
                model,
                timeout: d.timeout,
                retries: d.retries,
                backoff: d.backoff,
                max_tokens: d.max_tokens,
                temperature: None,
            },
            breaker,
        ))
    }
}

pub struct Agents {
    hub: Hub,
    brains: Brains,
    agents: RwLock<HashMap<Uuid, Arc<Agent>>>,
}

impl Agents {
    /// Loads stored agents, then the configured characters (which replace stored agents of the
    /// same id and are started); with neither, creates the default ELIZA agent.
    pub async fn load(
        hub: Hub,
        brains: Brains,
        configured: Vec<Character>,
    ) -> Result<Arc<Agents>, AgentError> {
        let agents = Arc::new(Agents {
            hub,
            brains,
            agents: RwLock::new(HashMap::new()),
        });
        for record in agents.store().list_agents().await? {
            match Character::from_value(record.character.clone()) {
                Ok(character) => {
                    agents.insert(Agent {
                        id: record.id,
                        brain: agents.brains.for_character(&character),
                        character,
                        enabled: record.enabled,
                        created_at: record.created_at,
                        updated_at: record.updated_at,
                    });
                }
                Err(e) => {
                    tracing::warn!(agent = %record.id, error = %e, "stored agent has an unreadable character; skipped")
                }
            }
        }
        let mut wanted = configured;
        if wanted.is_empty() && agents.list().is_empty() {
            wanted.push(Character::default_eliza());
        }
        for character in wanted {
            let id = character.agent_id();
            let created_at = agents.get(id).map_or_else(now_ms, |a| a.created_at);
            agents.save(character, id, true, created_at).await?;
        }
        for agent in agents.list() {
            if agent.enabled {
                agents.register_on_default_server(agent.id).await?;
            }
            tracing::info!(agent = %agent.id, name = agent.name(), brain = %agent.brain.describe(), enabled = agent.enabled, "agent loaded");
        }
        Ok(agents)
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.hub.store()
    }

    fn insert(&self, agent: Agent) -> Arc<Agent> {
        let agent = Arc::new(agent);
        self.agents.write().unwrap().insert(agent.id, agent.clone());
        agent
    }

    async fn save(
        &self,
        character: Character,
        id: Uuid,
        enabled: bool,
        created_at: i64,
    ) -> Result<Arc<Agent>, AgentError> {
        let agent = Agent {
            id,
            brain: self.brains.for_character(&character),
            character,
            enabled,
            created_at,
            updated_at: now_ms(),
        };
        self.store().put_agent(&agent.record()).await?;
        Ok(self.insert(agent))
    }

    /// ElizaOS adds every agent to the current message server when it registers.
    async fn register_on_default_server(&self, id: Uuid) -> Result<(), AgentError> {
        let server = self.hub.default_server();
        self.hub.add_server_agent(server, id).await?;
        Ok(())
    }

    pub fn get(&self, id: Uuid) -> Option<Arc<Agent>> {
        self.agents.read().unwrap().get(&id).cloned()
    }

    /// Started agents only.
    pub fn running(&self, id: Uuid) -> Option<Arc<Agent>> {
        self.get(id).filter(|a| a.enabled)
    }

    pub fn is_agent(&self, id: &str) -> bool {
        Uuid::parse_str(id).is_ok_and(|id| self.agents.read().unwrap().contains_key(&id))
    }

    /// Every agent, started ones first, then by name (as ElizaOS lists them).
    pub fn list(&self) -> Vec<Arc<Agent>> {
        let mut all: Vec<Arc<Agent>> = self.agents.read().unwrap().values().cloned().collect();
        all.sort_by(|a, b| {
            b.enabled
                .cmp(&a.enabled)
                .then_with(|| a.name().cmp(b.name()))
                .then_with(|| a.id.cmp(&b.id))
        });
        all
    }

    /// The agent used when a request names none: the default ELIZA if it runs, else the first
    /// started agent.
    pub fn default_agent(&self) -> Option<Arc<Agent>> {
        self.running(Character::default_eliza().agent_id())
            .or_else(|| self.list().into_iter().find(|a| a.enabled))
    }

    pub async fn create(&self, character: Character) -> Result<Arc<Agent>, AgentError> {
        character
            .validate()
            .map_err(|e| AgentError::InvalidCharacter(e.to_string()))?;
        let id = character.agent_id();
        if self.get(id).is_some() {
            return Err(AgentError::Exists(id));
        }
        let agent = self.save(character, id, true, now_ms()).await?;
        self.register_on_default_server(id).await?;
        tracing::info!(agent = %id, name = agent.name(), "agent created");
        Ok(agent)
    }

    pub async fn update(
        &self,
        id: Uuid,
        patch: &Map<String, Value>,
    ) -> Result<Arc<Agent>, AgentError> {
        let current = self.get(id).ok_or(AgentError::NotFound)?;
        let mut character = current
            .character
            .patched(patch)
            .map_err(|e| AgentError::InvalidCharacter(e.to_string()))?;
        character
            .validate()
            .map_err(|e| AgentError::InvalidCharacter(e.to_string()))?;
        // The id stays what it was, even when the name (from which it may derive) changes.
        if character.id.is_none() && character.agent_id() != id {
            character.id = Some(id);
        }
        self.save(character, id, current.enabled, current.created_at)
            .await
    }

    pub async fn set_enabled(&self, id: Uuid, enabled: bool) -> Result<Arc<Agent>, AgentError> {
        let current = self.get(id).ok_or(AgentError::NotFound)?;
        let agent = self
            .save(current.character.clone(), id, enabled, current.created_at)
            .await?;
        if enabled {
            self.register_on_default_server(id).await?;
        }
        tracing::info!(agent = %id, name = agent.name(), enabled, "agent {}", if enabled { "started" } else { "stopped" });
        Ok(agent)
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), AgentError> {
        if self.agents.write().unwrap().remove(&id).is_none() {
            return Err(AgentError::NotFound);
        }
        self.store().delete_agent(id).await?;
        for server in self.hub.agent_servers(id).await? {
            self.hub.remove_server_agent(server, id).await?;
        }
        tracing::info!(agent = %id, "agent deleted");
        Ok(())
    }
}
