//! What a run reports: a human table, or JSON (`--json`, `--output`).

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::Common;
use crate::procstat::ServerStats;
use crate::stats::Latency;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub label: String,
    pub target: String,
    /// The scenario's parameters.
    pub params: Value,
    /// `complete`, `drain-timeout`, …
    pub end_reason: String,
    pub connect: ConnectStats,
    pub send: Option<SendStats>,
    /// Send → each receipt (fanout, ingest) or user message → agent reply (agent), or handshake
    /// time (connect).
    pub latency: Option<Latency>,
    /// Send → `messageAck`.
    pub ack_latency: Option<Latency>,
    pub idle: Option<IdleStats>,
    pub server: Option<ServerStats>,
    /// The load generator's own CPU during the measured phase, % of one core.
    pub loadgen_cpu_pct: Option<f64>,
    /// Load from everything else on the machine during the measured phase.
    pub machine: Option<crate::procstat::MachineStats>,
    pub error_samples: Vec<String>,
    #[serde(skip)]
    pub common: Common,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectStats {
    pub clients: usize,
    pub connected: usize,
    pub joined: usize,
    pub connect_s: f64,
    pub join_s: f64,
    pub connects_per_s: f64,
    pub disconnects: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SendStats {
    /// Offered load, msg/s (0 = closed loop).
    pub offered_per_s: f64,
    /// First send → last send.
    pub send_s: f64,
    pub sent: u64,
    pub sent_per_s: f64,
    pub acked: u64,
    pub acked_per_s: f64,
    /// Receipts expected: every message once per joined member of its channel, sender included.
    pub expected: u64,
    /// Distinct receipts.
    pub delivered: u64,
    /// Receipts per second, first send → last receipt.
    pub delivered_per_s: f64,
    pub lost: u64,
    pub duplicates: u64,
    /// `messageError`s.
    pub errors: u64,
    /// Broadcasts that were not this run's messages.
    pub other: u64,
    /// agent: user messages without a reply at the end.
    pub unanswered: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct IdleStats {
    pub held_s: f64,
    pub still_connected: usize,
    /// RSS growth over the pre-connect baseline per connection, at the end of the hold.
    pub kib_per_conn: f64,
    pub mb_per_1000: f64,
    /// Same, at the lowest sample during the hold.
    pub kib_per_conn_min: f64,
}

impl Report {
    pub fn new(scenario: &str, common: &Common, params: Value) -> Report {
        Report {
            scenario: scenario.into(),
            label: common.label.clone(),
            target: common.url.clone(),
            params,
            end_reason: String::new(),
            connect: ConnectStats::default(),
            send: None,
            latency: None,
            ack_latency: None,
            idle: None,
            server: None,
            loadgen_cpu_pct: None,
            machine: None,
            error_samples: Vec::new(),
            common: common.clone(),
        }
    }

    /// A few aligned lines for people.
    pub fn human(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{} {} → {} ({})",
            self.scenario,
            if self.label.is_empty() {
                ""
            } else {
                &self.label
            },
            self.target,
            self.end_reason
        );
        let c = &self.connect;
        let _ = writeln!(
            o,
            "  connected {}/{} in {:.2} s ({:.0}/s), joined {} in {:.2} s, disconnects {}",
            c.connected,
            c.clients,
            c.connect_s,
            c.connects_per_s,
            c.joined,
            c.join_s,
            c.disconnects
        );
        if let Some(s) = &self.send {
            let offered = if s.offered_per_s > 0.0 {
                format!("open loop {:.0} msg/s", s.offered_per_s)
            } else {
                "closed loop".into()
            };
            let _ = writeln!(
                o,
                "  {offered}: sent {} ({:.0}/s) acked {} ({:.0}/s) over {:.2} s",
                s.sent, s.sent_per_s, s.acked, s.acked_per_s, s.send_s
            );
            let _ = writeln!(
                o,
                "  delivered {}/{} ({:.0}/s)  lost {}  dup {}  errors {}  other {}{}",
                s.delivered,
                s.expected,
                s.delivered_per_s,
                s.lost,
                s.duplicates,
                s.errors,
                s.other,
                s.unanswered
                    .map(|u| format!("  unanswered {u}"))
                    .unwrap_or_default()
            );
        }
        for (name, l) in [
            ("latency", &self.latency),
            ("ack latency", &self.ack_latency),
        ] {
            if let Some(l) = l {
                let _ = writeln!(
                    o,
                    "  {name} ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (n={})",
                    l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.samples
                );
            }
        }
        if let Some(i) = &self.idle {
            let _ = writeln!(
                o,
                "  idle: {} held {:.0} s: {:.2} KiB per connection ({:.1} MB per 1000; lowest {:.2} KiB)",
                i.still_connected, i.held_s, i.kib_per_conn, i.mb_per_1000, i.kib_per_conn_min
            );
        }
        if let Some(s) = &self.server {
            let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
            let _ = writeln!(
                o,
                "  server pid {}: cpu {}%  RSS MB baseline {} after-join {} end {} peak {}",
                s.pid,
                f(s.cpu_pct),
                f(s.rss_baseline_mb),
                f(s.rss_after_join_mb),
                f(s.rss_end_mb),
                f(s.rss_peak_mb)
            );
        }
        if let Some(l) = self.loadgen_cpu_pct {
            let _ = writeln!(o, "  load generator cpu {l:.1}%");
        }
        if let Some(m) = &self.machine {
            let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
            let _ = writeln!(
                o,
                "  machine: load {}  cpu pressure {}%  io pressure {}% (PSI some, measured phase)",
                f(m.loadavg_1m),
                f(m.cpu_pressure_pct),
                f(m.io_pressure_pct)
            );
        }
        for e in &self.error_samples {
            let _ = writeln!(o, "  error: {e}");
        }
        o.trim_end().to_owned()
    }
}
