//! The `confab` binary. `confab` (or `confab serve`) starts the server.

use std::path::PathBuf;
use std::time::Duration;

mod chat;

use clap::{Args, Parser, Subcommand};
use confab_agents::breaker::BreakerConfig;
use confab_agents::{Character, ModelDefaults, SessionConfig};
use confab_server::{Config, LogHub, config::parse_size};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Parser)]
#[command(
    name = "confab",
    version,
    about = "Real-time messaging server for AI agents, wire-compatible with ElizaOS"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
enum Command {
    /// Start the server (the default).
    Serve(ServeArgs),
    /// Chat in the terminal with a running server's agents and channels.
    Chat(chat::ChatArgs),
    /// Load generator: fanout, ingest, idle, agent, connect (ElizaOS protocol); see BENCHMARKS.md.
    Bench(confab_bench::BenchArgs),
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to bind.
    #[arg(long, env = "SERVER_HOST", default_value = "0.0.0.0")]
    host: String,
    /// Port for HTTP and Socket.IO; 0 picks a free one.
    #[arg(long, short, env = "SERVER_PORT", default_value_t = 3000)]
    port: u16,
    /// Where the database lives.
    #[arg(long, env = "CONFAB_DATA_DIR", default_value = ".confab")]
    data_dir: PathBuf,
    /// PostgreSQL URL; without it the embedded SQLite in the data directory is used.
    /// `POSTGRES_URL` (ElizaOS's name) works too.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Redis URL: join the other nodes that use the same Redis and PostgreSQL into a cluster.
    /// For a Redis Cluster, several seed node URLs separated by commas (or one with
    /// `--redis-cluster`).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// The Redis URL is a Redis Cluster node (implied by several comma-separated URLs).
    #[arg(long, env = "CONFAB_REDIS_CLUSTER", default_value_t = false)]
    redis_cluster: bool,
    /// Namespace of the cluster's Redis keys and channels (several clusters can share one Redis).
    #[arg(long, env = "CONFAB_REDIS_PREFIX", default_value = "confab")]
    redis_prefix: String,
    /// Cluster mode: milliseconds a node's members stay present after its last refresh (it
    /// refreshes every third of that); a node killed outright loses its members within this.
    #[arg(long, env = "CONFAB_PRESENCE_TTL_MS", default_value_t = 15_000)]
    presence_ttl_ms: u64,
    /// Cluster mode: milliseconds an agent run's lease lasts without renewal (renewed every
    /// third of that); a run whose node died is taken over by another node within this.
    #[arg(long, env = "CONFAB_RUN_LEASE_MS", default_value_t = 15_000)]
    run_lease_ms: u64,
    /// This node's name in logs and health output; must differ between nodes (default: random).
    #[arg(long, env = "CONFAB_NODE_ID")]
    node_id: Option<String>,
    /// PostgreSQL schema for confab's tables (created if missing), so one database can hold
    /// several installations.
    #[arg(long, env = "CONFAB_PG_SCHEMA")]
    pg_schema: Option<String>,
    /// Allowed CORS origin(s), comma-separated; default: the request's origin.
    #[arg(long, env = "CORS_ORIGIN")]
    cors_origin: Option<String>,
    /// Largest JSON body over HTTP (Express syntax: 2mb, 512kb).
    #[arg(long, env = "EXPRESS_MAX_PAYLOAD", default_value = "2mb", value_parser = parse_size_arg)]
    max_payload: usize,
    /// Refuse Socket.IO connections without a UUID `auth.entityId` (ElizaOS 1.6+ behaviour).
    #[arg(long, env = "CONFAB_STRICT_AUTH", default_value_t = false)]
    strict_auth: bool,
    /// Seconds a disconnected client's channels are kept for an automatic rejoin.
    #[arg(long, env = "CONFAB_REJOIN_GRACE_SECS", default_value_t = 120)]
    rejoin_grace_secs: u64,
    /// The most missed messages replayed to one resuming join.
    #[arg(long, env = "CONFAB_RESUME_LIMIT", default_value_t = 500)]
    resume_limit: u32,
    /// Hours a sender's message id makes a resend of it a repeat (not stored or broadcast
    /// again); 0 turns exactly-once publish off.
    #[arg(long, env = "CONFAB_DEDUP_WINDOW_HOURS", default_value_t = 24)]
    dedup_window_hours: u64,
    /// fsync every commit (true) or only survive process crashes (false).
    #[arg(long, env = "CONFAB_FSYNC", default_value_t = true, action = clap::ArgAction::Set)]
    fsync: bool,
    /// Outgoing packets queued per connection before it counts as too slow.
    #[arg(long, env = "CONFAB_SOCKET_BUFFER", default_value_t = 1024)]
    socket_buffer: usize,
    /// Outgoing payload bytes queued per connection before it counts as too slow.
    #[arg(long, env = "CONFAB_SOCKET_BUFFER_BYTES", default_value = "2mb", value_parser = parse_size_arg)]
    socket_buffer_bytes: usize,
    /// SO_SNDBUF of accepted connections: unsent bytes the kernel may hold for one (Linux
    /// doubles it); 0 keeps the kernel's autotuning.
    #[arg(long, env = "CONFAB_SOCKET_SEND_BUFFER", default_value = "64kb", value_parser = parse_size_arg)]
    socket_send_buffer: usize,
    /// Bytes each websocket reads at a time, and the buffer it keeps while idle (larger
    /// frames still arrive whole).
    #[arg(long, env = "CONFAB_WS_READ_BUFFER", default_value = "1kb", value_parser = parse_size_arg)]
    ws_read_buffer: usize,
    /// Version reported by /health.
    #[arg(long, env = "APP_VERSION")]
    app_version: Option<String>,

