//! The Store contract, exercised against every backend: a real SQLite file in a temporary
//! directory, and the real PostgreSQL server (a fresh schema per test; `CONFAB_TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`).

use std::sync::Arc;

use confab_store::*;
use serde_json::json;
use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Where one test's data lives; `open` may be called again to "restart".
struct TestDb {
    backend: Backend,
    dir: tempfile::TempDir,
    schema: String,
}

fn pg_url() -> String {
    std::env::var("CONFAB_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl TestDb {
    fn new(backend: Backend) -> Self {
        TestDb {
            backend,
            dir: tempfile::tempdir().unwrap(),
            schema: format!("confab_test_{}", Uuid::new_v4().simple()),
        }
    }

    async fn open(&self) -> Arc<dyn Store> {
        match self.backend {
            Backend::Sqlite => Arc::new(
                SqliteStore::open(&self.dir.path().join("confab.db"), SqliteOptions::default())
                    .await
                    .unwrap(),
            ),
            Backend::Postgres => Arc::new(
                PostgresStore::open(
                    &pg_url(),
                    PostgresOptions {
                        schema: Some(self.schema.clone()),
                        ..PostgresOptions::default()
                    },
                )
                .await
                .unwrap(),
            ),
        }
    }

    async fn drop_schema(&self) {
        if let Backend::Postgres = self.backend {
            let pool = sqlx::PgPool::connect(&pg_url()).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                self.schema
            )))
            .execute(&pool)
            .await
            .unwrap();
        }
    }
}

/// Runs each contract test against both backends.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let db = super::TestDb::new(super::Backend::Sqlite);
                super::$name(&db).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                let db = super::TestDb::new(super::Backend::Postgres);
                super::$name(&db).await;
                db.drop_schema().await;
            })*
        }
    };
}

contract!(
    channels_and_participants,
    messages_in_order_with_cursors,
    failed_batch_leaves_nothing,
    agents_round_trip_and_survive_reopen,
    sessions_round_trip,
    find_reply_by_author,
    jobs_round_trip_and_trim,
    client_keys_make_repeats,
    since_includes_the_same_millisecond,
    deleting_a_server_takes_its_channels,
    full_text_search,
);

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

/// The messages' texts, in the order given.
fn texts(messages: &[StoredMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.content.as_str()).collect()
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
        client_key: None,
    }
}

