//! Log streaming (compat spec §1.7): a `tracing` layer captures confab's own log events; sockets
//! that sent `subscribe_logs` receive them as `log_stream {type:"log_entry", payload}`, filtered
//! by `agentName` and minimum `level` like ElizaOS (`update_log_filters` → `log_filters_updated`).
//! Seed 004's dialect is understood too: `set_log_filter {level, agentId, category}` subscribes
//! and sets filters, and such sockets also receive `log_update {id, timestamp, level, category,
//! message, data, agentId}`. Levels are names (`warn`) or numbers (`40`, `"40"`). Logging never
//! waits for a subscriber: entries go through a bounded queue (dropped when full) and every emit
//! is non-blocking. When authentication is on, only operators may subscribe (see
//! `socket::guard`). The most recent entries are also kept for `GET /api/server/logs`.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use confab_hub::ConnId;
use confab_protocol::inbound::LogFilterUpdate;
use confab_protocol::outbound::{LogFiltersUpdated, LogStream, LogSubscription};
use confab_protocol::{ServerEvent, now_ms};
use serde_json::{Map, Value, json};
use socketioxide::SocketIo;
use socketioxide::socket::Sid;
use std::str::FromStr;
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

const RECENT: usize = 1000;

/// Seed 004's filter event.
pub const SET_LOG_FILTER: &str = "set_log_filter";

#[derive(Debug, Clone, Default)]
struct Filters {
    agent_name: Option<String>,
    level: Option<Value>,
    /// Seed 004: `agentId` and `category` (matched against the entry's `src`).
    agent_id: Option<String>,
    category: Option<String>,
    /// Seed 004's client: also gets `log_update`.
    log_update: bool,
}

impl Filters {
    fn min_level(&self) -> i64 {
        match &self.level {
            None => 0,
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(Value::String(s)) if s == "all" => 0,
            Some(Value::String(s)) => parse_level(s.trim()),
            Some(_) => 0,
        }
    }

    fn passes(&self, entry: &Value) -> bool {
        let level = entry.get("level").and_then(Value::as_i64).unwrap_or(30);
        if level < self.min_level() {
            return false;
        }
        let field_is = |wanted: Option<&str>, key: &str| match wanted {
            None | Some("all") => true,
            Some(want) => entry.get(key).and_then(Value::as_str) == Some(want),
        };
        let category = match self.category.as_deref() {
            None | Some("all") => true,
            Some(c) => entry
                .get("category")
                .or_else(|| entry.get("src"))
                .and_then(Value::as_str)
                .is_some_and(|v| v == c || v.starts_with(&format!("{c}::"))),
        };
        field_is(self.agent_name.as_deref(), "agentName")
            && field_is(self.agent_id.as_deref(), "agentId")
            && category
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(a) = &self.agent_name {
            m.insert("agentName".into(), json!(a));
        }
        if let Some(l) = &self.level {
            m.insert("level".into(), l.clone());
        }
        if let Some(a) = &self.agent_id {
            m.insert("agentId".into(), json!(a));
        }
        if let Some(c) = &self.category {
            m.insert("category".into(), json!(c));
        }
        Value::Object(m)
    }
}

/// ElizaOS's level names (pino numbering); unknown names let nothing through.
fn level_number(name: &str) -> i64 {
    match name.to_ascii_lowercase().as_str() {
        "fatal" => 60,
        "error" => 50,
        "warn" => 40,
        "info" => 30,
        "log" => 29,
        "progress" => 28,
        "success" => 27,
        "debug" => 20,
        "trace" => 10,
        _ => 70,
    }
}

fn tracing_level(l: &tracing::Level) -> i64 {
    match *l {
        tracing::Level::ERROR => 50,
        tracing::Level::WARN => 40,
        tracing::Level::INFO => 30,
        tracing::Level::DEBUG => 20,
        tracing::Level::TRACE => 10,
    }
}

#[derive(Default)]
struct State {
    subscribers: HashMap<ConnId, Filters>,
    recent: VecDeque<Value>,
    io: Option<SocketIo>,
}

/// Shared between the tracing layer (producer), the socket handlers (subscriptions) and the
/// forwarding task.
#[derive(Clone, Default)]
pub struct LogHub {
    state: Arc<Mutex<State>>,
    tx: Arc<Mutex<Option<mpsc::Sender<Value>>>>,
    /// The cluster node these logs come from, added to every entry.
    node: Arc<std::sync::OnceLock<String>>,
}

impl LogHub {
    /// Names the node in every entry from now on (cluster mode).
    pub fn set_node(&self, node: &str) {
        let _ = self.node.set(node.to_owned());
    }

    pub fn new() -> Self {
        Self::default()
    }

    /// The `tracing` layer feeding this hub; install it in the subscriber.
    pub fn layer(&self) -> LogLayer {
        LogLayer { hub: self.clone() }
    }

