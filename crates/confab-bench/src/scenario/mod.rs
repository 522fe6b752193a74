//! The load scenarios, and what they share: channel creation, connecting and joining many
//! clients, progress display.

pub mod agent;
pub mod connect;
pub mod fanout;
pub mod idle;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use uuid::Uuid;

use crate::Common;
use crate::client::{self, Conn};
use crate::procstat::{self, ServerStats};
use crate::stats::{self, Shared};
use crate::target::Target;

/// The channel ids for `k` channels: created over REST when asked (named `bench-<run>-<i>`, the
/// given member as participant), else random UUIDs. Falls back to random UUIDs for all if the
/// server has no such endpoint (plain socket.io).
pub async fn channels(
    common: &Common,
    target: &Target,
    run: u32,
    first_members: &[Uuid],
) -> Vec<String> {
    let mut out = Vec::with_capacity(first_members.len());
    let mut rest = common.create_channels;
    for (i, member) in first_members.iter().enumerate() {
        let mut id = None;
        if rest {
            let body = json!({
                "name": format!("bench-{run}-{i}"),
                "message_server_id": common.server_id,
                "participantCentralUserIds": [member],
                "metadata": {"bench": run},
            });
            match crate::http::request(target, "POST", "/api/messaging/channels", Some(&body)).await
            {
                Ok((s, v)) if (200..300).contains(&s) => {
                    id = v
                        .pointer("/data/id")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned);
                }
                Ok((s, _)) => {
                    if !common.quiet {
                        eprintln!(
                            "channel creation over REST answered HTTP {s}; using random channel ids"
                        );
                    }
                    rest = false;
                }
                Err(e) => {
                    if !common.quiet {
                        eprintln!("channel creation over REST failed ({e}); using random ids");
                    }
                    rest = false;
                }
            }
        }
        out.push(id.unwrap_or_else(|| Uuid::new_v4().to_string()));
    }
    out
}

/// Connects (and joins, when `channel_of` gives a channel) every entity, `concurrency` at a
/// time. Returns the connections by index (None = failed) and how long connecting took.
pub async fn connect_all(
    common: &Common,
    target: &Target,
    entities: &[Uuid],
    channel_of: impl Fn(usize) -> Option<String>,
    shared: &Shared,
    handshake: Option<&std::sync::Mutex<hdrhistogram::Histogram<u64>>>,
) -> (Vec<Option<Conn>>, Duration) {
    let timeout = Duration::from_secs_f64(common.connect_timeout);
    let bar = bar(common, entities.len() as u64, "connecting");
    let t0 = Instant::now();
    let targets = common.targets(target);
    let targets = &targets;
    let jobs = entities.iter().enumerate().map(|(i, &e)| {
        let channel = channel_of(i);
        let bar = bar.clone();
        async move {
            let t = Instant::now();
            let r = async {
                let mut c = client::connect(&targets[i % targets.len()], e, timeout).await?;
                if let Some(h) = handshake {
                    let _ = h
                        .lock()
                        .unwrap()
                        .record((t.elapsed().as_micros() as u64).max(1));
                }
                if let Some(ch) = channel {
                    tokio::time::timeout(timeout, c.join(&ch, &common.server_id))
                        .await
                        .map_err(|_| anyhow::anyhow!("join timed out"))??;
                }
                anyhow::Ok(c)
            }
            .await;
            bar.inc(1);
            (i, r)
        }
    });
    // Connections wait in a parking task that answers the server's pings: connecting tens of
    // thousands can outlast socket.io's ping interval + timeout (45 s), after which the server
    // would drop a connection nobody reads.
    let mut parked: Vec<Option<Parked>> = (0..entities.len()).map(|_| None).collect();
    let mut s = futures::stream::iter(jobs).buffer_unordered(common.connect_concurrency.max(1));
    while let Some((i, r)) = s.next().await {
        match r {
            Ok(c) => parked[i] = Some(Parked::new(c)),
            Err(e) => shared.note_error(format!("connect/join: {e:#}")),
        }
    }
    drop(s);
    let took = t0.elapsed();
    let mut out: Vec<Option<Conn>> = Vec::with_capacity(parked.len());
    for p in parked {
        let c = match p {
            Some(p) => p.take().await,
            None => None,
        };
        out.push(c);
    }
    let lost = out.iter().filter(|c| c.is_none()).count();
    if lost > 0 {
        shared
            .disconnects
            .fetch_add(lost as u64, std::sync::atomic::Ordering::Relaxed);
    }
    bar.finish_and_clear();
    (out, took)
}

