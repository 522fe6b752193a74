//! `confab bench`: a load generator that speaks ElizaOS's Socket.IO protocol, so the same run can
//! load confab, a real ElizaOS server and a plain socket.io server.
//!
//! * [`wire`] — Engine.IO v4 / Socket.IO v5 framing (hand-written, see there why) and the
//!   ElizaOS payloads; [`client`] — one connection: handshake, join.
//! * [`scenario`] — `fanout`, `ingest`, `idle`, `agent`, `connect`.
//! * [`stats`] — latency histograms, lost/duplicate accounting; [`procstat`] — the server's CPU
//!   and RSS from `/proc`; [`report`] — human table and `--json`; [`summary`] + [`plot`] — the
//!   medians table and the latency plot of a `bench/compare.sh` run.
//!
//! Every run refuses non-loopback targets unless `--allow-remote` and is bounded in time
//! (`--max-time`).

pub mod client;
pub mod http;
pub mod plot;
pub mod procstat;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod summary;
pub mod target;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};

pub use report::Report;

/// `confab bench <scenario> [flags]`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// C clients over K channels, S senders per channel; open loop (--rate) or closed loop
    /// (--window un-acked messages per sender). Latency = send → each receipt.
    Fanout(FanoutArgs),
    /// Many senders, each alone in its channel (no fan-out): acknowledged messages per second.
    Ingest(IngestArgs),
    /// Connect, join and hold N connections; the server's RSS per connection.
    Idle(IdleArgs),
    /// N DM sessions with an agent: user message → the agent's reply.
    Agent(AgentArgs),
    /// Connections per second (handshake with auth.entityId), held until the end.
    Connect(ConnectArgs),
    /// Medians table (markdown + JSON) and latency plot (SVG) from a directory of `--output` files
    /// named `<server>--<case>--<rep>.json` (what bench/compare.sh writes).
    Summarize(summary::SummarizeArgs),
}

/// Flags every load scenario takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The server: http://host:port (loopback only unless --allow-remote).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// Allow a non-loopback target.
    #[arg(long)]
    pub allow_remote: bool,
    /// More servers (the other nodes of a cluster): connections go round-robin to `--url` and
    /// these; REST calls go to `--url`.
    #[arg(long, value_delimiter = ',')]
    pub spread: Vec<String>,
    /// The server's pid: its CPU and RSS are sampled from /proc.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Print the report as JSON on stdout (instead of the human table).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Free text stored in the report (e.g. the server's name).
    #[arg(long, default_value = "")]
    pub label: String,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Load generator threads (1 = a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// The message server id sent with joins and messages.
    #[arg(long, default_value = wire::DEFAULT_SERVER_ID)]
    pub server_id: String,
    /// Create channels first with `POST /api/messaging/channels` (as the ElizaOS web client
    /// does); if that fails (plain socket.io servers), random UUIDs are used.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub create_channels: bool,
    /// Handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Give up on one handshake (or join) after this many seconds.
    #[arg(long, default_value_t = 20.0)]
    pub connect_timeout: f64,
    /// Hard bound on the whole run, seconds (0 = derived from the scenario's durations).
    #[arg(long, default_value_t = 0.0)]
    pub max_time: f64,
}

impl Common {
    pub fn target(&self) -> anyhow::Result<target::Target> {
        for url in &self.spread {
            target::Target::parse(url, self.allow_remote)?;
        }
        target::Target::parse(&self.url, self.allow_remote)
    }

    /// The servers connections are spread over: `--url` first, then `--spread`.
    pub fn targets(&self, first: &target::Target) -> Vec<target::Target> {
        std::iter::once(first.clone())
            .chain(
                self.spread
                    .iter()
                    .filter_map(|u| target::Target::parse(u, self.allow_remote).ok()),
            )
            .collect()
    }

    pub fn show_progress(&self) -> bool {
        !self.quiet && !self.json
    }
}

#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// Clients (C); client i joins channel i mod K.
    #[arg(long, short = 'c', default_value_t = 200)]
    pub clients: usize,
    /// Channels (K).
    #[arg(long, short = 'k', default_value_t = 20)]
    pub channels: usize,
    /// Senders per channel (S): the first S members of each channel.
    #[arg(long, default_value_t = 1)]
    pub senders_per_channel: usize,
    /// Offered load, messages/s over all senders (open loop); 0 = closed loop.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Closed loop: un-acknowledged messages per sender.
    #[arg(long, default_value_t = 4)]
    pub window: usize,
    /// Seconds of sending.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds to wait for outstanding receipts after sending stops.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Bytes of message text.
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
}

