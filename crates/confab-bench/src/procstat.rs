//! CPU time and memory of a process, from `/proc/<pid>/stat` and `/proc/<pid>/status`.

use std::time::Instant;

use serde::Serialize;

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux).
const CLK_TCK: f64 = 100.0;

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    /// utime + stime, seconds.
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
}

/// `pid` 0 means this process.
pub fn sample(pid: u32) -> Option<Sample> {
    let dir = if pid == 0 {
        "/proc/self".to_owned()
    } else {
        format!("/proc/{pid}")
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            * 1024
    };
    Some(Sample {
        at: Instant::now(),
        cpu_s: (utime + stime) / CLK_TCK,
        rss_bytes: kb("VmRSS:"),
        hwm_bytes: kb("VmHWM:"),
    })
}

/// CPU use between two samples, in percent of one core.
pub fn cpu_pct(a: &Sample, b: &Sample) -> f64 {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    (b.cpu_s - a.cpu_s) / wall * 100.0
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// Pressure stall totals (µs) from `/proc/pressure/{cpu,io}` ("some" line): how long tasks on
/// this machine waited for a CPU or for I/O. Tells a quiet run from one that shared the machine.
#[derive(Debug, Clone, Copy)]
pub struct Pressure {
    pub at: Instant,
    pub cpu_us: Option<u64>,
    pub io_us: Option<u64>,
}

fn psi_some_total(kind: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/pressure/{kind}")).ok()?;
    let line = text.lines().find(|l| l.starts_with("some"))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

pub fn pressure() -> Pressure {
    Pressure {
        at: Instant::now(),
        cpu_us: psi_some_total("cpu"),
        io_us: psi_some_total("io"),
    }
}

/// What the machine looked like during the measured phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MachineStats {
    /// 1-minute load average at the end.
    pub loadavg_1m: Option<f64>,
    /// Share of the time some task waited for a CPU (PSI "some"), %.
    pub cpu_pressure_pct: Option<f64>,
    /// Share of the time some task waited for I/O (PSI "some"), %.
    pub io_pressure_pct: Option<f64>,
}

impl MachineStats {
    pub fn between(a: &Pressure, b: &Pressure) -> MachineStats {
        let wall = b.at.duration_since(a.at).as_micros().max(1) as f64;
        let pct = |x: Option<u64>, y: Option<u64>| {
            Some(((y?.saturating_sub(x?)) as f64 / wall * 1000.0).round() / 10.0)
        };
        MachineStats {
            loadavg_1m: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok()),
            cpu_pressure_pct: pct(a.cpu_us, b.cpu_us),
            io_pressure_pct: pct(a.io_us, b.io_us),
        }
    }
}

/// What the report says about the server process.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerStats {
    pub pid: u32,
    /// RSS before the benchmark connected anything.
    pub rss_baseline_mb: Option<f64>,
    /// After every client connected and joined.
    pub rss_after_join_mb: Option<f64>,
    /// At the end of the measured phase.
    pub rss_end_mb: Option<f64>,
    /// Peak RSS of the process's life (VmHWM).
    pub rss_peak_mb: Option<f64>,
    /// CPU use during the measured phase, % of one core.
    pub cpu_pct: Option<f64>,
}

impl ServerStats {
    pub fn new(pid: u32) -> Self {
        ServerStats {
            pid,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_self() {
        let a = super::sample(0).unwrap();
        assert!(a.rss_bytes > 0);
        assert!(a.cpu_s >= 0.0);
    }
}
