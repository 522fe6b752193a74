//! `fanout` (and `ingest`, which is fanout with one client per channel): C clients over K
//! channels, the first S members of each channel send. Open loop (`--rate`, messages/s over all
//! senders, evenly staggered) or closed loop (`--window` un-acknowledged messages per sender; a
//! message counts as acknowledged on `messageAck` or `messageError`).
//!
//! Every connection is one task that reads its socket, answers pings, records receipts, and — if
//! it is a sender — sends on its schedule or when acks free its window.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::{Sampler, bar, channels, connect_all, error_samples, latency_of};
use crate::client::Conn;
use crate::report::{Report, SendStats};
use crate::stats::{Seen, Shared};
use crate::wire::{self, Frame, SendTemplate};
use crate::{FanoutArgs, report::ConnectStats};

/// What the coordinator tells the connection tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    Wait,
    /// Start sending now; stop at `until`.
    Go {
        start: Instant,
        until: Instant,
    },
    Stop,
}

pub struct Sender {
    pub idx: u32,
    pub template: SendTemplate,
    /// Open loop: time between two messages of this sender, and its first offset.
    pub interval: Option<(Duration, Duration)>,
    pub window: usize,
}

/// Counters the coordinator watches.
#[derive(Default)]
pub struct Progress {
    pub senders_done: AtomicU64,
    /// Time of the last receipt, µs on the run's clock.
    pub last_receipt_us: AtomicU64,
    pub first_send_us: AtomicU64,
    pub last_send_us: AtomicU64,
}

