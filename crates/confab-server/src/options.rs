//! Command-line flags and environment variables for security, limits and operations, flattened
//! into the binary's `serve` arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Args, Clone, Debug)]
pub struct SecurityArgs {
    /// API key for /api and sockets (X-API-KEY header, auth.apiKey, ?apiKey=).
    #[arg(long, env = "ELIZA_SERVER_AUTH_TOKEN", hide_env_values = true)]
    pub api_key: Option<String>,
    /// A second accepted API key (ElizaOS 1.7's socket key name).
    #[arg(long, env = "SERVER_API_KEY", hide_env_values = true)]
    pub server_api_key: Option<String>,
    /// The operator key: administration, logs, metrics, every channel. Keep it on the server
    /// side; it must differ from the API key front ends carry.
    #[arg(long, env = "CONFAB_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Proxies whose X-Forwarded-For / Forwarded are believed: CIDRs or addresses, comma
    /// separated (`true`: loopback and private addresses). Also read from TRUST_PROXY.
    #[arg(long, env = "CONFAB_TRUSTED_PROXIES", value_name = "CIDR,…")]
    pub trusted_proxies: Option<String>,
    /// Shared secret for HS256 JSON Web Tokens.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM public key (RSA, EC or Ed25519) for RS256/ES256/EdDSA tokens.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// JWKS file (keys chosen by the token's `kid`).
    #[arg(long, env = "JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,
    /// Required `iss` claim.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`, seconds.
    #[arg(long, env = "JWT_LEEWAY_SECS", default_value_t = 5)]
    pub jwt_leeway_secs: u64,
    /// Make every channel private: only participants may use it.
    #[arg(long, env = "ENABLE_DATA_ISOLATION", default_value_t = false, action = clap::ArgAction::Set)]
    pub data_isolation: bool,
    /// /api requests per window per IP (0 = no limit).
    #[arg(long, env = "RATE_LIMIT_MAX", default_value_t = 1000)]
    pub rate_limit_max: u32,
    /// The /api rate-limit window, milliseconds.
    #[arg(long, env = "RATE_LIMIT_WINDOW_MS", default_value_t = 900_000)]
    pub rate_limit_window_ms: u64,
    /// Socket messages per minute per entity (0 = no limit).
    #[arg(long, env = "RATE_LIMIT_SOCKET_MESSAGES", default_value_t = 100)]
    pub rate_limit_socket_messages: u32,
    /// Socket joins per minute per connection (0 = no limit).
    #[arg(long, env = "RATE_LIMIT_SOCKET_JOINS", default_value_t = 120)]
    pub rate_limit_socket_joins: u32,
    /// Socket typing indicators per minute per entity (0 = no limit).
    #[arg(long, env = "RATE_LIMIT_SOCKET_TYPING", default_value_t = 120)]
    pub rate_limit_socket_typing: u32,
    /// Media uploads per 15 minutes per IP (ElizaOS: 50; 0 = no limit).
    #[arg(long, env = "RATE_LIMIT_UPLOADS", default_value_t = 50)]
    pub rate_limit_uploads: u32,
    /// File operations (uploads) per 5 minutes per IP (ElizaOS: 100; 0 = no limit).
    #[arg(long, env = "RATE_LIMIT_FILE_OPS", default_value_t = 100)]
    pub rate_limit_file_ops: u32,
    /// Channels one connection may be in at once (0 = no limit).
    #[arg(
        long,
        env = "CONFAB_MAX_CHANNELS_PER_CONNECTION",
        default_value_t = 128
    )]
    pub max_channels_per_connection: usize,
    /// Open sockets per client IP (0 = no limit).
    #[arg(long, env = "CONFAB_MAX_CONNECTIONS_PER_IP", default_value_t = 1000)]
    pub max_connections_per_ip: usize,
    /// Open sockets per entity (0 = no limit).
    #[arg(long, env = "CONFAB_MAX_CONNECTIONS_PER_ENTITY", default_value_t = 100)]
    pub max_connections_per_entity: usize,
    /// Longest message text, characters (0 = only the 1 MB frame limit).
    #[arg(long, env = "CONFAB_MAX_MESSAGE_LENGTH", default_value_t = 1_000_000)]
    pub max_message_length: usize,
    /// Largest message metadata plus attachments, bytes of JSON (0 = no limit).
    #[arg(long, env = "CONFAB_MAX_METADATA_BYTES", default_value_t = 262_144)]
    pub max_metadata_bytes: usize,
    /// Engine.IO ping interval, milliseconds.
    #[arg(long, env = "CONFAB_PING_INTERVAL_MS", default_value_t = 25_000)]
    pub ping_interval_ms: u64,
    /// Engine.IO ping timeout, milliseconds.
    #[arg(long, env = "CONFAB_PING_TIMEOUT_MS", default_value_t = 20_000)]
    pub ping_timeout_ms: u64,
    /// The longest a storage call may take, milliseconds. Past it, or while the database is
    /// down (unreachable, disk full), sends fail with `messageError` and `/health` answers 503.
    #[arg(long, env = "CONFAB_STORE_TIMEOUT_MS", default_value_t = 2000)]
    pub store_timeout_ms: u64,
    /// Longest graceful shutdown, seconds.
    #[arg(long, env = "CONFAB_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,
    /// Log output: text (default) or json.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl SecurityArgs {
    /// Copies these settings into the server configuration.
    pub fn apply(&self, c: &mut Config) -> anyhow::Result<()> {
        let s = &mut c.security;
        s.auth.api_keys = [&self.api_key, &self.server_api_key]
            .into_iter()
            .flatten()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect();
        s.auth.admin_keys = self
            .admin_key
            .iter()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect();
        s.auth.jwt = crate::auth::JwtSettings {
            secret: self.jwt_secret.clone().filter(|k| !k.is_empty()),
            public_key_file: self.jwt_public_key_file.clone(),
            jwks_file: self.jwt_jwks_file.clone(),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            leeway_secs: self.jwt_leeway_secs,
        };
        s.jwt_leeway_secs = self.jwt_leeway_secs;
        s.data_isolation = self.data_isolation;
        s.limits = crate::limits::LimitSettings {
            http_max: self.rate_limit_max,
            http_window: Duration::from_millis(self.rate_limit_window_ms.max(1)),
            socket_messages_per_min: self.rate_limit_socket_messages,
            socket_joins_per_min: self.rate_limit_socket_joins,
            socket_typing_per_min: self.rate_limit_socket_typing,
            trusted_proxies: crate::proxy::TrustedProxies::parse(
                &self
                    .trusted_proxies
                    .clone()
                    .or_else(|| std::env::var("TRUST_PROXY").ok())
                    .unwrap_or_default(),
            )
            .map_err(anyhow::Error::msg)?,
            channels_per_connection: self.max_channels_per_connection,
            connections_per_ip: self.max_connections_per_ip,
            connections_per_entity: self.max_connections_per_entity,
            max_message_chars: self.max_message_length,
            max_metadata_bytes: self.max_metadata_bytes,
            upload_max: self.rate_limit_uploads,
            upload_window: Duration::from_secs(15 * 60),
            file_ops_max: self.rate_limit_file_ops,
            file_ops_window: Duration::from_secs(5 * 60),
        };
        c.ping_interval = Duration::from_millis(self.ping_interval_ms.max(100));
        c.ping_timeout = Duration::from_millis(self.ping_timeout_ms.max(100));
        c.shutdown_timeout = Duration::from_secs(self.shutdown_timeout_secs);
        c.store_timeout = Duration::from_millis(self.store_timeout_ms.max(1));
        Ok(())
    }
}