async fn channels_and_participants(db: &TestDb) {
    let store = db.open().await;
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

/// Deleting a server removes its channels, their participants and messages, and nothing of
/// another server's.
async fn deleting_a_server_takes_its_channels(db: &TestDb) {
    let store = db.open().await;
    store.ensure_server(&server()).await.unwrap();
    let doomed = MessageServer {
        id: Uuid::new_v4(),
        name: "doomed".into(),
        ..server()
    };
    store.ensure_server(&doomed).await.unwrap();
    let gone = Uuid::new_v4();
    let kept = Uuid::new_v4();
    let mut in_doomed = channel(gone);
    in_doomed.message_server_id = doomed.id;
    in_doomed.alias = None;
    store
        .create_channel(&in_doomed, &["p".into()])
        .await
        .unwrap();
    let mut in_default = channel(kept);
    in_default.alias = None;
    store
        .create_channel(&in_default, &["p".into()])
        .await
        .unwrap();
    let stored = store
        .append_messages(&[message(gone, "bye", 5), message(kept, "stay", 6)])
        .await
        .unwrap();

    assert!(store.delete_server(doomed.id).await.unwrap());
    assert!(store.get_server(doomed.id).await.unwrap().is_none());
    assert!(store.get_channel(gone).await.unwrap().is_none());
    assert!(store.participants(gone).await.unwrap().is_empty());
    assert!(store.get_message(stored[0].id).await.unwrap().is_none());
    assert!(store.get_channel(kept).await.unwrap().is_some());
    assert_eq!(
        texts(&store.recent_messages(kept, 10, None).await.unwrap()),
        vec!["stay"]
    );
    assert!(!store.delete_server(doomed.id).await.unwrap());
}

/// Search finds whole words in any case, every word required, ranked (the better match
/// first), filtered and paged; edits and deletions are searched as they now are; query
/// syntax in the words is taken literally.
async fn full_text_search(db: &TestDb) {
    let store = db.open().await;
    store.ensure_server(&server()).await.unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for id in [a, b] {
        let mut c = channel(id);
        c.alias = None;
        store.create_channel(&c, &[]).await.unwrap();
    }
    let mut batch = vec![
        message(a, "The quick brown fox", 10),
        message(a, "fox fox fox, a fox den of foxes and a fox", 11),
        message(a, "nothing to see", 12),
        message(b, "a FOX in channel b", 13),
        message(a, "quick thinking", 14),
    ];
    batch[4].author_id = "author-x".into();
    let stored = store.append_messages(&batch).await.unwrap();
    let find = |words: &str, f: &dyn Fn(&mut MessageSearch)| {
        let mut s = MessageSearch {
            words: MessageSearch::words_of(words, 16),
            ..Default::default()
        };
        f(&mut s);
        s
    };
    let all = |_: &mut MessageSearch| {};

    let hits = store
        .search_messages(&find("fox", &all), 10, 0)
        .await
        .unwrap();
    assert_eq!(hits.len(), 3, "{:?}", texts(&hits));
    // The message that is mostly "fox" ranks first.
    assert_eq!(hits[0].id, stored[1].id);
    assert!(texts(&hits).contains(&"a FOX in channel b"));
    // Every word is required; "foxes" is not "fox".
    assert_eq!(
        texts(
            &store
                .search_messages(&find("quick FOX", &all), 10, 0)
                .await
                .unwrap()
        ),
        vec!["The quick brown fox"]
    );
    // Filters: channel, author, time.
    let in_b = find("fox", &|s| s.channel = Some(b));
    assert_eq!(
        texts(&store.search_messages(&in_b, 10, 0).await.unwrap()),
        vec!["a FOX in channel b"]
    );
    let by_x = find("quick", &|s| s.author = Some("author-x".into()));
    assert_eq!(
        texts(&store.search_messages(&by_x, 10, 0).await.unwrap()),
        vec!["quick thinking"]
    );
    let early = find("fox", &|s| {
        s.from_ms = Some(10);
        s.to_ms = Some(11);
    });
    assert_eq!(store.search_messages(&early, 10, 0).await.unwrap().len(), 2);
    // Pages: disjoint, together the whole result, in rank order.
    let p1 = store
        .search_messages(&find("fox", &all), 2, 0)
        .await
        .unwrap();
    let p2 = store
        .search_messages(&find("fox", &all), 2, 2)
        .await
        .unwrap();
    assert_eq!(p1.len(), 2);
    assert_eq!(p2.len(), 1);
    let paged: Vec<Uuid> = p1.iter().chain(&p2).map(|m| m.id).collect();
    assert_eq!(paged, hits.iter().map(|m| m.id).collect::<Vec<_>>());
    // Query syntax is just words.
    for weird in [
        "\"fox",
        "fox OR nothing",
        "fox*",
        "NEAR(fox see)",
        "content:fox",
        "-fox",
        "'",
    ] {
        store
            .search_messages(&find(weird, &all), 10, 0)
            .await
            .unwrap();
    }
    assert!(
        store
            .search_messages(&find("", &all), 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    // An edit is searched as edited; a deleted message is gone.
    store
        .update_message(
            stored[2].id,
            &MessageUpdate {
                content: Some("a fox after all".into()),
                updated_at: 20,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .search_messages(&find("nothing", &all), 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .search_messages(&find("fox", &all), 10, 0)
            .await
            .unwrap()
            .len(),
        4
    );
    store.delete_message(b, stored[3].id).await.unwrap();
    assert_eq!(
        store
            .search_messages(&find("fox", &all), 10, 0)
            .await
            .unwrap()
            .len(),
        3
    );
}

/// A batch is one transaction: when one of its messages cannot be stored (here a duplicate id,
/// spread over two insert chunks), none is, and the next batch is stored with the next seqs.
async fn failed_batch_leaves_nothing(db: &TestDb) {
    let store = db.open().await;
    store.ensure_server(&server()).await.unwrap();
    let ch = Uuid::new_v4();
    store.create_channel(&channel(ch), &[]).await.unwrap();
    let first = store
        .append_messages(&[message(ch, "first", 1000)])
        .await
        .unwrap();

    let mut bad: Vec<_> = (0..300)
        .map(|i| message(ch, &format!("bad{i}"), 1001))
        .collect();
    bad[299].id = bad[0].id;
    assert!(store.append_messages(&bad).await.is_err());
    assert_eq!(store.last_seq().await.unwrap(), first[0].seq);
    assert!(store.get_message(bad[0].id).await.unwrap().is_none());

    let next = store
        .append_messages(&[message(ch, "next", 1002), message(ch, "after", 1002)])
        .await
        .unwrap();
    assert_eq!(next[0].seq, first[0].seq + 1);
    assert_eq!(next[1].seq, first[0].seq + 2);
    let recent = store.recent_messages(ch, 10, None).await.unwrap();
    assert_eq!(texts(&recent), ["after", "next", "first"]);
}

async fn messages_in_order_with_cursors(db: &TestDb) {
    let store = db.open().await;
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
    assert_eq!(texts(&recent), ["m449", "m448", "m447"]);
    let older = store.recent_messages(ch, 2, Some(1002)).await.unwrap();
    assert_eq!(texts(&older), ["m1", "m0"]);

    let after = store
        .messages_after(ch, Cursor::Seq(stored[10].seq), stored[14].seq, 100)
        .await
        .unwrap();
    assert_eq!(texts(&after), ["m11", "m12", "m13", "m14"]);
    let since = store
        .messages_after(ch, Cursor::Time(1447), i64::MAX, 100)
        .await
        .unwrap();
    assert_eq!(texts(&since), ["m448", "m449"]);

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

    // Any text comes back exactly, NUL included (PostgreSQL's text type cannot hold it).
    let odd = store
        .append_messages(&[message(ch, "nul\0 ünï 🎉\n\"{}\"", 6000)])
        .await
        .unwrap();
    assert_eq!(
        store.get_message(odd[0].id).await.unwrap().unwrap().content,
        "nul\0 ünï 🎉\n\"{}\""
    );
    assert!(store.delete_message(ch, odd[0].id).await.unwrap());

    assert!(store.delete_message(ch, stored[0].id).await.unwrap());
    assert!(!store.delete_message(ch, stored[0].id).await.unwrap());
    assert_eq!(store.clear_channel(ch).await.unwrap(), 449);

    // Sequence numbers survive a reopen.
    let last = store.last_seq().await.unwrap();
    drop(store);
    let reopened = db.open().await;
    assert!(reopened.last_seq().await.unwrap() <= last);
    let next = reopened
        .append_messages(&[message(ch, "after", 9)])
        .await
        .unwrap();
    assert!(next[0].seq > 0);
}

async fn agents_round_trip_and_survive_reopen(db: &TestDb) {
    let id = Uuid::new_v4();
    {
        let store = db.open().await;
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
    let store = db.open().await;
    let got = store.get_agent(id).await.unwrap().unwrap();
    assert!(!got.enabled);
    assert_eq!(got.created_at, 5);
    assert_eq!(got.character["unknownField"]["kept"], json!(true));
    assert!(store.delete_agent(id).await.unwrap());
    assert!(!store.delete_agent(id).await.unwrap());
    assert!(store.get_agent(id).await.unwrap().is_none());
}

async fn sessions_round_trip(db: &TestDb) {
    let store = db.open().await;
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

async fn find_reply_by_author(db: &TestDb) {
    let store = db.open().await;
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
        client_key: None,
    };
    let answer = Uuid::new_v4();
    store
        .append_messages(&[
            mk(question, "user", None),
            mk(answer, "agent-a", Some(question)),
        ])
        .await
        .unwrap();
    assert_eq!(
        store
            .find_reply(question, "agent-a")
            .await
            .unwrap()
            .map(|m| m.id),
        Some(answer)
    );
    assert!(
        store
            .find_reply(question, "agent-b")
            .await
            .unwrap()
            .is_none()
    );
}

/// Two nodes appending to one PostgreSQL database at once: every sequence number is used once,
/// with no gap, and within each node's batches in the order given.
#[tokio::test]
async fn postgres_nodes_share_one_sequence() {
    let db = TestDb::new(Backend::Postgres);
    let a = db.open().await;
    let b = db.open().await;
    a.ensure_server(&server()).await.unwrap();
    let ch = Uuid::new_v4();
    a.create_channel(&channel(ch), &[]).await.unwrap();
    let node = |store: Arc<dyn Store>, name: &'static str| async move {
        let mut seqs = Vec::new();
        for round in 0..40 {
            let batch: Vec<_> = (0..5)
                .map(|i| message(ch, &format!("{name}-{round}-{i}"), 1))
                .collect();
            for m in store.append_messages(&batch).await.unwrap() {
                seqs.push(m.seq);
            }
        }
        seqs
    };
    let (sa, sb) = tokio::join!(
        tokio::spawn(node(a.clone(), "a")),
        tokio::spawn(node(b.clone(), "b"))
    );
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert!(sa.windows(2).all(|w| w[0] < w[1]));
    assert!(sb.windows(2).all(|w| w[0] < w[1]));
    let mut all: Vec<i64> = sa.into_iter().chain(sb).collect();
    all.sort();
    assert_eq!(all, (1..=400).collect::<Vec<i64>>());
    assert_eq!(b.last_seq().await.unwrap(), 400);
    let stored = a
        .messages_after(ch, Cursor::Seq(0), i64::MAX, 1000)
        .await
        .unwrap();
    assert_eq!(stored.len(), 400);
    db.drop_schema().await;
}

async fn jobs_round_trip_and_trim(db: &TestDb) {
    let store = db.open().await;
    let mut jobs = Vec::new();
    for i in 0..5 {
        let job = JobRecord {
            id: Uuid::new_v4(),
            agent_id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            prompt: format!("p{i}"),
            status: "pending".into(),
            result: None,
            error: None,
            metadata: json!({"i": i}),
            created_at: 100 + i,
            expires_at: 200 + i,
        };
        store.put_job(&job).await.unwrap();
        jobs.push(job);
    }
    jobs[4].status = "completed".into();
    jobs[4].result = Some(json!({"message": {"content": "hi"}}));
    store.put_job(&jobs[4]).await.unwrap();
    assert_eq!(
        store.get_job(jobs[4].id).await.unwrap(),
        Some(jobs[4].clone())
    );
    let listed = store.list_jobs().await.unwrap();
    assert_eq!(
        listed.iter().map(|j| j.prompt.as_str()).collect::<Vec<_>>(),
        ["p4", "p3", "p2", "p1", "p0"]
    );
    assert_eq!(store.trim_jobs(2).await.unwrap(), 3);
    assert_eq!(store.list_jobs().await.unwrap().len(), 2);
    assert!(store.get_job(jobs[0].id).await.unwrap().is_none());
}

/// A message with the same author and client key as one stored before (or earlier in the same
/// batch) is a repeat: not stored, answered with the original, and the batch around it commits
/// with sequence numbers that leave no gap. The key survives a reopen; another author's key is
/// another key; expired keys no longer make repeats.
async fn client_keys_make_repeats(db: &TestDb) {
    let store = db.open().await;
    store.ensure_server(&server()).await.unwrap();
    let ch = Uuid::new_v4();
    store.create_channel(&channel(ch), &[]).await.unwrap();
    let keyed = |author: &str, key: &str, text: &str, at: i64| NewMessage {
        author_id: author.into(),
        client_key: Some(key.into()),
        ..message(ch, text, at)
    };
    let first = store
        .append_messages(&[keyed("alice", "k1", "first", 1000)])
        .await
        .unwrap()
        .remove(0);

    let batch = vec![
        keyed("alice", "k1", "resent", 2000),
        keyed("bob", "k1", "bob's own k1", 2000),
        keyed("alice", "k2", "new", 2000),
        message(ch, "no key", 2000),
        keyed("alice", "k2", "new, twice in one batch", 2000),
    ];
    let outcomes = store.insert_messages(&batch).await.unwrap();
    assert_eq!(outcomes[0], Appended::Repeat(Box::new(first.clone())));
    assert_eq!(outcomes[1], Appended::New(first.seq + 1));
    assert_eq!(outcomes[2], Appended::New(first.seq + 2));
    assert_eq!(outcomes[3], Appended::New(first.seq + 3));
    match &outcomes[4] {
        Appended::Repeat(m) => {
            assert_eq!(
                (m.id, m.seq, m.content.as_str()),
                (batch[2].id, first.seq + 2, "new")
            )
        }
        other => panic!("expected a repeat of the batch's own k2, got {other:?}"),
    }
    assert_eq!(store.last_seq().await.unwrap(), first.seq + 3);
    let stored = store
        .messages_after(ch, Cursor::Seq(0), i64::MAX, 100)
        .await
        .unwrap();
    assert_eq!(texts(&stored), ["first", "bob's own k1", "new", "no key"]);

    // After a restart, storage still knows the key.
    drop(store);
    let store = db.open().await;
    let again = store
        .append_messages(&[keyed("alice", "k1", "after restart", 3000)])
        .await
        .unwrap();
    assert_eq!(again[0], first);
    assert_eq!(store.last_seq().await.unwrap(), first.seq + 3);

    // Keys older than the window are forgotten in bounded steps; then the id is new again.
    assert_eq!(store.expire_client_keys(1500, 100).await.unwrap(), 1);
    assert_eq!(store.expire_client_keys(1500, 100).await.unwrap(), 0);
    let fresh = store
        .insert_messages(&[
            keyed("alice", "k1", "k1 after expiry", 4000),
            keyed("alice", "k2", "k2 kept", 4000),
        ])
        .await
        .unwrap();
    assert_eq!(fresh[0], Appended::New(first.seq + 4));
    assert!(matches!(&fresh[1], Appended::Repeat(m) if m.id == batch[2].id));
}

/// `Since` includes every message of that millisecond; `Time` (paging's `after`) excludes them.
async fn since_includes_the_same_millisecond(db: &TestDb) {
    let store = db.open().await;
    store.ensure_server(&server()).await.unwrap();
    let ch = Uuid::new_v4();
    store.create_channel(&channel(ch), &[]).await.unwrap();
    let batch: Vec<_> = ["before", "a", "b", "c", "later"]
        .iter()
        .zip([4999, 5000, 5000, 5000, 5001])
        .map(|(text, at)| message(ch, text, at))
        .collect();
    store.append_messages(&batch).await.unwrap();
    let since = store
        .messages_after(ch, Cursor::Since(5000), i64::MAX, 100)
        .await
        .unwrap();
    assert_eq!(texts(&since), ["a", "b", "c", "later"]);
    let after = store
        .messages_after(ch, Cursor::Time(5000), i64::MAX, 100)
        .await
        .unwrap();
    assert_eq!(texts(&after), ["later"]);
}

/// Two nodes sending the same author's key at the same moment: storage keeps one message, and
/// both nodes answer with it.
#[tokio::test]
async fn postgres_nodes_agree_on_repeats() {
    let db = TestDb::new(Backend::Postgres);
    let a = db.open().await;
    let b = db.open().await;
    a.ensure_server(&server()).await.unwrap();
    let ch = Uuid::new_v4();
    a.create_channel(&channel(ch), &[]).await.unwrap();
    let send = |store: Arc<dyn Store>, key: String| async move {
        let m = NewMessage {
            author_id: "alice".into(),
            client_key: Some(key),
            ..message(ch, "race", 1)
        };
        store.append_messages(&[m]).await.unwrap().remove(0)
    };
    for round in 0..20 {
        let key = format!("k{round}");
        let (x, y) = tokio::join!(
            tokio::spawn(send(a.clone(), key.clone())),
            tokio::spawn(send(b.clone(), key))
        );
        assert_eq!(x.unwrap(), y.unwrap());
    }
    let stored = a
        .messages_after(ch, Cursor::Seq(0), i64::MAX, 1000)
        .await
        .unwrap();
    assert_eq!(stored.len(), 20);
    assert_eq!(a.last_seq().await.unwrap(), 20);
    db.drop_schema().await;
}