pub async fn run(a: &FanoutArgs, scenario: &str) -> anyhow::Result<Report> {
    let common = &a.common;
    let target = common.target()?;
    let k = a.channels.clamp(1, a.clients.max(1));
    let c = a.clients.max(1);
    let spc = a.senders_per_channel.max(1);
    // Client i is in channel i % k; it sends if i < k * spc (the first spc members).
    let n_senders = (k * spc).min(c);
    let mut report = Report::new(
        scenario,
        common,
        json!({
            "clients": c, "channels": k, "senders_per_channel": spc, "senders": n_senders,
            "rate": a.rate, "window": a.window, "duration": a.duration, "drain": a.drain,
            "payload": a.payload, "threads": common.threads,
        }),
    );
    let shared = Arc::new(Shared::new(n_senders));
    let progress = Arc::new(Progress::default());
    let mut sampler = Sampler::new(common.pid);

    let entities: Vec<Uuid> = (0..c).map(|_| Uuid::new_v4()).collect();
    let channel_ids = channels(common, &target, shared.run, &entities[..k]).await;
    let (conns, connect_time) = connect_all(
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
        connect_s: connect_time.as_secs_f64(),
        join_s: 0.0,
        connects_per_s: connected as f64 / connect_time.as_secs_f64().max(1e-9),
        disconnects: 0,
    };
    sampler.after_join();

    // Joined members per channel: each receipt expected once per member, the sender included.
    let mut members = vec![0u64; k];
    for (i, conn) in conns.iter().enumerate() {
        if conn.is_some() {
            members[i % k] += 1;
        }
    }
    let sender_ok: Vec<bool> = (0..n_senders).map(|i| conns[i].is_some()).collect();
    let live_senders = sender_ok.iter().filter(|&&b| b).count().max(1);

    let (phase_tx, phase_rx) = watch::channel(Phase::Wait);
    let mut tasks = Vec::with_capacity(c);
    for (i, conn) in conns.into_iter().enumerate() {
        let Some(conn) = conn else { continue };
        let sender = (i < n_senders).then(|| {
            let interval = (a.rate > 0.0).then(|| {
                let per = Duration::from_secs_f64(live_senders as f64 / a.rate);
                let offset = per.mul_f64(i as f64 / live_senders as f64);
                (per, offset)
            });
            Sender {
                idx: i as u32,
                template: SendTemplate::new(
                    &channel_ids[i % k],
                    entities[i],
                    &format!("bench-{i}"),
                    &common.server_id,
                    shared.run,
                    i as u32,
                    a.payload,
                    "",
                ),
                interval,
                window: a.window.max(1),
            }
        });
        tasks.push((
            i,
            tokio::spawn(member(
                conn,
                sender,
                shared.clone(),
                progress.clone(),
                phase_rx.clone(),
            )),
        ));
    }

    // Send.
    let send_for = Duration::from_secs_f64(a.duration);
    let start = Instant::now();
    let until = start + send_for;
    sampler.begin();
    phase_tx.send_replace(Phase::Go { start, until });
    let pb = bar(common, send_for.as_millis() as u64, scenario);
    let tick = Duration::from_millis(200);
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut end_reason = "complete";
    loop {
        tokio::time::sleep(tick).await;
        let now = Instant::now();
        let (sent, recv) = (shared.get(&shared.sent), shared.get(&shared.received));
        let dt = now.duration_since(last.0).as_secs_f64();
        pb.set_position(now.duration_since(start).min(send_for).as_millis() as u64);
        pb.set_message(format!(
            "sent {:.0}/s delivered {:.0}/s",
            (sent - last.1) as f64 / dt,
            (recv - last.2) as f64 / dt
        ));
        last = (now, sent, recv);
        let done = progress.senders_done.load(Ordering::Relaxed) as usize
            >= sender_ok.iter().filter(|&&b| b).count();
        if now >= until + Duration::from_secs(2) && !done {
            // A sender task died (disconnect): its count is final anyway.
            break;
        }
        if now >= until && done {
            break;
        }
    }
    pb.finish_and_clear();
    // Drain: wait for the receipts of what was sent.
    let expected: u64 = (0..n_senders)
        .filter(|&s| sender_ok[s])
        .map(|s| shared.sent_by[s].load(Ordering::Relaxed) * members[s % k])
        .sum();
    let drain_until = Instant::now() + Duration::from_secs_f64(a.drain);
    while shared.get(&shared.received) < expected {
        if Instant::now() >= drain_until {
            end_reason = "drain-timeout";
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let loadgen_cpu = sampler.end();
    phase_tx.send_replace(Phase::Stop);

    // Lost = expected − distinct receipts, per receiver and sender of its channel.
    let mut lost = 0u64;
    let mut seen_by = Vec::with_capacity(tasks.len());
    for (i, t) in tasks {
        let seen = t.await.unwrap_or_default();
        seen_by.push((i, seen));
    }
    for (i, seen) in &seen_by {
        let ch = i % k;
        for s in (ch..n_senders).step_by(k) {
            if sender_ok[s] {
                let sent = shared.sent_by[s].load(Ordering::Relaxed);
                lost += sent.saturating_sub(seen.distinct(s as u32));
            }
        }
    }
    // Receivers that never connected are not expected to receive anything.

    let first = progress.first_send_us.load(Ordering::Relaxed);
    let last_send = progress.last_send_us.load(Ordering::Relaxed);
    let last_recv = progress.last_receipt_us.load(Ordering::Relaxed);
    let send_s = (last_send.saturating_sub(first) as f64 / 1e6).max(1e-6);
    let recv_s = (last_recv.saturating_sub(first) as f64 / 1e6).max(1e-6);
    let sent = shared.get(&shared.sent);
    let acked = shared.get(&shared.acked);
    let delivered = shared.get(&shared.received);
    report.send = Some(SendStats {
        offered_per_s: a.rate,
        send_s,
        sent,
        sent_per_s: sent as f64 / send_s,
        acked,
        acked_per_s: acked as f64 / send_s,
        expected,
        delivered,
        delivered_per_s: delivered as f64 / recv_s,
        lost,
        duplicates: shared.get(&shared.duplicates),
        errors: shared.get(&shared.errors),
        other: shared.get(&shared.other),
        unanswered: None,
    });
    report.connect.disconnects = shared.get(&shared.disconnects);
    report.latency = latency_of(&shared.latency);
    report.ack_latency = latency_of(&shared.ack_latency);
    report.server = sampler.server();
    report.machine = sampler.machine.clone();
    report.loadgen_cpu_pct = loadgen_cpu;
    report.error_samples = error_samples(&shared);
    report.end_reason = end_reason.into();
    Ok(report)
}

/// One connection's life during the run. Returns what it received.
async fn member(
    mut conn: Conn,
    sender: Option<Sender>,
    shared: Arc<Shared>,
    progress: Arc<Progress>,
    mut phase: watch::Receiver<Phase>,
) -> Seen {
    let mut seen = Seen::default();
    let mut sending = false;
    let mut until = Instant::now();
    let mut next_due = Instant::now();
    let mut seq = 0u64;
    let mut inflight = 0usize;
    let far = Instant::now() + Duration::from_secs(86_400);
    loop {
        let open_due = match &sender {
            Some(Sender {
                interval: Some(_), ..
            }) if sending => next_due.min(until),
            _ if sending => until,
            _ => far,
        };
        let mut out: Vec<String> = Vec::new();
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() { break; }
                let p = *phase.borrow_and_update();
                match p {
                    Phase::Wait => {}
                    Phase::Stop => break,
                    Phase::Go { start, until: u } => {
                        if let Some(s) = &sender {
                            sending = true;
                            until = u;
                            match s.interval {
                                Some((_, offset)) => next_due = start + offset,
                                None => fill_window(s, &shared, &progress, &mut seq, &mut inflight, &mut out),
                            }
                        }
                    }
                }
            }
            frame = conn.ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        shared.disconnects.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Some(Ok(_)) => continue,
                };
                let now_us = shared.now_us();
                match wire::parse(&text) {
                    Frame::Ping => out.push("3".into()),
                    Frame::Event { name: "messageBroadcast", data } => {
                        match wire::str_field(data, "text").and_then(wire::text_marker) {
                            Some(m) if m.run == shared.run => {
                                shared.record_latency(m.t_us, now_us);
                                if seen.mark(m.sender, m.seq) {
                                    shared.received.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    shared.duplicates.fetch_add(1, Ordering::Relaxed);
                                }
                                progress.last_receipt_us.fetch_max(now_us, Ordering::Relaxed);
                            }
                            _ => { shared.other.fetch_add(1, Ordering::Relaxed); }
                        }
                    }
                    Frame::Event { name: name @ ("messageAck" | "messageError"), data } => {
                        let mine = wire::str_field(data, "clientMessageId")
                            .and_then(wire::cmid_marker)
                            .filter(|m| m.run == shared.run);
                        if name == "messageError" {
                            shared.note_error(format!("messageError: {data}"));
                        } else if let Some(m) = mine {
                            shared.record_ack(m.t_us, now_us);
                        }
                        if let (Some(s), Some(m)) = (&sender, mine) && m.sender == s.idx {
                            inflight = inflight.saturating_sub(1);
                            if sending && s.interval.is_none() && Instant::now() < until {
                                fill_window(s, &shared, &progress, &mut seq, &mut inflight, &mut out);
                            }
                        }
                    }
                    Frame::Close | Frame::Disconnect => {
                        shared.disconnects.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    _ => {}
                }
            }
            _ = sleep_until(open_due.into()), if sending => {
                let now = Instant::now();
                if let Some(s) = &sender && now < until && let Some((per, _)) = s.interval {
                    let mut burst = 0;
                    while next_due <= now && burst < 1000 {
                        send_one(s, &shared, &progress, &mut seq, &mut out);
                        next_due += per;
                        burst += 1;
                    }
                }
            }
        }
        if sending && Instant::now() >= until {
            sending = false;
            if let Some(s) = &sender {
                shared.sent_by[s.idx as usize].store(seq, Ordering::Relaxed);
                progress.senders_done.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !out.is_empty() {
            let n = out.len();
            let mut failed = false;
            for (j, t) in out.into_iter().enumerate() {
                let r = if j + 1 == n {
                    conn.ws.send(Message::text(t)).await
                } else {
                    conn.ws.feed(Message::text(t)).await
                };
                if r.is_err() {
                    failed = true;
                    break;
                }
            }
            if failed {
                shared.disconnects.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    if sending && let Some(s) = &sender {
        shared.sent_by[s.idx as usize].store(seq, Ordering::Relaxed);
        progress.senders_done.fetch_add(1, Ordering::Relaxed);
    }
    // Keep the connection open until Stop so late receipts are still read… the task ends here
    // on Stop or on a broken connection; either way the count so far is final.
    drop(conn);
    seen
}

fn fill_window(
    s: &Sender,
    shared: &Shared,
    progress: &Progress,
    seq: &mut u64,
    inflight: &mut usize,
    out: &mut Vec<String>,
) {
    while *inflight < s.window {
        send_one(s, shared, progress, seq, out);
        *inflight += 1;
    }
}

fn send_one(
    s: &Sender,
    shared: &Shared,
    progress: &Progress,
    seq: &mut u64,
    out: &mut Vec<String>,
) {
    let t = shared.now_us();
    out.push(s.template.packet(*seq, t));
    *seq += 1;
    shared.sent.fetch_add(1, Ordering::Relaxed);
    if *seq == 1 {
        let _ = progress.first_send_us.compare_exchange(
            0,
            t.max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        progress
            .first_send_us
            .fetch_min(t.max(1), Ordering::Relaxed);
    }
    progress.last_send_us.fetch_max(t, Ordering::Relaxed);
}