    /// A character file (ElizaOS character JSON) to run as an agent; repeatable.
    #[arg(long = "character", env = "CONFAB_CHARACTERS", value_delimiter = ',')]
    characters: Vec<PathBuf>,
    /// A directory whose *.json character files are run as agents (if it exists).
    #[arg(long, env = "CONFAB_CHARACTERS_DIR", default_value = "characters")]
    characters_dir: PathBuf,
    /// Makes the ELIZA agent's choices reproducible.
    #[arg(long, env = "CONFAB_ELIZA_SEED")]
    eliza_seed: Option<u64>,
    /// API key for an OpenAI-compatible endpoint; with it (or a base URL) agents use the model.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    openai_api_key: Option<String>,
    /// Base URL of an OpenAI-compatible API (Ollama: http://localhost:11434/v1).
    #[arg(long, env = "OPENAI_BASE_URL")]
    openai_base_url: Option<String>,
    /// Model name for chat completions.
    #[arg(long, env = "OPENAI_MODEL")]
    openai_model: Option<String>,
    /// Bound on one model call, in milliseconds.
    #[arg(long, env = "CONFAB_MODEL_TIMEOUT_MS", default_value_t = 60_000)]
    model_timeout_ms: u64,
    /// Retries of a failed model call (with exponential backoff) before giving up.
    #[arg(long, env = "CONFAB_MODEL_RETRIES", default_value_t = 2)]
    model_retries: u32,
    /// First retry delay in milliseconds; doubles each retry.
    #[arg(long, env = "CONFAB_MODEL_BACKOFF_MS", default_value_t = 500)]
    model_backoff_ms: u64,
    /// Models shown attached images, comma-separated name prefixes (`*`: every model; empty:
    /// none). Default: the known vision models (gpt-4o, gpt-4.1, gpt-5, claude-3, gemini, llava, …).
    #[arg(long, env = "OPENAI_VISION_MODELS")]
    vision_models: Option<String>,
    /// Consecutive model failures that open the circuit breaker.
    #[arg(long, env = "CONFAB_BREAKER_FAILURES", default_value_t = 5)]
    breaker_failures: u32,
    /// Milliseconds an open breaker waits before letting a trial call through.
    #[arg(long, env = "CONFAB_BREAKER_RESET_MS", default_value_t = 60_000)]
    breaker_reset_ms: u64,
    /// Longest chain of agent-only turns before agents stop answering each other.
    #[arg(long, env = "CONFAB_MAX_AGENT_TURNS", default_value_t = 3)]
    max_agent_turns: u32,
    /// Authentication, private channels, limits, logging, shutdown.
    #[command(flatten)]
    security: confab_server::options::SecurityArgs,
}

