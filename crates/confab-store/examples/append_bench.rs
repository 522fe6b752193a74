//! Storage-only throughput: how fast `append_messages` commits batches, without the server.
//!
//!   cargo run --release -p confab-store --example append_bench -- [batch] [seconds] [channels]
//!
//! The database goes in $TMPDIR. Prints messages/s, the mean commit time, CPU time and bytes
//! written per message. Used to tune the SQLite write path (the group
//! commit the sequencer performs); see BENCHMARKS.md.
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_store::{Channel, MessageServer, NewMessage, SqliteOptions, SqliteStore, Store};
use uuid::Uuid;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let channels: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("bench.db"), SqliteOptions::default())
            .await
            .expect("open"),
    );
    let server = MessageServer {
        id: Uuid::new_v4(),
        name: "bench".into(),
        source_type: "bench".into(),
        source_id: None,
        metadata: None,
        created_at: 0,
        updated_at: 0,
    };
    store.ensure_server(&server).await.expect("server");
    let mut ids = Vec::new();
    for i in 0..channels {
        let id = Uuid::new_v4();
        let channel = Channel {
            id,
            message_server_id: server.id,
            name: format!("c{i}"),
            kind: "GROUP".into(),
            source_type: None,
            source_id: None,
            topic: None,
            metadata: None,
            alias: None,
            created_at: 0,
            updated_at: 0,
        };
        store.create_channel(&channel, &[]).await.expect("channel");
        ids.push(id);
    }
    let payload = "x".repeat(100);
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let (mut n, mut commits) = (0usize, 0usize);
    while started.elapsed() < Duration::from_secs(secs) {
        let now = confab_protocol::now_ms();
        let msgs: Vec<NewMessage> = (0..batch)
            .map(|i| NewMessage {
                id: confab_store::new_message_id(),
                channel_id: ids[(n + i) % ids.len()],
                author_id: Uuid::new_v4().to_string(),
                content: payload.clone(),
                raw_message: Some(serde_json::json!({"text": payload})),
                in_reply_to: None,
                source_type: Some("client_chat".into()),
                source_id: None,
                metadata: Some(serde_json::json!({"channelType": "GROUP"})),
                created_at: now,
                client_key: None,
            })
            .collect();
        store.append_messages(&msgs).await.expect("append");
        n += batch;
        commits += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu_before;
    println!(
        "batch {batch}: {n} messages in {elapsed:.2} s = {:.0} msg/s, {:.3} ms per commit, {:.1} µs CPU per message",
        n as f64 / elapsed,
        elapsed * 1000.0 / commits as f64,
        cpu * 1e6 / n as f64
    );
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    println!(
        "  bytes per message: written {:.0}, read {:.0}; write calls per message {:.1}",
        field("wchar:") / n as f64,
        field("rchar:") / n as f64,
        field("syscw:") / n as f64
    );
}

/// User + system CPU time of this process so far, from /proc/self/stat (clock ticks of 1/100 s).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
