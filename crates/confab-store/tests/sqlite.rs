//! The Store contract, exercised against a real SQLite file in a temporary directory.

use confab_store::*;
use serde_json::json;
use uuid::Uuid;

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("confab.db"), SqliteOptions::default())
        .await
        .unwrap();
    (dir, store)
}

fn server() -> MessageServer {
    MessageServer {
        id: Uuid::nil(),
        name: "Default Server".into(),
        source_type: "eliza_default".into(),
        source_id: None,
        metadata: None,
        created_at: 1,
        updated_at: 1,
    }
}

fn channel(id: Uuid) -> Channel {
    Channel {
        id,
        message_server_id: Uuid::nil(),
        name: "general".into(),
        kind: channel_type::GROUP.into(),
        source_type: None,
        source_id: None,
        topic: None,
        metadata: Some(json!({"a": 1})),
        alias: Some("general-room".into()),
        created_at: 10,
        updated_at: 10,
    }
}

fn message(channel: Uuid, text: &str, at: i64) -> NewMessage {
    NewMessage {
        id: Uuid::new_v4(),
        channel_id: channel,
        author_id: Uuid::new_v4().to_string(),
        content: text.into(),
        raw_message: Some(json!({"message": text})),
        in_reply_to: None,
        source_type: Some("socketio_client".into()),
        source_id: None,
        metadata: Some(json!({"user_display_name": "U"})),
        created_at: at,
    }
}

