//! `idle`: connect, join and hold N connections; the server's RSS growth per connection.
//! Pings are answered while holding (socket.io's heartbeat), nothing else is sent.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::{Sampler, bar, channels, connect_all, error_samples};
use crate::IdleArgs;
use crate::client::Conn;
use crate::procstat;
use crate::report::{ConnectStats, IdleStats, Report};
use crate::stats::Shared;
use crate::wire::{self, Frame};

pub async fn run(a: &IdleArgs) -> anyhow::Result<Report> {
    let common = &a.common;
    let target = common.target()?;
    let c = a.clients.max(1);
    let k = a.channels.clamp(1, c);
    let mut report = Report::new(
        "idle",
        common,
        json!({"clients": c, "channels": k, "hold": a.hold}),
    );
    let shared = Arc::new(Shared::new(0));
    let mut sampler = Sampler::new(common.pid);
    let baseline = sampler.now();
    let entities: Vec<Uuid> = (0..c).map(|_| Uuid::new_v4()).collect();
    let channel_ids = channels(common, &target, shared.run, &entities[..k]).await;
    let (conns, took) = connect_all(
        common,
        &target,
        &entities,
        |i| Some(channel_ids[i % k].clone()),
        &shared,
        None,
    )
    .await;
    let connected = conns.iter().filter(|c| c.is_some()).count();
    anyhow::ensure!(
        connected > 0,
        "no client could connect to {}: {}",
        common.url,
        error_samples(&shared).first().cloned().unwrap_or_default()
    );
    report.connect = ConnectStats {
        clients: c,
        connected,
        joined: connected,
        connect_s: took.as_secs_f64(),
        join_s: 0.0,
        connects_per_s: connected as f64 / took.as_secs_f64().max(1e-9),
        disconnects: 0,
    };
    sampler.after_join();
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = conns
        .into_iter()
        .flatten()
        .map(|conn| tokio::spawn(hold(conn, shared.clone(), stop_rx.clone())))
        .collect();
    sampler.begin();
    let hold_for = Duration::from_secs_f64(a.hold);
    let t0 = Instant::now();
    let pb = bar(common, hold_for.as_millis() as u64, "holding");
    let mut lowest = sampler.now();
    while t0.elapsed() < hold_for {
        tokio::time::sleep(Duration::from_millis(250).min(hold_for.saturating_sub(t0.elapsed())))
            .await;
        pb.set_position(t0.elapsed().as_millis() as u64);
        if let Some(s) = sampler.now()
            && lowest.is_none_or(|l| s.rss_bytes < l.rss_bytes)
        {
            lowest = Some(s);
        }
    }
    pb.finish_and_clear();
    let end = sampler.now();
    report.loadgen_cpu_pct = sampler.end();
    let still = connected - shared.get(&shared.disconnects) as usize;
    if let (Some(b), Some(e)) = (baseline, end) {
        let per = |s: &procstat::Sample| {
            (s.rss_bytes as f64 - b.rss_bytes as f64) / 1024.0 / connected.max(1) as f64
        };
        let kib = per(&e);
        report.idle = Some(IdleStats {
            held_s: t0.elapsed().as_secs_f64(),
            still_connected: still,
            kib_per_conn: (kib * 100.0).round() / 100.0,
            mb_per_1000: (kib * 1000.0 / 1024.0 * 10.0).round() / 10.0,
            kib_per_conn_min: lowest.map_or(kib, |l| (per(&l) * 100.0).round() / 100.0),
        });
    } else {
        report.idle = Some(IdleStats {
            held_s: t0.elapsed().as_secs_f64(),
            still_connected: still,
            ..Default::default()
        });
    }
    stop_tx.send_replace(true);
    for t in tasks {
        let _ = t.await;
    }
    report.connect.disconnects = shared.disconnects.load(Ordering::Relaxed);
    report.server = sampler.server();
    report.machine = sampler.machine.clone();
    report.error_samples = error_samples(&shared);
    report.end_reason = "complete".into();
    Ok(report)
}

/// Holds a connection: answers pings, ignores everything else, until told to stop.
pub async fn hold(mut conn: Conn, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            f = conn.ws.next() => match f {
                Some(Ok(Message::Text(t))) => match wire::parse(&t) {
                    Frame::Ping if conn.ws.send(Message::text("3")).await.is_err() => {
                        shared.disconnects.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Frame::Close | Frame::Disconnect => {
                        shared.disconnects.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    _ => {}
                },
                Some(Ok(_)) => {}
                _ => {
                    shared.disconnects.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}
