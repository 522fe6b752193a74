//! The `confab` binary. `confab` (or `confab serve`) starts the server.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
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
enum Command {
    /// Start the server (the default).
    Serve(ServeArgs),
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
    /// fsync every commit (true) or only survive process crashes (false).
    #[arg(long, env = "CONFAB_FSYNC", default_value_t = true, action = clap::ArgAction::Set)]
    fsync: bool,
    /// Outgoing packets queued per connection before it counts as too slow.
    #[arg(long, env = "CONFAB_SOCKET_BUFFER", default_value_t = 1024)]
    socket_buffer: usize,
    /// Version reported by /health.
    #[arg(long, env = "APP_VERSION")]
    app_version: Option<String>,
}

fn parse_size_arg(s: &str) -> Result<usize, String> {
    parse_size(s).ok_or_else(|| format!("not a size: {s} (try 2mb, 512kb, 1048576)"))
}

impl ServeArgs {
    fn into_config(self) -> Config {
        let mut c = Config {
            host: self.host,
            port: self.port,
            data_dir: self.data_dir,
            cors_origin: self.cors_origin,
            max_http_body: self.max_payload,
            strict_auth: self.strict_auth,
            fsync: self.fsync,
            socket_buffer: self.socket_buffer,
            ..Config::default()
        };
        c.hub.rejoin_grace = Duration::from_secs(self.rejoin_grace_secs);
        c.hub.resume_limit = self.resume_limit.max(1);
        if let Some(v) = self.app_version {
            c.version = v;
        }
        c
    }
}

fn main() -> anyhow::Result<()> {
    // `.env` first, so its values act like environment variables (which still win).
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let logs = LogHub::new();
    tracing_subscriber::registry()
        .with(
            EnvFilter::try_from_env("LOG_LEVEL")
                .or_else(|_| EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_writer(std::io::stderr),
        )
        .with(logs.layer())
        .init();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Bench(args)) => return confab_bench::main(args),
        None => cli.serve,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args.into_config(), logs))
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
    tracing::info!(%addr, data = %running.store_location, "ready");
    running.wait().await
}