fn parse_size_arg(s: &str) -> Result<usize, String> {
    parse_size(s).ok_or_else(|| format!("not a size: {s} (try 2mb, 512kb, 1048576)"))
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut c = Config {
            host: self.host,
            port: self.port,
            data_dir: self.data_dir,
            database_url: self
                .database_url
                .or_else(|| std::env::var("POSTGRES_URL").ok())
                .filter(|u| !u.trim().is_empty()),
            database_schema: self.pg_schema,
            redis_url: self.redis_url.filter(|u| !u.trim().is_empty()),
            redis_prefix: self.redis_prefix,
            redis_cluster: self.redis_cluster,
            presence_ttl: Duration::from_millis(self.presence_ttl_ms),
            run_lease: Duration::from_millis(self.run_lease_ms),
            node_id: self.node_id.unwrap_or_else(|| {
                format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
            }),
            cors_origin: self.cors_origin,
            max_http_body: self.max_payload,
            strict_auth: self.strict_auth,
            fsync: self.fsync,
            socket_buffer: self.socket_buffer,
            socket_buffer_bytes: self.socket_buffer_bytes.max(1),
            socket_send_buffer: Some(self.socket_send_buffer).filter(|&n| n > 0),
            ws_read_buffer: self.ws_read_buffer,
            ..Config::default()
        };
        c.hub.rejoin_grace = Duration::from_secs(self.rejoin_grace_secs);
        c.hub.resume_limit = self.resume_limit.max(1);
        // Half the connection's outgoing queue: room is left for live traffic meanwhile.
        c.hub.resume_bytes = c.socket_buffer_bytes / 2;
        c.hub.dedup_window = Duration::from_secs(self.dedup_window_hours.saturating_mul(3600));
        if let Some(v) = self.app_version {
            c.version = v;
        }
        let a = &mut c.agents;
        for path in &self.characters {
            a.characters.push(Character::load(path)?);
        }
        a.characters
            .extend(Character::load_dir(&self.characters_dir)?);
        a.eliza_seed = self.eliza_seed;
        a.model = ModelDefaults {
            api_key: self.openai_api_key.filter(|k| !k.trim().is_empty()),
            base_url: self.openai_base_url.filter(|u| !u.trim().is_empty()),
            model: self
                .openai_model
                .or_else(|| std::env::var("OPENAI_LARGE_MODEL").ok())
                .filter(|m| !m.trim().is_empty()),
            timeout: Duration::from_millis(self.model_timeout_ms.max(1)),
            retries: self.model_retries,
            backoff: Duration::from_millis(self.model_backoff_ms),
            max_tokens: None,
            vision_models: match &self.vision_models {
                Some(list) => list
                    .split(',')
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect(),
                None => ModelDefaults::default().vision_models,
            },
        };
        a.breaker = BreakerConfig {
            failures: self.breaker_failures.max(1),
            reset: Duration::from_millis(self.breaker_reset_ms),
        };
        a.runtime.max_agent_turns = self.max_agent_turns;
        a.sessions = SessionConfig::from_vars(|k| std::env::var(k).ok());
        self.security.apply(&mut c)?;
        Ok(c)
    }
}

/// The usual timestamp, followed by the node's name in a cluster.
struct NodeTime(Option<String>);

impl tracing_subscriber::fmt::time::FormatTime for NodeTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        tracing_subscriber::fmt::time::SystemTime.format_time(w)?;
        match &self.0 {
            Some(node) => write!(w, " [{node}]"),
            None => Ok(()),
        }
    }
}

fn main() -> anyhow::Result<()> {
    // `.env` first, so its values act like environment variables (which still win).
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    if let Some(Command::Bench(args)) = cli.command {
        return confab_bench::main(args);
    }
    if let Some(Command::Chat(args)) = cli.command {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(chat::run(args));
    }
    let mut args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Chat(_) | Command::Bench(_)) => unreachable!("handled above"),
        None => cli.serve,
    };
    // In a cluster every log line names its node.
    let node = args
        .redis_url
        .as_ref()
        .filter(|u| !u.trim().is_empty())
        .map(|_| {
            args.node_id
                .get_or_insert_with(|| {
                    format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
                })
                .clone()
        });
    let logs = LogHub::new();
    if let Some(node) = &node {
        logs.set_node(node);
    }
    let json = args.security.log_format == confab_server::options::LogFormat::Json;
    tracing_subscriber::registry()
        .with(
            EnvFilter::try_from_env("LOG_LEVEL")
                .or_else(|_| EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with((!json).then(|| {
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_timer(NodeTime(node.clone()))
                .with_writer(std::io::stderr)
        }))
        .with(json.then(|| {
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
        }))
        .with(logs.layer())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args.into_config()?, logs))
}

async fn serve(config: Config, logs: LogHub) -> anyhow::Result<()> {
    let running = confab_server::start(config, logs).await?;
    let addr = running.addr;
    let shown = if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{} (all interfaces)", addr.port())
    } else {
        format!("http://{addr}")
    };
    // Plain lines on stdout, for people and for scripts waiting on startup.
    println!("confab listening on {shown} (Socket.IO at /socket.io/)");
    println!("confab data in {}", running.store_location);
    if let Some(cluster) = &running.cluster {
        println!("confab cluster node {}", cluster.node_id());
    }
    for agent in running.agents.agents.list() {
        println!(
            "confab agent {} ({}) {} {}",
            agent.name(),
            agent.brain.describe(),
            agent.id,
            if agent.enabled { "started" } else { "stopped" }
        );
    }
    tracing::info!(%addr, data = %running.store_location, "ready");
    running.wait().await
}