    /// Starts forwarding to subscribed sockets.
    pub fn attach(&self, io: SocketIo) {
        let (tx, mut rx) = mpsc::channel::<Value>(4096);
        *self.tx.lock().unwrap() = Some(tx);
        self.state.lock().unwrap().io = Some(io);
        let state = self.state.clone();
        tokio::spawn(async move {
            while let Some(entry) = rx.recv().await {
                let (io, targets): (SocketIo, Vec<(Sid, bool)>) = {
                    let s = state.lock().unwrap();
                    let Some(io) = &s.io else { continue };
                    let targets = s
                        .subscribers
                        .iter()
                        .filter(|(_, f)| f.passes(&entry))
                        .filter_map(|(c, f)| {
                            Sid::from_str(&c.0).ok().map(|sid| (sid, f.log_update))
                        })
                        .collect();
                    (io.clone(), targets)
                };
                if targets.is_empty() {
                    continue;
                }
                let update = targets.iter().any(|(_, u)| *u).then(|| log_update(&entry));
                let event = ServerEvent::LogStream(LogStream {
                    kind: "log_entry",
                    payload: entry,
                });
                let Some(ns) = io.of("/") else { continue };
                for (sid, wants_update) in targets {
                    if let Some(socket) = ns.get_socket(sid) {
                        // Non-blocking: a subscriber whose queue is full misses the entry.
                        let _ = socket.emit(event.name(), &event);
                        if wants_update && let Some(u) = &update {
                            let _ = socket.emit("log_update", u);
                        }
                    }
                }
            }
        });
    }

    pub fn subscribe(&self, conn: &ConnId) -> LogSubscription {
        self.state
            .lock()
            .unwrap()
            .subscribers
            .insert(conn.clone(), Filters::default());
        LogSubscription {
            subscribed: true,
            message: "Successfully subscribed to log stream",
        }
    }

    pub fn unsubscribe(&self, conn: &ConnId) -> LogSubscription {
        self.state.lock().unwrap().subscribers.remove(conn);
        LogSubscription {
            subscribed: false,
            message: "Successfully unsubscribed from log stream",
        }
    }

    pub fn update_filters(&self, conn: &ConnId, update: LogFilterUpdate) -> LogFiltersUpdated {
        let mut s = self.state.lock().unwrap();
        match s.subscribers.get_mut(conn) {
            Some(f) => {
                if update.agent_name.is_some() {
                    f.agent_name = update.agent_name;
                }
                if update.level.is_some() {
                    f.level = update.level;
                }
                LogFiltersUpdated {
                    success: true,
                    filters: Some(f.to_json()),
                    error: None,
                }
            }
            None => LogFiltersUpdated {
                success: false,
                filters: None,
                error: Some("Not subscribed to log stream".into()),
            },
        }
    }

    /// Seed 004's `set_log_filter {level, agentId, category, agentName}`: subscribes if needed,
    /// replaces the filters given, and turns on `log_update` for this socket.
    pub fn set_log_filter(&self, conn: &ConnId, payload: Value) -> LogFiltersUpdated {
        let Value::Object(p) = payload else {
            return LogFiltersUpdated {
                success: false,
                filters: None,
                error: Some(
                    "set_log_filter expects an object {level?, agentId?, category?}".into(),
                ),
            };
        };
        let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
        let level = match p.get("level") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Number(_)) => Some(v.clone()),
            Some(Value::String(s)) if s == "all" || parse_level(s) < 70 => Some(json!(s)),
            Some(_) => {
                return LogFiltersUpdated {
                    success: false,
                    filters: None,
                    error: Some(format!(
                        "Unknown log level; use one of {} or a number",
                        LEVEL_NAMES.join(", ")
                    )),
                };
            }
        };
        let mut s = self.state.lock().unwrap();
        let f = s.subscribers.entry(conn.clone()).or_default();
        f.log_update = true;
        if level.is_some() {
            f.level = level;
        }
        if let Some(a) = text("agentId") {
            f.agent_id = Some(a);
        }
        if let Some(a) = text("agentName") {
            f.agent_name = Some(a);
        }
        if let Some(c) = text("category") {
            f.category = Some(c);
        }
        LogFiltersUpdated {
            success: true,
            filters: Some(f.to_json()),
            error: None,
        }
    }

    /// The most recent entries, oldest first, optionally at or above a level.
    pub fn recent(&self, min_level: i64, limit: usize) -> Vec<Value> {
        let s = self.state.lock().unwrap();
        let mut v: Vec<Value> = s
            .recent
            .iter()
            .filter(|e| e.get("level").and_then(Value::as_i64).unwrap_or(30) >= min_level)
            .cloned()
            .collect();
        let skip = v.len().saturating_sub(limit);
        v.drain(..skip);
        v
    }

    pub fn clear_recent(&self) {
        self.state.lock().unwrap().recent.clear();
    }

    fn push(&self, entry: Value) {
        {
            let mut s = self.state.lock().unwrap();
            if s.recent.len() == RECENT {
                s.recent.pop_front();
            }
            s.recent.push_back(entry.clone());
            if s.subscribers.is_empty() {
                return;
            }
        }
        if let Some(tx) = self.tx.lock().unwrap().as_ref() {
            let _ = tx.try_send(entry);
        }
    }
}

