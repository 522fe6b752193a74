//! `agent`: N concurrent DM sessions with an agent. Each session is a fresh user entity with its
//! own DM channel — found or created with `GET /api/messaging/dm-channel` (`--dm rest`), or
//! created by the first message (`--dm auto`: metadata `channelType: "DM"`, `targetUserId`) —
//! joined over the socket. Users send at `--rate` messages/s in total (evenly staggered); the
//! latency is user send → the `messageBroadcast` whose `senderId` is the agent, matched to the
//! session's oldest unanswered message.
//!
//! `--fake-agent` answers from inside the load generator (one connection as the agent, joined to
//! every DM, replying to each user message at once), to test the scenario where no agent runs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::fanout::Phase;
use super::{Sampler, bar, connect_all, error_samples, latency_of};
use crate::client::{self, Conn};
use crate::report::{ConnectStats, Report, SendStats};
use crate::stats::Shared;
use crate::target::Target;
use crate::wire::{self, Frame, SendTemplate};
use crate::{AgentArgs, DmMode};

pub async fn run(a: &AgentArgs) -> anyhow::Result<Report> {
    let common = &a.common;
    let target = common.target()?;
    let n = a.sessions.max(1);
    let mut report = Report::new(
        "agent",
        common,
        json!({"sessions": n, "rate": a.rate, "duration": a.duration, "drain": a.drain,
               "agent_id": a.agent_id, "dm": format!("{:?}", a.dm).to_lowercase(),
               "fake_agent": a.fake_agent, "payload": a.payload}),
    );
    let shared = Arc::new(Shared::new(n));
    let mut sampler = Sampler::new(common.pid);
    let agent = a.agent_id.to_string();
    let users: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();

    // DM channels.
    let mut auto = a.dm == DmMode::Auto;
    let mut dms: Vec<String> = Vec::with_capacity(n);
    if !auto {
        let jobs = users.iter().map(|u| dm_channel(&target, *u, a.agent_id));
        let got: Vec<anyhow::Result<String>> = futures::stream::iter(jobs)
            .buffered(common.connect_concurrency.clamp(1, 32))
            .collect()
            .await;
        if let Some(Err(e)) = got.iter().find(|r| r.is_err()) {
            if !common.quiet {
                eprintln!("dm-channel over REST failed ({e:#}); the first message creates each DM");
            }
            auto = true;
        } else {
            dms = got.into_iter().map(|r| r.expect("checked")).collect();
        }
    }
    if auto {
        dms = (0..n).map(|_| Uuid::new_v4().to_string()).collect();
    }
    let extra = if auto {
        format!(
            ",\"targetUserId\":\"{agent}\",\"metadata\":{{\"channelType\":\"DM\",\"isDm\":true,\"targetUserId\":\"{agent}\"}}"
        )
    } else {
        String::new()
    };

    let (conns, took) = connect_all(
        common,
        &target,
        &users,
        |i| Some(dms[i].clone()),
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
        clients: n,
        connected,
        joined: connected,
        connect_s: took.as_secs_f64(),
        join_s: 0.0,
        connects_per_s: connected as f64 / took.as_secs_f64().max(1e-9),
        disconnects: 0,
    };

    let (phase_tx, phase_rx) = watch::channel(Phase::Wait);
    let fake = if a.fake_agent {
        let mut c = client::connect(
            &target,
            a.agent_id,
            Duration::from_secs_f64(common.connect_timeout),
        )
        .await?;
        for ch in &dms {
            c.join(ch, &common.server_id).await?;
        }
        Some(tokio::spawn(fake_agent(
            c,
            agent.clone(),
            common.server_id.clone(),
            phase_rx.clone(),
        )))
    } else {
        None
    };
    sampler.after_join();

    let replies = Arc::new(AtomicU64::new(0));
    let per = Duration::from_secs_f64(connected.max(1) as f64 / a.rate.max(1e-3));
    let mut tasks = Vec::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let Some(conn) = conn else { continue };
        let template = SendTemplate::new(
            &dms[i],
            users[i],
            &format!("user-{i}"),
            &common.server_id,
            shared.run,
            i as u32,
            a.payload,
            &extra,
        );
        let offset = per.mul_f64(tasks.len() as f64 / connected.max(1) as f64);
        tasks.push(tokio::spawn(session(
            conn,
            Session {
                idx: i as u32,
                template,
                per,
                offset,
                agent: agent.clone(),
            },
            shared.clone(),
            replies.clone(),
            phase_rx.clone(),
        )));
    }

    let send_for = Duration::from_secs_f64(a.duration);
    let start = Instant::now();
    let until = start + send_for;
    sampler.begin();
    phase_tx.send_replace(Phase::Go { start, until });
    let pb = bar(common, send_for.as_millis() as u64, "agent");
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        pb.set_position(start.elapsed().min(send_for).as_millis() as u64);
        pb.set_message(format!(
            "sent {} replies {}",
            shared.get(&shared.sent),
            replies.load(Ordering::Relaxed)
        ));
    }
    pb.finish_and_clear();
    let sent_at_end = start.elapsed();
    let mut end_reason = "complete";
    let drain_until = Instant::now() + Duration::from_secs_f64(a.drain);
    while replies.load(Ordering::Relaxed) < shared.get(&shared.sent) {
        if Instant::now() >= drain_until {
            end_reason = "drain-timeout";
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    report.loadgen_cpu_pct = sampler.end();
    phase_tx.send_replace(Phase::Stop);
    let mut unanswered = 0u64;
    for t in tasks {
        unanswered += t.await.unwrap_or(0);
    }
    if let Some(f) = fake {
        let _ = f.await;
    }
    let sent = shared.get(&shared.sent);
    let got = replies.load(Ordering::Relaxed);
    let send_s = sent_at_end.as_secs_f64().max(1e-6);
    report.send = Some(SendStats {
        offered_per_s: a.rate,
        send_s,
        sent,
        sent_per_s: sent as f64 / send_s,
        acked: shared.get(&shared.acked),
        acked_per_s: shared.get(&shared.acked) as f64 / send_s,
        expected: sent,
        delivered: got,
        delivered_per_s: got as f64 / send_s,
        lost: sent.saturating_sub(got),
        duplicates: shared.get(&shared.duplicates),
        errors: shared.get(&shared.errors),
        other: shared.get(&shared.other),
        unanswered: Some(unanswered),
    });
    report.connect.disconnects = shared.get(&shared.disconnects);
    report.latency = latency_of(&shared.latency);
    report.ack_latency = latency_of(&shared.ack_latency);
    report.server = sampler.server();
    report.machine = sampler.machine.clone();
    report.error_samples = error_samples(&shared);
    report.end_reason = end_reason.into();
    Ok(report)
}

async fn dm_channel(target: &Target, user: Uuid, agent: Uuid) -> anyhow::Result<String> {
    let path = format!("/api/messaging/dm-channel?currentUserId={user}&targetUserId={agent}");
    let (status, body) = crate::http::request(target, "GET", &path, None).await?;
    body.pointer("/data/id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("HTTP {status}: {body:.200}"))
}

struct Session {
    idx: u32,
    template: SendTemplate,
    per: Duration,
    offset: Duration,
    agent: String,
}

/// One user: sends on its schedule, matches the agent's replies to its oldest unanswered
/// message. Returns how many stayed unanswered.
async fn session(
    mut conn: Conn,
    s: Session,
    shared: Arc<Shared>,
    replies: Arc<AtomicU64>,
    mut phase: watch::Receiver<Phase>,
) -> u64 {
    let mut waiting: VecDeque<u64> = VecDeque::new();
    let mut sending = false;
    let mut until = Instant::now();
    let mut next_due = Instant::now();
    let mut seq = 0u64;
    loop {
        let mut out: Vec<String> = Vec::new();
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() { break; }
                match *phase.borrow_and_update() {
                    Phase::Wait => {}
                    Phase::Stop => break,
                    Phase::Go { start, until: u } => {
                        sending = true;
                        until = u;
                        next_due = start + s.offset;
                    }
                }
            }
            f = conn.ws.next() => {
                let text = match f {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    _ => { shared.disconnects.fetch_add(1, Ordering::Relaxed); break; }
                };
                let now_us = shared.now_us();
                match wire::parse(&text) {
                    Frame::Ping => out.push("3".into()),
                    Frame::Event { name: "messageBroadcast", data } => {
                        if wire::str_field(data, "senderId") == Some(s.agent.as_str()) {
                            if let Some(t) = waiting.pop_front() {
                                shared.record_latency(t, now_us);
                                replies.fetch_add(1, Ordering::Relaxed);
                            } else {
                                shared.duplicates.fetch_add(1, Ordering::Relaxed);
                            }
                        } else if wire::str_field(data, "text")
                            .and_then(wire::text_marker)
                            .is_none_or(|m| m.run != shared.run)
                        {
                            shared.other.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Frame::Event { name: "messageAck", data } => {
                        if let Some(m) = wire::str_field(data, "clientMessageId").and_then(wire::cmid_marker)
                            && m.run == shared.run
                        {
                            shared.record_ack(m.t_us, now_us);
                        }
                    }
                    Frame::Event { name: "messageError", data } => {
                        shared.note_error(format!("messageError: {data}"));
                    }
                    Frame::Close | Frame::Disconnect => {
                        shared.disconnects.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(next_due.min(until).into()), if sending => {
                let now = Instant::now();
                while sending && next_due <= now && now < until {
                    let t = shared.now_us();
                    out.push(s.template.packet(seq, t));
                    waiting.push_back(t);
                    seq += 1;
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                    next_due += s.per;
                }
            }
        }
        if sending && Instant::now() >= until {
            sending = false;
            shared.sent_by[s.idx as usize].store(seq, Ordering::Relaxed);
        }
        for t in out {
            if conn.ws.send(Message::text(t)).await.is_err() {
                shared.disconnects.fetch_add(1, Ordering::Relaxed);
                return waiting.len() as u64;
            }
        }
    }
    waiting.len() as u64
}

/// The stand-in agent: replies to every benchmark message in any channel it is in.
async fn fake_agent(
    mut conn: Conn,
    agent: String,
    server_id: String,
    mut phase: watch::Receiver<Phase>,
) {
    let mut n = 0u64;
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() == Phase::Stop { break; }
            }
            f = conn.ws.next() => {
                let Some(Ok(Message::Text(text))) = f else {
                    if matches!(f, Some(Ok(_))) { continue; }
                    break;
                };
                let reply = match wire::parse(&text) {
                    Frame::Ping => Some("3".to_owned()),
                    Frame::Event { name: "messageBroadcast", data }
                        if wire::str_field(data, "senderId") != Some(agent.as_str()) =>
                    {
                        match (wire::str_field(data, "channelId").or_else(|| wire::str_field(data, "roomId")),
                               wire::str_field(data, "text").and_then(wire::text_marker)) {
                            (Some(ch), Some(m)) => {
                                n += 1;
                                Some(format!(
                                    "42[\"message\",{{\"type\":2,\"payload\":{{\"channelId\":\"{ch}\",\"senderId\":\"{agent}\",\"senderName\":\"Agent\",\"message\":\"re {}:{}\",\"messageId\":\"agent-{n}\",\"messageServerId\":\"{server_id}\",\"source\":\"agent_response\"}}}}]",
                                    m.sender, m.seq
                                ))
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                };
                if let Some(r) = reply && conn.ws.send(Message::text(r)).await.is_err() {
                    break;
                }
            }
        }
    }
}
