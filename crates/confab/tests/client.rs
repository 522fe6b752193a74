//! confab-client against the real server binary: a DM with ELIZA (ack with the stored id,
//! control → stream → reply → complete), a server restart mid-conversation (reconnect with
//! backoff, rejoin with a resume point, the offline queue flushed, nothing twice), and kill -9
//! with sends in flight (resent with their ids, each stored once).

mod common;

use std::time::Duration;

use common::{ELIZA, Server, T, free_port, next_matching, temp_dir};
use confab_client::{Client, Config, ConnectionState, Event, Outgoing, Reconnect, within};
use uuid::Uuid;

#[tokio::test]
async fn dm_with_eliza_streams_and_acks() {
    let dir = temp_dir();
    let port = free_port();
    let _srv = Server::start(port, &dir);
    let url = format!("http://127.0.0.1:{port}");
    let (client, mut events) = Client::connect(Config::new(&url).sender_name("Pat"))
        .await
        .unwrap();
    let agents = client.rest().agents().await.unwrap();
    let eliza: Uuid = ELIZA.parse().unwrap();
    assert!(agents.iter().any(|a| a.id == eliza && a.name == "Eliza"));
    let dm = client
        .rest()
        .dm_channel(client.entity_id(), eliza)
        .await
        .unwrap();
    let joined = client.join(dm.id).await.unwrap();
    assert_eq!(joined.channel_id, dm.id);

    let ack = client
        .send(Outgoing::new(dm.id, "I am unhappy.").dm_with(eliza))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut reply_text = String::new();
    let mut streamed = String::new();
    within(T, async {
        while let Some(e) = events.next().await {
            match &e {
                Event::Control { action, .. } => seen.push(action.clone()),
                Event::StreamChunk { chunk, .. } => {
                    streamed.push_str(chunk);
                    if !seen.contains(&"chunk".to_string()) {
                        seen.push("chunk".into());
                    }
                }
                Event::Message(m) if m.id == ack.message_id => {
                    assert_eq!(
                        m.client_message_id.as_deref(),
                        Some(ack.client_message_id.as_str())
                    );
                    seen.push("own".into());
                }
                Event::Message(m) if m.is_agent_reply() => {
                    reply_text = m.text.clone();
                    seen.push("reply".into());
                }
                Event::Complete { .. } => seen.push("complete".into()),
                _ => {}
            }
            if seen.last().map(String::as_str) == Some("enable_input") {
                break;
            }
        }
    })
    .await
    .expect("the run ended");
    let order: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "own")
        .collect();
    assert_eq!(
        order,
        [
            "disable_input",
            "chunk",
            "reply",
            "complete",
            "enable_input"
        ]
    );
    assert!(seen.contains(&"own".to_string()), "own echo delivered once");
    assert_eq!(streamed.trim(), reply_text.trim());
    assert!(
        reply_text.to_lowercase().contains("unhappy"),
        "{reply_text}"
    );

    let history = client.rest().history(dm.id, 10, None).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].id, ack.message_id);
    assert!(!history[0].live);
    client.close();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn server_restart_mid_conversation() {
    let dir = temp_dir();
    let port = free_port();
    let srv = Server::start(port, &dir);
    let url = format!("http://127.0.0.1:{port}");
    let fast = Reconnect {
        initial_delay: Duration::from_millis(200),
        max_attempts: Some(20),
        max_delay: Duration::from_secs(1),
        ..Reconnect::default()
    };
    let (client, mut events) = Client::connect(Config::new(&url).reconnect(fast))
        .await
        .unwrap();
    let channel = client
        .rest()
        .create_group("restart", &[client.entity_id()])
        .await
        .unwrap()
        .id;
    client.join(channel).await.unwrap();
    let first = client.send_text(channel, "before").await.unwrap();

    srv.kill();
    next_matching(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;
    let reconnecting =
        next_matching(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    assert!(
        matches!(reconnecting, Event::Reconnecting { attempt: 1, delay } if delay == Duration::from_millis(200))
    );
    assert_ne!(client.state(), ConnectionState::Connected);
    // Sent while the server is down: queued, delivered after the reconnect.
    let queued = {
        let c = client.clone();
        tokio::spawn(async move { c.send_text(channel, "typed while offline").await })
    };

    let _srv = Server::start(port, &dir);
    // Someone else writes while (or just after) the client is away.
    let (other, mut other_events) = Client::connect(Config::new(&url)).await.unwrap();
    other.join(channel).await.unwrap();
    let missed = other
        .send_text(channel, "sent while you were away")
        .await
        .unwrap();

    // Everything that arrives from here on, until the reconnect, the rejoin and both messages.
    let mut got = Vec::new();
    let (mut reconnected, mut rejoined) = (false, None);
    within(T, async {
        while let Some(e) = events.next().await {
            match e {
                Event::Connected { reconnected: true } => reconnected = true,
                Event::Joined(j) if j.rejoin => rejoined = Some(j),
                Event::Message(m) => got.push(m.id),
                _ => {}
            }
            if reconnected
                && rejoined.is_some()
                && got.contains(&missed.message_id)
                && got.len() >= 2
            {
                break;
            }
        }
    })
    .await
    .expect("reconnected, rejoined, missed and queued messages arrived");
    let j = rejoined.unwrap();
    assert_eq!(j.channel_id, channel);
    assert!(
        j.recovered.is_some(),
        "rejoined with lastMessageId, so the server reports recovery"
    );
    let queued_ack = within(T, queued)
        .await
        .expect("queued send resolved")
        .unwrap()
        .unwrap();
    assert!(
        got.contains(&queued_ack.message_id),
        "the queued message came back once: {got:?}"
    );
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "no duplicates: {got:?}");
    assert!(
        !got.contains(&first.message_id),
        "the message before the restart is not replayed"
    );
    next_matching(
        &mut other_events,
        |e| matches!(e, Event::Message(m) if m.id == queued_ack.message_id),
    )
    .await;
    client.close();
    other.close();
    let _ = std::fs::remove_dir_all(dir);
}

/// Sends in flight when the server is killed: the client sends what was not acknowledged again
/// after the reconnect, with the original ids, and the server stores each message once (a
/// message committed before the kill is acknowledged as a repeat of itself).
#[tokio::test]
async fn sends_in_flight_at_a_crash_are_stored_once() {
    let dir = temp_dir();
    let port = free_port();
    let srv = Server::start(port, &dir);
    let url = format!("http://127.0.0.1:{port}");
    let fast = Reconnect {
        initial_delay: Duration::from_millis(200),
        max_attempts: Some(20),
        max_delay: Duration::from_secs(1),
        ..Reconnect::default()
    };
    let (client, _events) = Client::connect(Config::new(&url).reconnect(fast))
        .await
        .unwrap();
    let channel = client
        .rest()
        .create_group("crash", &[client.entity_id()])
        .await
        .unwrap()
        .id;
    client.join(channel).await.unwrap();
    // Under the default 100 messages per minute, resends included.
    let n = 40;
    let sends: Vec<_> = (0..n)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.send_text(channel, format!("m{i}")).await })
        })
        .collect();
    // Killed once the first messages are stored, while later ones are still on their way.
    let rest = client.rest().clone();
    within(T, async {
        while rest.history(channel, 1, None).await.unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a first message stored");
    srv.kill();
    let answered_before = sends.iter().filter(|s| s.is_finished()).count();
    assert!(answered_before < n, "sends were in flight at the kill");
    let _srv = Server::start(port, &dir);

    let mut acks = Vec::new();
    for s in sends {
        acks.push(
            within(T, s)
                .await
                .expect("every send resolves")
                .unwrap()
                .expect("every send acknowledged"),
        );
    }
    let history = client.rest().history(channel, 100, None).await.unwrap();
    assert_eq!(history.len(), n, "each message stored once");
    let mut stored: Vec<_> = history.iter().map(|m| m.id).collect();
    let mut acked: Vec<_> = acks.iter().map(|a| a.message_id).collect();
    stored.sort();
    acked.sort();
    assert_eq!(acked, stored, "every ack names its one stored message");
    let repeats = acks.iter().filter(|a| a.repeat).count();
    println!(
        "{answered_before} of {n} answered before the kill; {repeats} stored before it and acknowledged as repeats after it"
    );
    client.close();
    let _ = std::fs::remove_dir_all(dir);
}