#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub common: Common,
    /// Senders, each alone in its own channel.
    #[arg(long, default_value_t = 100)]
    pub senders: usize,
    /// Offered load, messages/s over all senders; 0 = closed loop.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Closed loop: un-acknowledged messages per sender.
    #[arg(long, default_value_t = 8)]
    pub window: usize,
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
}

impl IngestArgs {
    pub fn as_fanout(&self) -> FanoutArgs {
        FanoutArgs {
            common: self.common.clone(),
            clients: self.senders,
            channels: self.senders,
            senders_per_channel: 1,
            rate: self.rate,
            window: self.window,
            duration: self.duration,
            drain: self.drain,
            payload: self.payload,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections to open, join and hold.
    #[arg(long, short = 'c', default_value_t = 10_000)]
    pub clients: usize,
    #[arg(long, short = 'k', default_value_t = 100)]
    pub channels: usize,
    /// Seconds to hold them (RSS sampled meanwhile).
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,
}

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub common: Common,
    /// Concurrent DM sessions, each a fresh user entity.
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// User messages per second over all sessions.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds to wait for the last replies.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// The agent's entity id.
    #[arg(long, default_value = "b850bc30-45f8-0041-a00a-83df46d8555d")]
    pub agent_id: uuid::Uuid,
    /// How the DM channel comes to be: `rest` = GET /api/messaging/dm-channel first; `auto` = the
    /// first message creates it (metadata channelType DM, targetUserId).
    #[arg(long, default_value = "rest")]
    pub dm: DmMode,
    #[arg(long, default_value_t = 60)]
    pub payload: usize,
    /// Answer as the agent from inside the load generator (one extra connection that joins every
    /// DM and replies at once): for testing the scenario where no agent runs.
    #[arg(long)]
    pub fake_agent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DmMode {
    Rest,
    Auto,
}

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections to open (held until all are open, then closed).
    #[arg(long, short = 'c', default_value_t = 2000)]
    pub connections: usize,
}

/// Entry point of `confab bench`: builds the runtime and runs the scenario.
pub fn main(args: BenchArgs) -> anyhow::Result<()> {
    if let Scenario::Summarize(s) = &args.scenario {
        return summary::run(s);
    }
    let threads = match &args.scenario {
        Scenario::Fanout(a) => a.common.threads,
        Scenario::Ingest(a) => a.common.threads,
        Scenario::Idle(a) => a.common.threads,
        Scenario::Agent(a) => a.common.threads,
        Scenario::Connect(a) => a.common.threads,
        Scenario::Summarize(_) => 1,
    };
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let report = rt.block_on(run(args))?;
    let common = report_common(&report);
    if common.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.human());
    }
    if let Some(path) = &common.output {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // Connections still open are dropped with the runtime; do not wait for their close.
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}

fn report_common(r: &Report) -> &Common {
    &r.common
}

/// Runs one load scenario, bounded by `--max-time`, and returns its report.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    let (common, budget) = match &args.scenario {
        Scenario::Fanout(a) => (&a.common, a.duration + a.drain + 60.0),
        Scenario::Ingest(a) => (&a.common, a.duration + a.drain + 60.0),
        Scenario::Idle(a) => (&a.common, a.hold + 120.0),
        Scenario::Agent(a) => (&a.common, a.duration + a.drain + 90.0),
        Scenario::Connect(a) => (&a.common, 120.0),
        Scenario::Summarize(_) => anyhow::bail!("summarize is not a load scenario"),
    };
    let max = if common.max_time > 0.0 {
        common.max_time
    } else {
        budget
    };
    let fut = async {
        match &args.scenario {
            Scenario::Fanout(a) => scenario::fanout::run(a, "fanout").await,
            Scenario::Ingest(a) => scenario::fanout::run(&a.as_fanout(), "ingest").await,
            Scenario::Idle(a) => scenario::idle::run(a).await,
            Scenario::Agent(a) => scenario::agent::run(a).await,
            Scenario::Connect(a) => scenario::connect::run(a).await,
            Scenario::Summarize(_) => unreachable!(),
        }
    };
    tokio::time::timeout(Duration::from_secs_f64(max), fut)
        .await
        .map_err(|_| anyhow::anyhow!("run exceeded --max-time {max} s"))?
}