pub fn parse_level(s: &str) -> i64 {
    s.parse::<i64>().unwrap_or_else(|_| level_number(s))
}

/// The level names ElizaOS knows, most severe first.
pub const LEVEL_NAMES: [&str; 9] = [
    "fatal", "error", "warn", "info", "log", "progress", "success", "debug", "trace",
];

fn level_name(n: i64) -> &'static str {
    match n {
        60.. => "fatal",
        50..=59 => "error",
        40..=49 => "warn",
        30..=39 => "info",
        29 => "log",
        28 => "progress",
        27 => "success",
        20..=26 => "debug",
        _ => "trace",
    }
}

/// Seed 004's `log_update` shape of an entry.
fn log_update(entry: &Value) -> Value {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let get = |k: &str| entry.get(k).cloned().unwrap_or(Value::Null);
    let data: Map<String, Value> = entry
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "time" | "level" | "msg" | "src" | "agentId")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut u = json!({
        "id": NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string(),
        "timestamp": confab_protocol::iso_from_ms(entry.get("time").and_then(Value::as_i64).unwrap_or_else(now_ms)),
        "level": level_name(entry.get("level").and_then(Value::as_i64).unwrap_or(30)),
        "category": get("src"),
        "message": get("msg"),
    });
    if !data.is_empty() {
        u["data"] = Value::Object(data);
    }
    if let Some(a) = entry.get("agentId") {
        u["agentId"] = a.clone();
    }
    u
}

pub struct LogLayer {
    hub: LogHub,
}

struct Fields {
    msg: String,
    extra: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            self.extra
                .insert(field.name().into(), json!(format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            self.extra.insert(field.name().into(), json!(value));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.extra.insert(field.name().into(), json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.extra.insert(field.name().into(), json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.extra.insert(field.name().into(), json!(value));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // Only confab's own events: forwarding them must not log anything that comes back here.
        if !meta.target().starts_with("confab") || *meta.level() > tracing::Level::INFO {
            return;
        }
        let mut fields = Fields {
            msg: String::new(),
            extra: Map::new(),
        };
        event.record(&mut fields);
        let mut entry = fields.extra;
        entry.insert("time".into(), json!(now_ms()));
        entry.insert("level".into(), json!(tracing_level(meta.level())));
        entry.insert("msg".into(), json!(fields.msg));
        entry.insert("src".into(), json!(meta.target()));
        if let Some(node) = self.hub.node.get() {
            entry.insert("node".into(), json!(node));
        }
        self.hub.push(Value::Object(entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_elizaos() {
        let f = Filters {
            agent_name: Some("Eliza".into()),
            level: Some(json!("warn")),
            ..Filters::default()
        };
        assert!(f.passes(&json!({"level": 50, "agentName": "Eliza"})));
        assert!(!f.passes(&json!({"level": 30, "agentName": "Eliza"})));
        assert!(!f.passes(&json!({"level": 50, "agentName": "Other"})));
        let nothing = Filters {
            level: Some(json!("nonsense")),
            ..Filters::default()
        };
        assert!(!nothing.passes(&json!({"level": 60})));
        assert!(Filters::default().passes(&json!({})));
        let numeric = Filters {
            level: Some(json!("40")),
            ..Filters::default()
        };
        assert!(numeric.passes(&json!({"level": 40})));
        assert!(!numeric.passes(&json!({"level": 30})));
        let seed004 = Filters {
            agent_id: Some("a1".into()),
            category: Some("confab_hub".into()),
            ..Filters::default()
        };
        assert!(seed004.passes(&json!({"agentId": "a1", "src": "confab_hub::sequencer"})));
        assert!(!seed004.passes(&json!({"agentId": "a2", "src": "confab_hub"})));
        assert!(!seed004.passes(&json!({"agentId": "a1", "src": "confab_server"})));
    }

    #[test]
    fn set_log_filter_subscribes_and_validates() {
        let hub = LogHub::new();
        let conn = ConnId("c1".into());
        let r = hub.set_log_filter(&conn, json!({"level": "warn", "agentId": "x"}));
        assert!(r.success);
        assert_eq!(r.filters, Some(json!({"level": "warn", "agentId": "x"})));
        assert!(hub.state.lock().unwrap().subscribers[&conn].log_update);
        assert!(!hub.set_log_filter(&conn, json!({"level": "loud"})).success);
        assert!(!hub.set_log_filter(&conn, json!("warn")).success);
    }

    #[test]
    fn log_update_shape() {
        let u = log_update(
            &json!({"time": 0, "level": 40, "msg": "m", "src": "confab_server", "agentId": "a", "k": 1}),
        );
        assert_eq!(u["level"], "warn");
        assert_eq!(u["category"], "confab_server");
        assert_eq!(u["message"], "m");
        assert_eq!(u["agentId"], "a");
        assert_eq!(u["data"], json!({"k": 1}));
        assert_eq!(u["timestamp"], "1970-01-01T00:00:00.000Z");
    }
}
