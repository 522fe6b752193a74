//! The hub against a real SQLite store and a recording fan-out.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use confab_hub::*;
use confab_protocol::inbound::{ClientEvent, Command, decode};
use confab_protocol::{ServerEvent, string_to_uuid};
use confab_store::{SqliteOptions, SqliteStore, Store};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
enum Sent {
    Channel {
        channel: Uuid,
        event: String,
        except: Option<String>,
        payload: Value,
    },
    Conn {
        conn: String,
        event: String,
        payload: Value,
    },
    Join {
        conn: String,
        channel: Uuid,
    },
    Leave {
        conn: String,
        channel: Uuid,
    },
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Sent>>);

impl Recorder {
    fn take(&self) -> Vec<Sent> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

#[async_trait]
impl FanOut for Recorder {
    async fn to_channel(
        &self,
        channel: Uuid,
        event: &ServerEvent,
        except: Option<&ConnId>,
    ) -> Vec<ConnId> {
        self.0.lock().unwrap().push(Sent::Channel {
            channel,
            event: event.name().to_owned(),
            except: except.map(|c| c.0.clone()),
            payload: serde_json::to_value(event).unwrap(),
        });
        Vec::new()
    }
    async fn to_legacy_members(&self, _: Uuid, _: &ServerEvent, _: Option<&ConnId>) -> Vec<ConnId> {
        Vec::new()
    }
    async fn to_conn(&self, conn: &ConnId, event: &ServerEvent) -> bool {
        self.0.lock().unwrap().push(Sent::Conn {
            conn: conn.0.clone(),
            event: event.name().to_owned(),
            payload: serde_json::to_value(event).unwrap(),
        });
        true
    }
    async fn join(&self, conn: &ConnId, channel: Uuid, _: bool) {
        self.0.lock().unwrap().push(Sent::Join {
            conn: conn.0.clone(),
            channel,
        });
    }
    async fn leave(&self, conn: &ConnId, channel: Uuid) {
        self.0.lock().unwrap().push(Sent::Leave {
            conn: conn.0.clone(),
            channel,
        });
    }
}

async fn hub() -> (tempfile::TempDir, Hub, Arc<Recorder>, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let rec = Arc::new(Recorder::default());
    let hub = Hub::start(store.clone(), rec.clone(), HubConfig::default())
        .await
        .unwrap();
    (dir, hub, rec, store)
}

fn command(event: ClientEvent, v: Value) -> Command {
    decode(event, v).unwrap()
}

/// Sends and waits for the commit callback.
async fn send(
    hub: &Hub,
    conn: &ConnId,
    entity: Uuid,
    payload: Value,
) -> Result<Committed, HubError> {
    let Command::Send(req) = command(ClientEvent::Send, payload) else {
        panic!("not a send")
    };
    let (tx, rx) = oneshot::channel();
    hub.send(
        conn,
        entity,
        req,
        false,
        Box::new(move |r| {
            let _ = tx.send(r.cloned().map_err(|e| e.clone()));
        }),
    )
    .await?;
    rx.await.unwrap()
}

#[tokio::test]
async fn a_send_is_stored_then_broadcast_then_acknowledged() {
    let (_d, hub, rec, store) = hub().await;
    let conn = ConnId("c1".into());
    let entity = Uuid::new_v4();
    hub.connect(&conn, entity, false).await;
    let ch = Uuid::new_v4();
    let c = send(
        &hub,
        &conn,
        entity,
        json!({"channelId": ch, "message": "hi", "messageId": "m1"}),
    )
    .await
    .unwrap();
    assert_eq!(
        store
            .get_message(c.message.id)
            .await
            .unwrap()
            .unwrap()
            .content,
        "hi"
    );
    let sent = rec.take();
    let names: Vec<_> = sent
        .iter()
        .map(|s| match s {
            Sent::Channel { event, except, .. } => {
                format!("room:{event}:{}", except.clone().unwrap_or_default())
            }
            Sent::Conn { event, .. } => format!("conn:{event}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "room:messageBroadcast:c1",
            "conn:messageBroadcast",
            "conn:messageAck"
        ]
    );
    let Sent::Conn { payload, .. } = &sent[1] else {
        unreachable!()
    };
    assert_eq!(payload["clientMessageId"], "m1");
    let Sent::Channel { payload, .. } = &sent[0] else {
        unreachable!()
    };
    assert!(payload.get("clientMessageId").is_none());
    assert_eq!(payload["channelId"], ch.to_string());
    assert_eq!(payload["serverId"], Uuid::nil().to_string());
    // The channel was auto-created as a GROUP with the sender as participant.
    let channel = store.get_channel(ch).await.unwrap().unwrap();
    assert_eq!(channel.kind, "GROUP");
    assert_eq!(
        store.participants(ch).await.unwrap(),
        vec![entity.to_string()]
    );
}

#[tokio::test]
async fn many_queued_sends_commit_in_queue_order() {
    let (_d, hub, rec, store) = hub().await;
    let conn = ConnId("c".into());
    let entity = Uuid::new_v4();
    hub.connect(&conn, entity, false).await;
    let ch = Uuid::new_v4();
    let mut waits = Vec::new();
    for i in 0..300 {
        let Command::Send(req) = command(
            ClientEvent::Send,
            json!({"channelId": ch, "message": format!("m{i}")}),
        ) else {
            unreachable!()
        };
        let (tx, rx) = oneshot::channel();
        hub.send(
            &conn,
            entity,
            req,
            false,
            Box::new(move |r| {
                let _ = tx.send(r.map(|c| c.message.seq).map_err(|e| e.to_string()));
            }),
        )
        .await
        .unwrap();
        waits.push(rx);
    }
    let mut seqs = Vec::new();
    for w in waits {
        seqs.push(w.await.unwrap().unwrap());
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence follows queue order"
    );
    let texts: Vec<_> = rec
        .take()
        .into_iter()
        .filter_map(|s| match s {
            Sent::Channel { payload, .. } => Some(payload["text"].as_str().unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, (0..300).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert_eq!(
        store.recent_messages(ch, 1, None).await.unwrap()[0].content,
        "m299"
    );
}

#[tokio::test]
async fn unknown_server_is_refused_with_elizaos_text() {
    let (_d, hub, _rec, _store) = hub().await;
    let conn = ConnId("c".into());
    let server = Uuid::new_v4();
    let err = send(
        &hub,
        &conn,
        Uuid::new_v4(),
        json!({"channelId": Uuid::new_v4(), "message": "x", "messageServerId": server}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), format!("Server {server} does not exist"));
}

#[tokio::test]
async fn dm_auto_creation_adds_the_target() {
    let (_d, hub, _rec, store) = hub().await;
    let (conn, me, other) = (ConnId("c".into()), Uuid::new_v4(), Uuid::new_v4());
    let c = send(&hub, &conn, me, json!({"roomId": "dm-room", "message": "x", "metadata": {"isDm": true, "targetUserId": other}}))
        .await
        .unwrap();
    assert_eq!(c.channel.id, string_to_uuid("dm-room"));
    assert_eq!(c.channel.room_id(), "dm-room");
    let channel = store.get_channel(c.channel.id).await.unwrap().unwrap();
    assert_eq!(channel.kind, "DM");
    assert_eq!(channel.alias.as_deref(), Some("dm-room"));
    assert_eq!(
        store.participants(c.channel.id).await.unwrap(),
        vec![me.to_string(), other.to_string()]
    );
}

#[tokio::test]
async fn presence_join_leave_disconnect() {
    let (_d, hub, rec, _store) = hub().await;
    let (a, b) = (ConnId("a".into()), ConnId("b".into()));
    let (ea, eb) = (Uuid::new_v4(), Uuid::new_v4());
    hub.connect(&a, ea, false).await;
    hub.connect(&b, eb, false).await;
    let ch = Uuid::new_v4();
    let Command::Join(join) = command(ClientEvent::Join, json!({"channelId": ch})) else {
        unreachable!()
    };
    hub.join(&a, ea, &join, false).await.unwrap();
    hub.join(&b, eb, &join, false).await.unwrap();
    assert_eq!(hub.present(ch).await.unwrap().len(), 2);
    hub.disconnect(&b, eb).await;
    assert_eq!(hub.present(ch).await.unwrap(), vec![(ea, 1)]);
    let events: Vec<_> = rec
        .take()
        .into_iter()
        .filter_map(|s| match s {
            Sent::Channel {
                event,
                except,
                payload,
                ..
            } => Some((
                event.clone(),
                except.unwrap(),
                payload["entityId"].as_str().unwrap().to_owned(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("userJoined".to_owned(), "a".to_owned(), ea.to_string()),
            ("userJoined".to_owned(), "b".to_owned(), eb.to_string()),
            ("userLeft".to_owned(), "b".to_owned(), eb.to_string()),
        ]
    );
}

/// A resend with the same id is acknowledged again (same message, marked a repeat), and is not
/// stored, broadcast, or shown to agents a second time.
#[tokio::test]
async fn a_repeat_is_only_acknowledged() {
    let (_d, hub, rec, store) = hub().await;
    let conn = ConnId("c1".into());
    let entity = Uuid::new_v4();
    hub.connect(&conn, entity, false).await;
    let mut agents = hub.subscribe();
    let ch = Uuid::new_v4();
    let payload = json!({"channelId": ch, "message": "once", "messageId": "k"});
    let first = send(&hub, &conn, entity, payload.clone()).await.unwrap();
    assert!(!first.repeat);
    rec.take();
    let again = send(&hub, &conn, entity, payload).await.unwrap();
    assert!(again.repeat);
    assert_eq!(again.message, first.message);
    let sent = rec.take();
    assert_eq!(sent.len(), 1, "only the acknowledgement: {sent:?}");
    let Sent::Conn { event, payload, .. } = &sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!(event, "messageAck");
    assert_eq!(payload["messageId"], first.message.id.to_string());
    assert_eq!(payload["clientMessageId"], "k");
    assert_eq!(payload["repeat"], true);
    assert_eq!(agents.try_recv().unwrap().message.id, first.message.id);
    assert!(agents.try_recv().is_err(), "agents see the message once");
    assert_eq!(store.last_seq().await.unwrap(), first.message.seq);
}

/// A cluster link that carries nothing: the test hands "other nodes'" commits in itself.
struct NoLink;

#[async_trait]
impl ClusterLink for NoLink {
    async fn publish_commits(&self, _: &[Arc<Committed>]) {}
    fn interest(&self, _: Uuid, _: bool) {}
}

/// The broadcasts a channel got so far, as message texts in delivery order.
fn broadcasts(sent: &[Sent]) -> Vec<(Uuid, String)> {
    sent.iter()
        .filter_map(|s| match s {
            Sent::Channel {
                channel,
                event,
                payload,
                ..
            } if event == "messageBroadcast" => {
                Some((*channel, payload["text"].as_str().unwrap_or("").to_owned()))
            }
            _ => None,
        })
        .collect()
}

/// Order is per channel: another node's message missing in channel X (its publish lost) holds
/// back X's later messages until the gap is filled from storage, but not channel Y's.
#[tokio::test]
async fn a_gap_in_one_channel_does_not_delay_another() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let rec = Arc::new(Recorder::default());
    let hub = Hub::start_clustered(
        store.clone(),
        rec.clone(),
        rec.clone(),
        HubConfig::default(),
        Some(Arc::new(NoLink)),
        Arc::new(MemoryPresence::new(std::time::Duration::from_secs(60))),
    )
    .await
    .unwrap();
    let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
    let mut infos = Vec::new();
    for id in [x, y] {
        let now = confab_protocol::now_ms();
        let c = hub
            .create_channel(
                confab_store::Channel {
                    id,
                    message_server_id: hub.default_server(),
                    name: "c".into(),
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
        infos.push(Arc::new(ChannelInfo::from_channel(&c)));
    }
    let conn = ConnId("member".into());
    let entity = Uuid::new_v4();
    hub.connect(&conn, entity, false).await;
    for ch in [x, y] {
        let Command::Join(join) = command(ClientEvent::Join, json!({"channelId": ch})) else {
            unreachable!()
        };
        hub.join(&conn, entity, &join, false).await.unwrap();
    }

    // Another node commits x1, x2 and y1; only x2 and y1 reach this node.
    let new = |ch: Uuid, text: &str| confab_store::NewMessage {
        id: confab_store::new_message_id(),
        channel_id: ch,
        author_id: "other".into(),
        content: text.into(),
        created_at: confab_protocol::now_ms(),
        ..Default::default()
    };
    let stored = store
        .append_messages(&[new(x, "x1"), new(x, "x2"), new(y, "y1")])
        .await
        .unwrap();
    assert_eq!(
        stored.iter().map(|m| m.offset).collect::<Vec<_>>(),
        [1, 2, 1]
    );
    let committed = |i: usize, info: &Arc<ChannelInfo>| {
        Arc::new(Committed {
            message: stored[i].clone(),
            channel: info.clone(),
            repeat: false,
        })
    };
    rec.take();
    hub.remote_commits(vec![committed(1, &infos[0]), committed(2, &infos[1])])
        .await;

    // x1 comes from storage once the gap has waited its turn; everything arrives.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = Vec::new();
    while seen.len() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        seen.extend(broadcasts(&rec.take()));
    }
    assert_eq!(
        seen,
        vec![
            (y, "y1".to_owned()),
            (x, "x1".to_owned()),
            (x, "x2".to_owned())
        ],
        "y1 goes out at once; x2 waits for x1"
    );
}
