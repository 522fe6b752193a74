//! The sessions API's logic (compat spec §2.8): a conversation between one user and one agent
//! over its own DM channel, with a timeout that activity renews, up to a maximum duration.
//! Unlike ElizaOS, sessions are stored, so they survive a restart.

use std::sync::Arc;
use std::time::Duration;

use confab_hub::{Committed, Delivery, Hub, HubError};
use confab_protocol::{iso_from_ms, now_ms};
use confab_store::{Channel, NewMessage, SessionRecord, StoredMessage, channel_type};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::registry::Agents;

/// Server-wide timeout settings, in minutes (ElizaOS's `SESSION_*` variables, clamped as it
/// clamps them).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    pub default_timeout: u32,
    pub min_timeout: u32,
    pub max_timeout: u32,
    pub max_duration: u32,
    pub warning_threshold: u32,
    pub cleanup_interval: u32,
    /// How long a "minute" lasts. One minute, except in tests and demos that want sessions to
    /// expire quickly (`CONFAB_SESSION_MINUTE_MS`).
    pub minute: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            default_timeout: 30,
            min_timeout: 5,
            max_timeout: 1440,
            max_duration: 720,
            warning_threshold: 5,
            cleanup_interval: 5,
            minute: Duration::from_secs(60),
        }
    }
}

impl SessionConfig {
    /// Reads the settings through `var` (the environment, in the binary).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let d = SessionConfig::default();
        let num = |name: &str, default: u32, lo: u32, hi: u32| {
            var(name)
                .and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(default)
                .clamp(lo, hi)
        };
        SessionConfig {
            default_timeout: num(
                "SESSION_DEFAULT_TIMEOUT_MINUTES",
                d.default_timeout,
                1,
                10080,
            ),
            min_timeout: num("SESSION_MIN_TIMEOUT_MINUTES", d.min_timeout, 1, 60),
            max_timeout: num("SESSION_MAX_TIMEOUT_MINUTES", d.max_timeout, 60, 10080),
            max_duration: num("SESSION_MAX_DURATION_MINUTES", d.max_duration, 60, 20160),
            warning_threshold: num(
                "SESSION_WARNING_THRESHOLD_MINUTES",
                d.warning_threshold,
                1,
                60,
            ),
            cleanup_interval: num(
                "SESSION_CLEANUP_INTERVAL_MINUTES",
                d.cleanup_interval,
                1,
                60,
            ),
            minute: var("CONFAB_SESSION_MINUTE_MS")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|ms| *ms > 0)
                .map_or(d.minute, Duration::from_millis),
        }
    }

    fn ms(&self, minutes: u32) -> i64 {
        self.minute.as_millis() as i64 * minutes as i64
    }
}

/// A session's own timeout settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutConfig {
    pub timeout_minutes: u32,
    pub auto_renew: bool,
    pub max_duration_minutes: u32,
    pub warning_threshold_minutes: u32,
}

