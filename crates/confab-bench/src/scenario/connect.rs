//! `connect`: how fast the server accepts connections — TCP, websocket upgrade, Engine.IO open,
//! Socket.IO connect with `auth.entityId` — `--connect-concurrency` at a time. Every connection
//! is held until all are open, then closed.

use std::sync::{Arc, Mutex};

use serde_json::json;
use uuid::Uuid;

use super::{Sampler, connect_all, error_samples, latency_of};
use crate::ConnectArgs;
use crate::report::{ConnectStats, Report};
use crate::stats::{self, Shared};

pub async fn run(a: &ConnectArgs) -> anyhow::Result<Report> {
    let common = &a.common;
    let target = common.target()?;
    let n = a.connections.max(1);
    let mut report = Report::new(
        "connect",
        common,
        json!({"connections": n, "concurrency": common.connect_concurrency}),
    );
    let shared = Arc::new(Shared::new(0));
    let mut sampler = Sampler::new(common.pid);
    let entities: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let handshakes = Mutex::new(stats::histogram());
    sampler.begin();
    let (conns, took) = connect_all(
        common,
        &target,
        &entities,
        |_| None,
        &shared,
        Some(&handshakes),
    )
    .await;
    report.loadgen_cpu_pct = sampler.end();
    let connected = conns.iter().filter(|c| c.is_some()).count();
    report.connect = ConnectStats {
        clients: n,
        connected,
        joined: 0,
        connect_s: took.as_secs_f64(),
        join_s: 0.0,
        connects_per_s: (connected as f64 / took.as_secs_f64().max(1e-9)).round(),
        disconnects: 0,
    };
    report.latency = latency_of(&handshakes);
    for c in conns.into_iter().flatten() {
        c.close().await;
    }
    report.server = sampler.server();
    report.machine = sampler.machine.clone();
    report.error_samples = error_samples(&shared);
    report.end_reason = "complete".into();
    Ok(report)
}