#[tokio::test]
async fn channels_and_participants() {
    let (_dir, store) = open().await;
    store.ensure_server(&server()).await.unwrap();
    store.ensure_server(&server()).await.unwrap();
    assert_eq!(store.list_servers().await.unwrap().len(), 1);

    let id = Uuid::new_v4();
    let created = store
        .create_channel(&channel(id), &["p1".into(), "p2".into()])
        .await
        .unwrap();
    assert_eq!(created.alias.as_deref(), Some("general-room"));
    // A second create keeps the first row and participants.
    let mut other = channel(id);
    other.name = "renamed".into();
    let again = store.create_channel(&other, &["p3".into()]).await.unwrap();
    assert_eq!(again.name, "general");
    assert_eq!(store.participants(id).await.unwrap(), vec!["p1", "p2"]);

    let updated = store
        .update_channel(
            id,
            &ChannelUpdate {
                name: Some("new".into()),
                participants: Some(vec!["x".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.name, "new");
    assert_eq!(store.participants(id).await.unwrap(), vec!["x"]);
    assert!(store.remove_participant(id, "x").await.unwrap());
    assert!(!store.remove_participant(id, "x").await.unwrap());
    assert!(
        store
            .update_channel(Uuid::new_v4(), &ChannelUpdate::default())
            .await
            .unwrap()
            .is_none()
    );

    assert!(store.delete_channel(id).await.unwrap());
    assert!(store.get_channel(id).await.unwrap().is_none());
    assert!(!store.delete_channel(id).await.unwrap());
}

#[tokio::test]
async fn messages_in_order_with_cursors() {
    let (dir, store) = open().await;
    store.ensure_server(&server()).await.unwrap();
    let ch = Uuid::new_v4();
    store.create_channel(&channel(ch), &[]).await.unwrap();

    let batch: Vec<_> = (0..450)
        .map(|i| message(ch, &format!("m{i}"), 1000 + i))
        .collect();
    let stored = store.append_messages(&batch).await.unwrap();
    assert_eq!(stored.len(), 450);
    assert!(stored.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(store.last_seq().await.unwrap(), stored[449].seq);

    let recent = store.recent_messages(ch, 3, None).await.unwrap();
    assert_eq!(
        recent
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>(),
        ["m449", "m448", "m447"]
    );
    let older = store.recent_messages(ch, 2, Some(1002)).await.unwrap();
    assert_eq!(
        older.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        ["m1", "m0"]
    );

    let after = store
        .messages_after(ch, Cursor::Seq(stored[10].seq), stored[14].seq, 100)
        .await
        .unwrap();
    assert_eq!(
        after.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        ["m11", "m12", "m13", "m14"]
    );
    let since = store
        .messages_after(ch, Cursor::Time(1447), i64::MAX, 100)
        .await
        .unwrap();
    assert_eq!(
        since.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        ["m448", "m449"]
    );

    // A batch with a duplicate id stores nothing.
    let mut bad = vec![message(ch, "ok", 5000), message(ch, "dup", 5001)];
    bad[1].id = stored[0].id;
    assert!(store.append_messages(&bad).await.is_err());
    assert_eq!(
        store.recent_messages(ch, 1, None).await.unwrap()[0].content,
        "m449"
    );
    // A message to a channel that does not exist is refused by the foreign key.
    assert!(
        store
            .append_messages(&[message(Uuid::new_v4(), "x", 1)])
            .await
            .is_err()
    );

    assert!(store.delete_message(ch, stored[0].id).await.unwrap());
    assert!(!store.delete_message(ch, stored[0].id).await.unwrap());
    assert_eq!(store.clear_channel(ch).await.unwrap(), 449);

    // Sequence numbers survive a reopen.
    let last = store.last_seq().await.unwrap();
    drop(store);
    let reopened = SqliteStore::open(&dir.path().join("confab.db"), SqliteOptions::default())
        .await
        .unwrap();
    assert!(reopened.last_seq().await.unwrap() <= last);
    let next = reopened
        .append_messages(&[message(ch, "after", 9)])
        .await
        .unwrap();
    assert!(next[0].seq > 0);
}

#[tokio::test]
async fn agents_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("confab.db");
    let id = Uuid::new_v4();
    {
        let store = SqliteStore::open(&path, SqliteOptions::default()).await.unwrap();
        let mut agent = AgentRecord {
            id,
            name: "Ada".into(),
            enabled: true,
            character: json!({"name": "Ada", "bio": ["x"], "unknownField": {"kept": true}}),
            created_at: 5,
            updated_at: 5,
        };
        store.put_agent(&agent).await.unwrap();
        agent.enabled = false;
        agent.updated_at = 9;
        store.put_agent(&agent).await.unwrap();
        assert_eq!(store.list_agents().await.unwrap(), vec![agent]);
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).await.unwrap();
    let got = store.get_agent(id).await.unwrap().unwrap();
    assert!(!got.enabled);
    assert_eq!(got.created_at, 5);
    assert_eq!(got.character["unknownField"]["kept"], json!(true));
    assert!(store.delete_agent(id).await.unwrap());
    assert!(!store.delete_agent(id).await.unwrap());
    assert!(store.get_agent(id).await.unwrap().is_none());
}

#[tokio::test]
async fn sessions_round_trip() {
    let (_dir, store) = open().await;
    let mut s = SessionRecord {
        id: Uuid::new_v4(),
        channel_id: Uuid::new_v4(),
        agent_id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        metadata: json!({"plan": "pro"}),
        timeout_config: json!({"timeoutMinutes": 30}),
        renewal_count: 0,
        created_at: 100,
        last_activity: 100,
        renewed_at: 100,
    };
    store.put_session(&s).await.unwrap();
    s.renewal_count = 2;
    s.last_activity = 200;
    store.put_session(&s).await.unwrap();
    assert_eq!(store.get_session(s.id).await.unwrap(), Some(s.clone()));
    assert_eq!(store.list_sessions().await.unwrap(), vec![s.clone()]);
    assert!(store.delete_session(s.id).await.unwrap());
    assert!(store.list_sessions().await.unwrap().is_empty());
}

#[tokio::test]
async fn find_reply_by_author() {
    let (_dir, store) = open().await;
    store.ensure_server(&server()).await.unwrap();
    let ch = Uuid::new_v4();
    store.create_channel(&channel(ch), &[]).await.unwrap();
    let question = Uuid::new_v4();
    let mk = |id: Uuid, author: &str, reply_to: Option<Uuid>| NewMessage {
        id,
        channel_id: ch,
        author_id: author.into(),
        content: "x".into(),
        raw_message: None,
        in_reply_to: reply_to.map(|u| u.to_string()),
        source_type: None,
        source_id: None,
        metadata: None,
        created_at: 1,
    };
    let answer = Uuid::new_v4();
    store
        .append_messages(&[mk(question, "user", None), mk(answer, "agent-a", Some(question))])
        .await
        .unwrap();
    assert_eq!(
        store.find_reply(question, "agent-a").await.unwrap().map(|m| m.id),
        Some(answer)
    );
    assert!(store.find_reply(question, "agent-b").await.unwrap().is_none());
}