impl TimeoutConfig {
    fn from_stored(v: &Value, defaults: TimeoutConfig) -> TimeoutConfig {
        let n = |k: &str, d: u32| v.get(k).and_then(Value::as_u64).map_or(d, |x| x as u32);
        TimeoutConfig {
            timeout_minutes: n("timeoutMinutes", defaults.timeout_minutes),
            auto_renew: v
                .get("autoRenew")
                .and_then(Value::as_bool)
                .unwrap_or(defaults.auto_renew),
            max_duration_minutes: n("maxDurationMinutes", defaults.max_duration_minutes),
            warning_threshold_minutes: n(
                "warningThresholdMinutes",
                defaults.warning_threshold_minutes,
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    #[error("Session {0} not found")]
    NotFound(Uuid),
    #[error("Session {0} has expired")]
    Expired(Uuid),
    #[error("{0}")]
    Validation(String),
    #[error("Agent {0} not found")]
    AgentNotFound(String),
    #[error("{0}")]
    RenewalFailed(String),
    #[error("{0}")]
    CreationFailed(String),
    #[error("{0}")]
    SendFailed(String),
    #[error("{0}")]
    Internal(String),
}

impl SessionError {
    /// ElizaOS's error code and HTTP status.
    pub fn code(&self) -> (&'static str, u16) {
        match self {
            SessionError::NotFound(_) => ("SESSION_NOT_FOUND", 404),
            SessionError::Expired(_) => ("SESSION_EXPIRED", 410),
            SessionError::Validation(_) => ("VALIDATION_ERROR", 400),
            SessionError::AgentNotFound(_) => ("AGENT_NOT_FOUND", 404),
            SessionError::RenewalFailed(_) => ("SESSION_RENEWAL_FAILED", 400),
            SessionError::CreationFailed(_) => ("SESSION_CREATION_FAILED", 500),
            SessionError::SendFailed(_) => ("MESSAGE_SEND_FAILED", 500),
            SessionError::Internal(_) => ("INTERNAL_SERVER_ERROR", 500),
        }
    }
}

impl From<confab_store::StoreError> for SessionError {
    fn from(e: confab_store::StoreError) -> Self {
        SessionError::Internal(e.to_string())
    }
}

/// Session info as the API returns it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub session_id: Uuid,
    pub channel_id: Uuid,
    pub agent_id: Uuid,
    pub user_id: Uuid,
    pub created_at: String,
    pub last_activity: String,
    pub metadata: Value,
    pub expires_at: String,
    pub timeout_config: TimeoutConfig,
    pub renewal_count: i64,
    pub time_remaining: i64,
    pub is_near_expiration: bool,
}

/// What a send did to the session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatus {
    pub expires_at: String,
    pub renewal_count: i64,
    pub was_renewed: bool,
    pub is_near_expiration: bool,
}

/// A page of a session's messages, newest first.
#[derive(Debug, Clone)]
pub struct MessagePage {
    pub messages: Vec<StoredMessage>,
    pub has_more: bool,
    /// `{before: oldest createdAt, after: newest createdAt}` (epoch ms) when not empty.
    pub cursors: Option<Value>,
}

pub const MAX_CONTENT_CHARS: usize = 4000;
pub const MAX_METADATA_BYTES: usize = 10 * 1024;

pub struct Sessions {
    hub: Hub,
    agents: Arc<Agents>,
    config: SessionConfig,
}

impl Sessions {
    pub fn new(hub: Hub, agents: Arc<Agents>, config: SessionConfig) -> Arc<Sessions> {
        Arc::new(Sessions {
            hub,
            agents,
            config,
        })
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Deletes expired sessions every cleanup interval.
    pub fn start_sweeper(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let every = self.config.minute * self.config.cleanup_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(sessions) = me.upgrade() else { return };
                match sessions.sweep().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "expired sessions removed"),
                    Err(e) => tracing::warn!(error = %e, "session sweep failed"),
                }
            }
        });
    }

    pub async fn sweep(&self) -> Result<usize, SessionError> {
        let now = now_ms();
        let mut removed = 0;
        for s in self.hub.store().list_sessions().await? {
            if self.expires_at(&s) <= now {
                self.hub.store().delete_session(s.id).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The agent's own defaults (its `SESSION_*` settings), else the server's.
    fn defaults_for(&self, agent: Uuid) -> TimeoutConfig {
        let c = &self.config;
        let setting = |k: &str| self.agents.get(agent).and_then(|a| a.character.setting(k));
        let num = |k: &str| setting(k).and_then(|v| v.parse::<u32>().ok());
        TimeoutConfig {
            timeout_minutes: num("SESSION_TIMEOUT_MINUTES")
                .unwrap_or(c.default_timeout)
                .clamp(c.min_timeout, c.max_timeout),
            auto_renew: setting("SESSION_AUTO_RENEW").is_none_or(|v| v == "true"),
            max_duration_minutes: num("SESSION_MAX_DURATION_MINUTES").unwrap_or(c.max_duration),
            warning_threshold_minutes: num("SESSION_WARNING_THRESHOLD_MINUTES")
                .unwrap_or(c.warning_threshold)
                .max(1),
        }
    }

    /// Applies a request's `timeoutConfig` (numbers or numeric strings) over `base`, clamped:
    /// timeout to [min, max], max duration to [timeout, 2 × max], warning ≥ 1.
    fn apply(
        &self,
        base: TimeoutConfig,
        req: &Map<String, Value>,
        strict: bool,
    ) -> Result<TimeoutConfig, SessionError> {
        apply_timeout(&self.config, base, req, strict)
    }

    fn timeout_of(&self, s: &SessionRecord) -> TimeoutConfig {
        TimeoutConfig::from_stored(&s.timeout_config, self.defaults_for(s.agent_id))
    }

    fn expires_at(&self, s: &SessionRecord) -> i64 {
        let t = self.timeout_of(s);
        let by_timeout = s.renewed_at + self.config.ms(t.timeout_minutes);
        let by_duration = s.created_at + self.config.ms(t.max_duration_minutes);
        by_timeout.min(by_duration)
    }

    pub fn info(&self, s: &SessionRecord) -> SessionInfo {
        let now = now_ms();
        let t = self.timeout_of(s);
        let expires = self.expires_at(s);
        let remaining = (expires - now).max(0);
        SessionInfo {
            session_id: s.id,
            channel_id: s.channel_id,
            agent_id: s.agent_id,
            user_id: s.user_id,
            created_at: iso_from_ms(s.created_at),
            last_activity: iso_from_ms(s.last_activity),
            metadata: s.metadata.clone(),
            expires_at: iso_from_ms(expires),
            timeout_config: t,
            renewal_count: s.renewal_count,
            time_remaining: remaining,
            is_near_expiration: remaining <= self.config.ms(t.warning_threshold_minutes),
        }
    }

    fn status(&self, s: &SessionRecord, was_renewed: bool) -> SessionStatus {
        let info = self.info(s);
        SessionStatus {
            expires_at: info.expires_at,
            renewal_count: s.renewal_count,
            was_renewed,
            is_near_expiration: info.is_near_expiration,
        }
    }

    pub async fn create(&self, body: &Map<String, Value>) -> Result<SessionInfo, SessionError> {
        let (Some(agent), Some(user)) = (
            body.get("agentId").filter(|v| !v.is_null()),
            body.get("userId").filter(|v| !v.is_null()),
        ) else {
            return Err(SessionError::Validation(
                "Missing required fields: agentId, userId".into(),
            ));
        };
        let uuid_field = |name: &str, v: &Value| {
            v.as_str()
                .and_then(confab_protocol::ids::parse_uuid)
                .ok_or_else(|| {
                    SessionError::Validation(format!("Invalid UUID format for field '{name}'"))
                })
        };
        let agent_id = uuid_field("agentId", agent)?;
        let user_id = uuid_field("userId", user)?;
        if self.agents.get(agent_id).is_none() {
            return Err(SessionError::AgentNotFound(agent_id.to_string()));
        }
        let metadata = match body.get("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => {
                if Value::Object(m.clone()).to_string().len() > MAX_METADATA_BYTES {
                    return Err(SessionError::Validation(
                        "Metadata exceeds maximum size of 10KB".into(),
                    ));
                }
                m.clone()
            }
            Some(_) => {
                return Err(SessionError::Validation(
                    "Metadata must be an object".into(),
                ));
            }
        };
        let timeout = match body.get("timeoutConfig") {
            Some(Value::Object(req)) => self.apply(self.defaults_for(agent_id), req, false)?,
            _ => self.defaults_for(agent_id),
        };
        let session_id = Uuid::new_v4();
        let channel_id = Uuid::new_v4();
        let now = now_ms();
        let mut channel_meta = Map::new();
        channel_meta.insert("sessionId".into(), json!(session_id));
        channel_meta.insert("agentId".into(), json!(agent_id));
        channel_meta.insert("userId".into(), json!(user_id));
        channel_meta.insert("timeoutConfig".into(), json!(timeout));
        channel_meta.extend(metadata.clone());
        self.hub
            .create_channel(
                Channel {
                    id: channel_id,
                    message_server_id: self.hub.default_server(),
                    name: format!("session-{session_id}"),
                    kind: channel_type::DM.into(),
                    source_type: None,
                    source_id: None,
                    topic: None,
                    metadata: Some(Value::Object(channel_meta)),
                    alias: None,
                    created_at: now,
                    updated_at: now,
                },
                // As ElizaOS: only the agent is a participant.
                &[agent_id.to_string()],
            )
            .await
            .map_err(|e| SessionError::CreationFailed(e.to_string()))?;
        let record = SessionRecord {
            id: session_id,
            channel_id,
            agent_id,
            user_id,
            metadata: Value::Object(metadata),
            timeout_config: json!(timeout),
            renewal_count: 0,
            created_at: now,
            last_activity: now,
            renewed_at: now,
        };
        self.hub
            .store()
            .put_session(&record)
            .await
            .map_err(|e| SessionError::CreationFailed(e.to_string()))?;
        tracing::info!(session = %session_id, agent = %agent_id, user = %user_id, "session created");
        Ok(self.info(&record))
    }

    /// The live session; an expired one is removed and reported as such.
    pub async fn live(&self, id: &str) -> Result<SessionRecord, SessionError> {
        let uuid = Uuid::parse_str(id).map_err(|_| SessionError::NotFound(Uuid::nil()));
        let Ok(uuid) = uuid else {
            return Err(SessionError::Validation(format!(
                "Invalid session id: {id}"
            )));
        };
        let s = self
            .hub
            .store()
            .get_session(uuid)
            .await?
            .ok_or(SessionError::NotFound(uuid))?;
        if self.expires_at(&s) <= now_ms() {
            self.hub.store().delete_session(uuid).await?;
            return Err(SessionError::Expired(uuid));
        }
        Ok(s)
    }

    /// Records activity; with auto-renew (and under the maximum duration) the timeout starts
    /// over. Returns whether it did.
    async fn touch(&self, s: &mut SessionRecord) -> Result<bool, SessionError> {
        let now = now_ms();
        let t = self.timeout_of(s);
        s.last_activity = now;
        let renew = t.auto_renew && now < s.created_at + self.config.ms(t.max_duration_minutes);
        if renew {
            s.renewed_at = now;
            s.renewal_count += 1;
        }
        self.hub.store().put_session(s).await?;
        Ok(renew)
    }

    /// Stores a user message in the session's channel (not broadcast, as ElizaOS); the agent
    /// answers it in the channel.
    pub async fn send(
        &self,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<(SessionRecord, Committed, SessionStatus), SessionError> {
        let mut s = self.live(id).await?;
        let content = match body.get("content") {
            Some(Value::String(c))
                if !c.trim().is_empty() && c.chars().count() <= MAX_CONTENT_CHARS =>
            {
                c.clone()
            }
            Some(Value::String(c)) if c.chars().count() > MAX_CONTENT_CHARS => {
                return Err(SessionError::Validation(format!(
                    "Invalid content: must be at most {MAX_CONTENT_CHARS} characters"
                )));
            }
            _ => {
                return Err(SessionError::Validation(
                    "Invalid content: must be a non-empty string".into(),
                ));
            }
        };
        if let Some(m) = body.get("metadata").filter(|m| !m.is_null())
            && (!m.is_object() || m.to_string().len() > MAX_METADATA_BYTES)
        {
            return Err(SessionError::Validation(
                "Invalid metadata: must be an object of at most 10KB".into(),
            ));
        }
        let was_renewed = self.touch(&mut s).await?;
        let channel = self
            .hub
            .directory()
            .find(s.channel_id)
            .await
            .map_err(|e| SessionError::SendFailed(e.to_string()))?
            .ok_or_else(|| SessionError::SendFailed("the session's channel is gone".into()))?;
        let mut metadata = self
            .hub
            .channel(s.channel_id)
            .await
            .ok()
            .flatten()
            .and_then(|c| c.metadata)
            .and_then(|m| m.as_object().cloned())
            .unwrap_or_default();
        metadata.insert("sessionId".into(), json!(s.id));
        if let Some(Value::Object(m)) = body.get("metadata") {
            metadata.extend(m.clone());
        }
        let attachments = body.get("attachments").cloned().unwrap_or(Value::Null);
        let message = NewMessage {
            id: confab_store::new_message_id(),
            channel_id: s.channel_id,
            author_id: s.user_id.to_string(),
            content: content.clone(),
            raw_message: Some(json!({ "content": content, "attachments": attachments })),
            in_reply_to: None,
            source_type: Some("user".into()),
            source_id: None,
            metadata: Some(Value::Object(metadata)),
            created_at: 0,
            client_key: None,
        };
        let committed = self
            .hub
            .append(message, channel, Delivery::Quiet)
            .await
            .map_err(|e: HubError| SessionError::SendFailed(e.to_string()))?;
        let status = self.status(&s, was_renewed);
        Ok((s, committed, status))
    }

    /// A page of messages, newest first; `before` / `after` are epoch-ms bounds (exclusive).
    pub async fn messages(
        &self,
        id: &str,
        limit: Option<&str>,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<MessagePage, SessionError> {
        let s = self.live(id).await?;
        let limit = limit
            .and_then(|l| l.trim().parse::<i64>().ok())
            .unwrap_or(50)
            .clamp(1, 100) as u32;
        let parse = |name: &str, v: Option<&str>| -> Result<Option<i64>, SessionError> {
            match v {
                None => Ok(None),
                Some(v) => confab_protocol::parse_epoch_ms(v).map(Some).ok_or_else(|| {
                    SessionError::Validation(format!(
                        "Invalid pagination parameter '{name}': Must be a valid timestamp"
                    ))
                }),
            }
        };
        let before = parse("before", before)?;
        let after = parse("after", after)?;
        let store = self.hub.store();
        let mut rows: Vec<StoredMessage> = match after {
            Some(after) => {
                let mut r = store
                    .messages_after(
                        s.channel_id,
                        confab_store::Cursor::Time(after),
                        i64::MAX,
                        limit,
                    )
                    .await?;
                r.reverse();
                if let Some(b) = before {
                    r.retain(|m| m.created_at < b);
                }
                r
            }
            None => store.recent_messages(s.channel_id, limit, before).await?,
        };
        rows.truncate(limit as usize);
        let cursors = (!rows.is_empty()).then(|| {
            json!({
                "before": rows.iter().map(|m| m.created_at).min(),
                "after": rows.iter().map(|m| m.created_at).max(),
            })
        });
        Ok(MessagePage {
            has_more: rows.len() == limit as usize,
            messages: rows,
            cursors,
        })
    }

    pub async fn renew(&self, id: &str) -> Result<SessionInfo, SessionError> {
        let mut s = self.live(id).await?;
        let t = self.timeout_of(&s);
        let now = now_ms();
        let end = s.created_at + self.config.ms(t.max_duration_minutes);
        if now >= end || self.expires_at(&s) >= end {
            return Err(SessionError::RenewalFailed(
                "Cannot renew session: maximum duration reached".into(),
            ));
        }
        s.last_activity = now;
        s.renewed_at = now;
        s.renewal_count += 1;
        self.hub.store().put_session(&s).await?;
        Ok(self.info(&s))
    }

    pub async fn update_timeout(
        &self,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<SessionInfo, SessionError> {
        let mut s = self.live(id).await?;
        let t = self.apply(self.timeout_of(&s), body, true)?;
        s.timeout_config = json!(t);
        self.hub.store().put_session(&s).await?;
        Ok(self.info(&s))
    }

    pub async fn heartbeat(&self, id: &str) -> Result<SessionInfo, SessionError> {
        let mut s = self.live(id).await?;
        self.touch(&mut s).await?;
        Ok(self.info(&s))
    }

    /// Deletes the session (its channel and messages are kept).
    pub async fn delete(&self, id: &str) -> Result<Uuid, SessionError> {
        let uuid = Uuid::parse_str(id).map_err(|_| SessionError::NotFound(Uuid::nil()))?;
        if !self.hub.store().delete_session(uuid).await? {
            return Err(SessionError::NotFound(uuid));
        }
        Ok(uuid)
    }

    /// Live sessions, and counts.
    pub async fn list(&self) -> Result<(Vec<SessionInfo>, usize, usize), SessionError> {
        let now = now_ms();
        let all = self.hub.store().list_sessions().await?;
        let total = all.len();
        let live: Vec<SessionInfo> = all
            .iter()
            .filter(|s| self.expires_at(s) > now)
            .map(|s| self.info(s))
            .collect();
        let expired = total - live.len();
        Ok((live, total, expired))
    }

    /// `(active, expiring soon)`.
    pub async fn health(&self) -> Result<(usize, usize), SessionError> {
        let (live, _, _) = self.list().await?;
        let soon = live.iter().filter(|s| s.is_near_expiration).count();
        Ok((live.len(), soon))
    }
}

/// Applies a request's `timeoutConfig` (numbers or numeric strings) over `base`, clamped:
/// timeout to [min, max] (`strict`: refused outside it), max duration to [timeout, 2 × max],
/// warning ≥ 1.
pub fn apply_timeout(
    c: &SessionConfig,
    base: TimeoutConfig,
    req: &Map<String, Value>,
    strict: bool,
) -> Result<TimeoutConfig, SessionError> {
    let num = |k: &str| -> Option<f64> {
        match req.get(k)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let mut out = base;
    if let Some(t) = num("timeoutMinutes") {
        if strict && (t < c.min_timeout as f64 || t > c.max_timeout as f64) {
            return Err(SessionError::Validation(format!(
                "Invalid timeout configuration: Timeout must be between {} and {} minutes",
                c.min_timeout, c.max_timeout
            )));
        }
        out.timeout_minutes =
            (t.round() as i64).clamp(c.min_timeout as i64, c.max_timeout as i64) as u32;
    }
    if let Some(v) = req.get("autoRenew") {
        out.auto_renew = match v {
            Value::Bool(b) => *b,
            Value::String(s) => s == "true",
            _ => out.auto_renew,
        };
    }
    if let Some(d) = num("maxDurationMinutes") {
        out.max_duration_minutes = d.round().max(0.0) as u32;
    }
    out.max_duration_minutes = out.max_duration_minutes.clamp(
        out.timeout_minutes,
        2 * c.max_timeout.max(out.timeout_minutes),
    );
    if let Some(w) = num("warningThresholdMinutes") {
        out.warning_threshold_minutes = (w.round() as i64).max(1) as u32;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_clamped_like_elizaos() {
        let vars = |k: &str| match k {
            "SESSION_DEFAULT_TIMEOUT_MINUTES" => Some("0".to_string()),
            "SESSION_MIN_TIMEOUT_MINUTES" => Some("500".to_string()),
            "SESSION_MAX_TIMEOUT_MINUTES" => Some("5".to_string()),
            "SESSION_MAX_DURATION_MINUTES" => Some("nope".to_string()),
            "CONFAB_SESSION_MINUTE_MS" => Some("250".to_string()),
            _ => None,
        };
        let c = SessionConfig::from_vars(vars);
        assert_eq!(c.default_timeout, 1);
        assert_eq!(c.min_timeout, 60);
        assert_eq!(c.max_timeout, 60);
        assert_eq!(c.max_duration, 720);
        assert_eq!(c.minute, Duration::from_millis(250));
        assert_eq!(SessionConfig::from_vars(|_| None), SessionConfig::default());
    }

    #[test]
    fn request_timeouts_are_clamped_or_refused() {
        let c = SessionConfig::default();
        let base = TimeoutConfig {
            timeout_minutes: 30,
            auto_renew: true,
            max_duration_minutes: 720,
            warning_threshold_minutes: 5,
        };
        let req = |v: Value| v.as_object().unwrap().clone();
        let t = apply_timeout(
            &c,
            base,
            &req(json!({"timeoutMinutes": "2", "autoRenew": "false"})),
            false,
        )
        .unwrap();
        assert_eq!(t.timeout_minutes, 5);
        assert!(!t.auto_renew);
        let t = apply_timeout(
            &c,
            base,
            &req(json!({"timeoutMinutes": 100, "maxDurationMinutes": 10})),
            false,
        )
        .unwrap();
        assert_eq!(
            t.max_duration_minutes, 100,
            "max duration is at least the timeout"
        );
        let t = apply_timeout(
            &c,
            base,
            &req(json!({"maxDurationMinutes": 99999, "warningThresholdMinutes": 0})),
            false,
        )
        .unwrap();
        assert_eq!(t.max_duration_minutes, 2 * 1440);
        assert_eq!(t.warning_threshold_minutes, 1);
        let e = apply_timeout(&c, base, &req(json!({"timeoutMinutes": 2})), true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid timeout configuration: Timeout must be between 5 and 1440 minutes"
        );
    }
}
