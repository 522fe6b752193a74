//! Log streaming (compat spec §1.7): a `tracing` layer captures confab's own log events; sockets
//! that sent `subscribe_logs` receive them as `log_stream {type:"log_entry", payload}`, filtered
//! by `agentName` and minimum `level` like ElizaOS. The most recent entries are also kept for
//! `GET /api/server/logs`.

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

#[derive(Debug, Clone, Default)]
struct Filters {
    agent_name: Option<String>,
    level: Option<Value>,
}

impl Filters {
    fn min_level(&self) -> i64 {
        match &self.level {
            None => 0,
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(Value::String(s)) if s == "all" => 0,
            Some(Value::String(s)) => level_number(s),
            Some(_) => 0,
        }
    }

    fn passes(&self, entry: &Value) -> bool {
        let level = entry.get("level").and_then(Value::as_i64).unwrap_or(30);
        if level < self.min_level() {
            return false;
        }
        match self.agent_name.as_deref() {
            None | Some("all") => true,
            Some(name) => entry.get("agentName").and_then(Value::as_str) == Some(name),
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(a) = &self.agent_name {
            m.insert("agentName".into(), json!(a));
        }
        if let Some(l) = &self.level {
            m.insert("level".into(), l.clone());
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
                let targets: Vec<(Sid, SocketIo)> = {
                    let s = state.lock().unwrap();
                    let Some(io) = &s.io else { continue };
                    s.subscribers
                        .iter()
                        .filter(|(_, f)| f.passes(&entry))
                        .filter_map(|(c, _)| Sid::from_str(&c.0).ok().map(|sid| (sid, io.clone())))
                        .collect()
                };
                if targets.is_empty() {
                    continue;
                }
                let event = ServerEvent::LogStream(LogStream {
                    kind: "log_entry",
                    payload: entry,
                });
                for (sid, io) in targets {
                    if let Some(socket) = io.of("/").and_then(|ns| ns.get_socket(sid)) {
                        let _ = socket.emit(event.name(), &event);
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
        };
        assert!(f.passes(&json!({"level": 50, "agentName": "Eliza"})));
        assert!(!f.passes(&json!({"level": 30, "agentName": "Eliza"})));
        assert!(!f.passes(&json!({"level": 50, "agentName": "Other"})));
        let nothing = Filters {
            agent_name: None,
            level: Some(json!("nonsense")),
        };
        assert!(!nothing.passes(&json!({"level": 60})));
        assert!(Filters::default().passes(&json!({})));
    }
}