/// A connected client waiting for its scenario task, answering pings meanwhile.
struct Parked {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Option<Conn>>,
}

impl Parked {
    fn new(conn: Conn) -> Parked {
        let (stop, rx) = tokio::sync::oneshot::channel();
        Parked {
            stop,
            task: tokio::spawn(park(conn, rx)),
        }
    }

    /// The connection back, or None if it closed while parked.
    async fn take(self) -> Option<Conn> {
        let _ = self.stop.send(());
        self.task.await.ok().flatten()
    }
}

async fn park(mut conn: Conn, mut stop: tokio::sync::oneshot::Receiver<()>) -> Option<Conn> {
    use futures::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return Some(conn),
            f = conn.ws.next() => match f {
                Some(Ok(Message::Text(t))) => match crate::wire::parse(&t) {
                    crate::wire::Frame::Ping => conn.ws.send(Message::text("3")).await.ok()?,
                    crate::wire::Frame::Close | crate::wire::Frame::Disconnect => return None,
                    _ => {}
                },
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    }
}

pub fn bar(common: &Common, len: u64, what: &str) -> ProgressBar {
    if !common.show_progress() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    b.set_prefix(what.to_owned());
    b
}

/// Samples the server (if `--pid`) and this process.
pub struct Sampler {
    pub pid: Option<u32>,
    pub stats: ServerStats,
    start: Option<procstat::Sample>,
    self_start: Option<procstat::Sample>,
    pressure_start: Option<procstat::Pressure>,
    /// Machine load during the measured phase (set by `end`).
    pub machine: Option<procstat::MachineStats>,
}

impl Sampler {
    pub fn new(pid: Option<u32>) -> Self {
        let mut stats = ServerStats::new(pid.unwrap_or(0));
        if let Some(s) = pid.and_then(procstat::sample) {
            stats.rss_baseline_mb = Some(procstat::mb(s.rss_bytes));
        }
        Sampler {
            pid,
            stats,
            start: None,
            self_start: None,
            pressure_start: None,
            machine: None,
        }
    }

    pub fn now(&self) -> Option<procstat::Sample> {
        self.pid.and_then(procstat::sample)
    }

    pub fn after_join(&mut self) {
        if let Some(s) = self.now() {
            self.stats.rss_after_join_mb = Some(procstat::mb(s.rss_bytes));
        }
    }

    /// Start of the measured phase.
    pub fn begin(&mut self) {
        self.start = self.now();
        self.self_start = procstat::sample(0);
        self.pressure_start = Some(procstat::pressure());
    }

    /// End of the measured phase: server CPU %, RSS; returns the load generator's CPU %.
    pub fn end(&mut self) -> Option<f64> {
        if let (Some(a), Some(b)) = (self.start, self.now()) {
            self.stats.cpu_pct = Some((procstat::cpu_pct(&a, &b) * 10.0).round() / 10.0);
            self.stats.rss_end_mb = Some(procstat::mb(b.rss_bytes));
            self.stats.rss_peak_mb = Some(procstat::mb(b.hwm_bytes));
        }
        if let Some(p) = &self.pressure_start {
            self.machine = Some(procstat::MachineStats::between(p, &procstat::pressure()));
        }
        let me = procstat::sample(0);
        match (self.self_start, me) {
            (Some(a), Some(b)) => Some((procstat::cpu_pct(&a, &b) * 10.0).round() / 10.0),
            _ => None,
        }
    }

    pub fn server(&self) -> Option<ServerStats> {
        self.pid.map(|_| self.stats.clone())
    }
}

pub fn error_samples(shared: &Shared) -> Vec<String> {
    shared.error_samples.lock().unwrap().clone()
}

pub fn latency_of(h: &std::sync::Mutex<hdrhistogram::Histogram<u64>>) -> Option<stats::Latency> {
    let h = h.lock().unwrap();
    (!h.is_empty()).then(|| stats::Latency::of(&h))
}

pub type SharedRef = Arc<Shared>;
