//! `confab bench summarize DIR`: medians over repetitions, a markdown table, the targets of the
//! benchmark issue checked against it, and the latency plot.
//!
//! Input: the `--output` reports in DIR, named `<server>--<case>--<rep>.json`. Open-loop fanout
//! cases named `rate<N>` make the plot (p50 and p99 against offered load, one line per server).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Args)]
pub struct SummarizeArgs {
    /// Directory with `<server>--<case>--<rep>.json` reports.
    pub dir: PathBuf,
    /// Title of the table.
    #[arg(long, default_value = "confab bench")]
    pub title: String,
}

/// Medians of one case on one server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    pub case: String,
    pub server: String,
    pub reps: usize,
    pub offered_per_s: Option<f64>,
    pub sent_per_s: Option<f64>,
    pub acked_per_s: Option<f64>,
    pub delivered_per_s: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// The worst repetition.
    pub lost: Option<f64>,
    pub duplicates: Option<f64>,
    pub server_cpu_pct: Option<f64>,
    pub loadgen_cpu_pct: Option<f64>,
    pub rss_baseline_mb: Option<f64>,
    pub rss_end_mb: Option<f64>,
    pub kib_per_conn: Option<f64>,
    pub connects_per_s: Option<f64>,
    pub connected: Option<f64>,
    /// Everything else on the machine: PSI "some" CPU and I/O pressure, %.
    pub cpu_pressure_pct: Option<f64>,
    pub io_pressure_pct: Option<f64>,
    pub end_reasons: Vec<String>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn rows(reports: &BTreeMap<(String, String), Vec<Value>>) -> Vec<Row> {
    let mut out = Vec::new();
    for ((case, server), rs) in reports {
        let med = |ptr: &str| median(rs.iter().filter_map(|r| r.pointer(ptr)?.as_f64()).collect());
        let worst = |ptr: &str| {
            rs.iter()
                .filter_map(|r| r.pointer(ptr)?.as_f64())
                .reduce(f64::max)
        };
        out.push(Row {
            case: case.clone(),
            server: server.clone(),
            reps: rs.len(),
            offered_per_s: med("/send/offered_per_s"),
            sent_per_s: med("/send/sent_per_s"),
            acked_per_s: med("/send/acked_per_s"),
            delivered_per_s: med("/send/delivered_per_s"),
            p50_ms: med("/latency/p50_ms"),
            p99_ms: med("/latency/p99_ms"),
            p999_ms: med("/latency/p999_ms"),
            max_ms: med("/latency/max_ms"),
            lost: worst("/send/lost"),
            duplicates: worst("/send/duplicates"),
            server_cpu_pct: med("/server/cpu_pct"),
            loadgen_cpu_pct: med("/loadgen_cpu_pct"),
            rss_baseline_mb: med("/server/rss_baseline_mb"),
            rss_end_mb: med("/server/rss_end_mb"),
            kib_per_conn: med("/idle/kib_per_conn"),
            connects_per_s: med("/connect/connects_per_s"),
            connected: med("/connect/connected"),
            cpu_pressure_pct: med("/machine/cpu_pressure_pct"),
            io_pressure_pct: med("/machine/io_pressure_pct"),
            end_reasons: rs
                .iter()
                .filter_map(|r| r.get("end_reason")?.as_str().map(str::to_owned))
                .collect(),
        });
    }
    out
}

fn f(v: Option<f64>, digits: usize) -> String {
    match v {
        None => "–".into(),
        Some(v) if digits == 0 => {
            // Thousands separated by a thin space for readability.
            let s = format!("{:.0}", v);
            let mut out = String::new();
            for (i, ch) in s.chars().enumerate() {
                if i > 0 && (s.len() - i) % 3 == 0 && ch != '-' {
                    out.push('\u{202f}');
                }
                out.push(ch);
            }
            out
        }
        Some(v) => format!("{v:.digits$}"),
    }
}

pub fn table(rows: &[Row], title: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "## {title}\n");
    let _ = writeln!(
        o,
        "Medians of the repetitions (lost/dup: worst repetition). Latency in ms, send → each receipt (agent: → the agent's reply; connect: handshake). CPU/IO pressure: share of the measured phase in which some task on the machine waited for a CPU / for I/O (Linux PSI) — high values mean the run shared the machine.\n"
    );
    let _ = writeln!(
        o,
        "| case | server | reps | offered/s | sent/s | acked/s | delivered/s | p50 | p99 | p99.9 | max | lost | dup | server CPU % | loadgen CPU % | RSS base MB | RSS end MB | KiB/conn | conns/s | CPU/IO pressure % |"
    );
    let _ = writeln!(
        o,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let offered = match r.offered_per_s {
            Some(v) if v > 0.0 => f(Some(v), 0),
            Some(_) => "closed".into(),
            None => "–".into(),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} |",
            r.case,
            r.server,
            r.reps,
            offered,
            f(r.sent_per_s, 0),
            f(r.acked_per_s, 0),
            f(r.delivered_per_s, 0),
            f(r.p50_ms, 2),
            f(r.p99_ms, 2),
            f(r.p999_ms, 2),
            f(r.max_ms, 1),
            f(r.lost, 0),
            f(r.duplicates, 0),
            f(r.server_cpu_pct, 0),
            f(r.loadgen_cpu_pct, 0),
            f(r.rss_baseline_mb, 1),
            f(r.rss_end_mb, 1),
            f(r.kib_per_conn, 2),
            f(r.connects_per_s, 0),
            f(r.cpu_pressure_pct, 0),
            f(r.io_pressure_pct, 0),
        );
    }
    o
}

