//! Append contention on one PostgreSQL: N "nodes" (each its own store and connection pool)
//! append one message at a time, each to its own channel, for a fixed time; prints appends/s
//! for each N. Before per-channel order every append took the one `message_seq` row lock.
//!
//! `cargo run -p confab-store --example append_contention -- [seconds] [n...]`
//! (`CONFAB_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`; a fresh
//! schema per N, dropped afterwards).

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_store::*;
use uuid::Uuid;

#[tokio::main]
async fn main() {
    let url = std::env::var("CONFAB_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let ns: Vec<usize> = {
        let given: Vec<usize> = args.filter_map(|s| s.parse().ok()).collect();
        if given.is_empty() {
            vec![1, 2, 4, 8]
        } else {
            given
        }
    };
    println!("appenders,appends,seconds,appends_per_s");
    for n in ns {
        let schema = format!("contention_{}", Uuid::new_v4().simple());
        let mut stores: Vec<Arc<dyn Store>> = Vec::new();
        for _ in 0..n {
            stores.push(Arc::new(
                PostgresStore::open(
                    &url,
                    PostgresOptions {
                        schema: Some(schema.clone()),
                        max_connections: 2,
                        ..PostgresOptions::default()
                    },
                )
                .await
                .expect("open"),
            ));
        }
        let now = 1;
        stores[0]
            .ensure_server(&MessageServer {
                id: Uuid::nil(),
                name: "bench".into(),
                source_type: "bench".into(),
                source_id: None,
                metadata: None,
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        let mut channels = Vec::new();
        for _ in 0..n {
            let id = Uuid::new_v4();
            stores[0]
                .create_channel(
                    &Channel {
                        id,
                        message_server_id: Uuid::nil(),
                        name: "bench".into(),
                        kind: "GROUP".into(),
                        source_type: None,
                        source_id: None,
                        topic: None,
                        metadata: None,
                        alias: None,
                        created_at: now,
                        updated_at: now,
                    },
                    &[],
                )
                .await
                .unwrap();
            channels.push(id);
        }
        let until = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let tasks: Vec<_> = stores
            .iter()
            .zip(&channels)
            .map(|(store, channel)| {
                let (store, channel) = (store.clone(), *channel);
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while Instant::now() < until {
                        let m = NewMessage {
                            id: new_message_id(),
                            channel_id: channel,
                            author_id: "bench".into(),
                            content: "hello".into(),
                            created_at: confab_protocol::now_ms(),
                            ..Default::default()
                        };
                        store.insert_messages(&[m]).await.expect("append");
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!("{n},{total},{elapsed:.1},{:.0}", total as f64 / elapsed);
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await
            .unwrap();
    }
}
