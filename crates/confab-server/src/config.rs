//! Server settings, already resolved from flags, environment and `.env` by the binary.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// Bind address (`SERVER_HOST`).
    pub host: String,
    /// Port (`SERVER_PORT`); 0 picks a free one.
    pub port: u16,
    /// Where the database lives (`CONFAB_DATA_DIR`).
    pub data_dir: PathBuf,
    /// PostgreSQL instead of the embedded SQLite (`DATABASE_URL` / `POSTGRES_URL`).
    pub database_url: Option<String>,
    /// Redis for fan-out between nodes (`REDIS_URL`); needs a shared PostgreSQL.
    pub redis_url: Option<String>,
    /// Namespace of this cluster's Redis keys and channels.
    pub redis_prefix: String,
    /// `redis_url` is a Redis Cluster (also when it lists several seed URLs).
    pub redis_cluster: bool,
    /// How long a node's members stay present after its last refresh (cluster mode).
    pub presence_ttl: Duration,
    /// How long an agent run's lease lasts without renewal (cluster mode).
    pub run_lease: Duration,
    /// This node's name in logs and health output.
    pub node_id: String,
    /// The PostgreSQL schema to use (created if missing); `None`: the default search path.
    pub database_schema: Option<String>,
    /// Allowed CORS origin (`CORS_ORIGIN`); `None` reflects the request's origin.
    pub cors_origin: Option<String>,
    /// Largest JSON body accepted over HTTP (`EXPRESS_MAX_PAYLOAD`).
    pub max_http_body: usize,
    /// Largest Socket.IO packet; a larger one closes the connection.
    pub max_socket_payload: u64,
    /// Packets queued per connection before it counts as too slow.
    pub socket_buffer: usize,
    /// Payload bytes queued per connection before it counts as too slow (`socket::slow`).
    pub socket_buffer_bytes: usize,
    /// `SO_SNDBUF` of accepted connections: what the kernel may hold unsent for one (Linux
    /// doubles it); `None` leaves the kernel's autotuning (up to `tcp_wmem`, 4 MB by default).
    pub socket_send_buffer: Option<usize>,
    /// Bytes a websocket reads at a time, and the read buffer each one keeps while idle; a
    /// larger frame still arrives whole (the buffer grows to it, up to `max_socket_payload`).
    pub ws_read_buffer: usize,
    /// Inbound events a connection may have waiting for processing.
    pub inbound_queue: usize,
    /// Refuse connections whose handshake has no valid `auth.entityId`.
    pub strict_auth: bool,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub connect_timeout: Duration,
    /// fsync every commit (durable across power loss) rather than only across process death.
    pub fsync: bool,
    /// The longest a storage call may take; past it (or while the database is down) sends
    /// fail with `messageError` (`CONFAB_STORE_TIMEOUT_MS`).
    pub store_timeout: Duration,
    pub hub: confab_hub::HubConfig,
    /// Agents, their brains, sessions.
    pub agents: confab_agents::AgentsConfig,
    /// Reported by `/health` (`APP_VERSION`).
    pub version: String,
    /// Authentication, private channels, limits (see `options::SecurityArgs`).
    pub security: crate::security::SecuritySettings,
    /// Longest graceful shutdown.
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "0.0.0.0".into(),
            port: 3000,
            data_dir: PathBuf::from(".confab"),
            database_url: None,
            database_schema: None,
            redis_url: None,
            redis_prefix: "confab".into(),
            redis_cluster: false,
            presence_ttl: Duration::from_secs(15),
            run_lease: Duration::from_secs(15),
            node_id: "confab".into(),
            cors_origin: None,
            max_http_body: 2 * 1024 * 1024,
            max_socket_payload: 1_000_000,
            socket_buffer: 1024,
            socket_buffer_bytes: 2 * 1024 * 1024,
            socket_send_buffer: Some(64 * 1024),
            ws_read_buffer: 1024,
            inbound_queue: 256,
            strict_auth: false,
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(10),
            fsync: true,
            store_timeout: Duration::from_secs(2),
            hub: confab_hub::HubConfig::default(),
            agents: confab_agents::AgentsConfig::default(),
            version: env!("CARGO_PKG_VERSION").into(),
            security: Default::default(),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Parses sizes the way Express's `bytes` does: `2mb`, `512kb`, `100b`, `1048576`.
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (s[..i].trim(), s[i..].trim()),
        None => (s.as_str(), "b"),
    };
    let n: f64 = num.parse().ok()?;
    let mult = match unit {
        "b" => 1.0,
        "kb" | "k" => 1024.0,
        "mb" | "m" => 1024.0 * 1024.0,
        "gb" | "g" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    (n >= 0.0).then_some((n * mult) as usize)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("2mb"), Some(2 * 1024 * 1024));
        assert_eq!(super::parse_size("100kb"), Some(102400));
        assert_eq!(super::parse_size("1000"), Some(1000));
        assert_eq!(super::parse_size("lots"), None);
    }
}