/// The targets, checked against the rows (case names as bench/compare.sh uses them).
pub fn targets(rows: &[Row]) -> String {
    let get = |case: &str, server: &str| rows.iter().find(|r| r.case == case && r.server == server);
    let mut o =
        String::from("\n### Targets\n\n| # | target | measured | verdict |\n|---|---|---|---|\n");
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "**met**",
        Some(false) => "**missed**",
        None => "not measured",
    };
    // T1
    let c = get("closed", "confab").and_then(|r| r.delivered_per_s);
    let n = get("closed", "node").and_then(|r| r.delivered_per_s);
    let e = get("closed", "eliza").and_then(|r| r.delivered_per_s);
    let ok = match (c, n, e) {
        (Some(c), Some(n), Some(e)) => Some(c >= 3.0 * n && c >= 50.0 * e),
        (Some(c), Some(n), None) => (c < 3.0 * n).then_some(false),
        _ => None,
    };
    let _ = writeln!(
        o,
        "| T1 | closed-loop delivered/s ≥ 3× node and ≥ 50× ElizaOS | confab {} ; node {} ({}×) ; eliza {} ({}×) | {} |",
        f(c, 0),
        f(n, 0),
        ratio(c, n),
        f(e, 0),
        ratio(c, e),
        verdict(ok)
    );
    // T2
    let c = get("rate4000", "confab").and_then(|r| r.p99_ms);
    let n = get("rate4000", "node").and_then(|r| r.p99_ms);
    let ok = c.map(|c| c <= 5.0 && n.is_none_or(|n| c <= n / 5.0));
    let _ = writeln!(
        o,
        "| T2 | open loop 4 000 msg/s: p99 ≤ 5 ms and ≤ node/5 | confab p99 {} ms ; node p99 {} ms | {} |",
        f(c, 2),
        f(n, 2),
        verdict(ok)
    );
    // T3
    let r = get("idle10k", "confab");
    let kib = r.and_then(|r| r.kib_per_conn);
    let base = r.and_then(|r| r.rss_baseline_mb);
    let ok = kib.zip(base).map(|(k, b)| k <= 8.0 && b <= 30.0);
    let _ = writeln!(
        o,
        "| T3 | idle 10 000: ≤ 8 KiB per connection, baseline ≤ 30 MB | {} KiB/conn, baseline {} MB | {} |",
        f(kib, 2),
        f(base, 1),
        verdict(ok)
    );
    // T4
    let r = get("t4", "confab");
    let ok = r.and_then(|r| Some(r.lost? == 0.0));
    let _ = writeln!(
        o,
        "| T4 | 20 000 connections, 2 000 msg/s: 0 lost, p99 reported | connected {} ; lost {} ; p99 {} ms | {} |",
        f(r.and_then(|r| r.connected), 0),
        f(r.and_then(|r| r.lost), 0),
        f(r.and_then(|r| r.p99_ms), 2),
        verdict(ok)
    );
    // T5
    let c = get("ingest", "confab").and_then(|r| r.acked_per_s);
    let _ = writeln!(
        o,
        "| T5 | ingest, 100 senders: ≥ 30 000 acked msg/s | {} acked/s | {} |",
        f(c, 0),
        verdict(c.map(|c| c >= 30_000.0))
    );
    // T6
    let r = get("agent", "confab");
    let _ = writeln!(
        o,
        "| T6 | agent, 1 000 DM sessions at 500 msg/s: reply p99 ≤ 20 ms | {} | {} |",
        r.map_or("not run".into(), |r| format!(
            "p99 {} ms, lost {}",
            f(r.p99_ms, 2),
            f(r.lost, 0)
        )),
        verdict(r.and_then(|r| Some(r.p99_ms? <= 20.0 && r.lost? == 0.0)))
    );
    o
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}", a / b),
        _ => "–".into(),
    }
}

pub fn run(a: &SummarizeArgs) -> anyhow::Result<()> {
    let mut reports: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for entry in
        std::fs::read_dir(&a.dir).with_context(|| format!("reading {}", a.dir.display()))?
    {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let parts: Vec<&str> = stem.split("--").collect();
        if parts.len() != 3 {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            eprintln!("skipping {name}: not a report");
            continue;
        };
        reports
            .entry((parts[1].to_owned(), parts[0].to_owned()))
            .or_default()
            .push(v);
    }
    let mut rows = rows(&reports);
    // Case order: as compare.sh runs them; servers: confab, node, eliza.
    let case_rank = |c: &str| {
        ["closed", "rate", "ingest", "idle", "t4", "connect", "agent"]
            .iter()
            .position(|p| c.starts_with(p))
            .unwrap_or(99)
    };
    let server_rank = |s: &str| {
        ["confab", "node", "eliza"]
            .iter()
            .position(|p| *p == s)
            .unwrap_or(9)
    };
    let rate_of = |c: &str| {
        c.strip_prefix("rate")
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or(0)
    };
    rows.sort_by_key(|r| {
        (
            case_rank(&r.case),
            rate_of(&r.case),
            r.case.clone(),
            server_rank(&r.server),
        )
    });
    let mut md = table(&rows, &a.title);
    md.push_str(&targets(&rows));
    std::fs::write(a.dir.join("table.md"), &md)?;
    std::fs::write(
        a.dir.join("summary.json"),
        serde_json::to_string_pretty(&rows)?,
    )?;
    let svg = a.dir.join("latency.svg");
    let series = crate::plot::series_from_rows(&rows);
    if !series.is_empty() {
        crate::plot::latency_svg(&series, &svg)?;
    }
    println!("{md}");
    println!(
        "wrote {}, summary.json{}",
        a.dir.join("table.md").display(),
        if series.is_empty() {
            ""
        } else {
            ", latency.svg"
        }
    );
    Ok(())
}
