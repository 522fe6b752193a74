//! The Store contract, exercised against every backend: a real SQLite file in a temporary
//! directory, and the real PostgreSQL server (a fresh schema per test; `CONFAB_TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`).

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::Connection;

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
    each_channel_has_its_own_order,
    an_old_database_is_upgraded_in_order,
);

/// Where a new message was stored.
fn at(outcome: &Appended) -> Position {
    match outcome {
        Appended::New(at) => *at,
        other => panic!("expected a new message, got {other:?}"),
    }
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
/// spread over two insert chunks), none is, and the next batch is stored with the next offsets.
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
    assert_eq!(
        store
            .channel_position(ch)
            .await
            .unwrap()
            .unwrap()
            .last_offset,
        first[0].offset
    );
    assert!(store.get_message(bad[0].id).await.unwrap().is_none());

    let next = store
        .append_messages(&[message(ch, "next", 1002), message(ch, "after", 1002)])
        .await
        .unwrap();
    assert_eq!(next[0].offset, first[0].offset + 1);
    assert_eq!(next[1].offset, first[0].offset + 2);
    assert!(first[0].seq < next[0].seq && next[0].seq < next[1].seq);
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
    assert_eq!(stored[0].offset, 1);
    assert!(stored.windows(2).all(|w| w[1].offset == w[0].offset + 1));
    assert!(stored.windows(2).all(|w| w[1].seq > w[0].seq));
    assert_eq!(store.last_seq().await.unwrap(), stored[449].seq);

    let recent = store.recent_messages(ch, 3, None).await.unwrap();
    assert_eq!(texts(&recent), ["m449", "m448", "m447"]);
    let older = store.recent_messages(ch, 2, Some(1002)).await.unwrap();
    assert_eq!(texts(&older), ["m1", "m0"]);

    let after = store
        .messages_after(
            ch,
            Cursor::Offset(stored[10].offset),
            stored[14].offset,
            100,
        )
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
    let before_clear = store.channel_position(ch).await.unwrap().unwrap();
    assert_eq!(before_clear.last_offset, 451);
    assert_eq!(store.clear_channel(ch).await.unwrap(), 449);
    let cleared = store.channel_position(ch).await.unwrap().unwrap();
    assert!(
        cleared.epoch > before_clear.epoch,
        "a clear starts a new epoch"
    );
    assert_eq!(cleared.last_offset, 451, "offsets go on");

    // Sequence numbers and offsets survive a reopen.
    let last = store.last_seq().await.unwrap();
    drop(store);
    let reopened = db.open().await;
    assert!(reopened.last_seq().await.unwrap() <= last);
    let next = reopened
        .append_messages(&[message(ch, "after", 9)])
        .await
        .unwrap();
    assert!(next[0].seq > 0);
    assert_eq!((next[0].offset, next[0].epoch), (452, cleared.epoch));
    assert_eq!(
        next[0].created_at, 6000,
        "never earlier than the channel's last message"
    );
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

/// Two nodes appending to one channel of one PostgreSQL database at once: every offset of the
/// channel is used once, with no gap, within each node's batches in the order given; offset
/// order is row id order and creation times never go backwards.
#[tokio::test]
async fn postgres_nodes_share_one_channel_sequence() {
    let db = TestDb::new(Backend::Postgres);
    let a = db.open().await;
    let b = db.open().await;
    a.ensure_server(&server()).await.unwrap();
    let ch = Uuid::new_v4();
    a.create_channel(&channel(ch), &[]).await.unwrap();
    let node = |store: Arc<dyn Store>, name: &'static str| async move {
        let mut offsets = Vec::new();
        for round in 0..40 {
            let batch: Vec<_> = (0..5)
                .map(|i| message(ch, &format!("{name}-{round}-{i}"), 1))
                .collect();
            for m in store.append_messages(&batch).await.unwrap() {
                offsets.push(m.offset);
            }
        }
        offsets
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
    assert_eq!(
        b.channel_position(ch).await.unwrap().unwrap().last_offset,
        400
    );
    let stored = a
        .messages_after(ch, Cursor::Offset(0), i64::MAX, 1000)
        .await
        .unwrap();
    assert_eq!(stored.len(), 400);
    assert!(stored.windows(2).all(|w| w[0].offset + 1 == w[1].offset));
    assert!(stored.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        stored
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at)
    );
    db.drop_schema().await;
}

/// No lock is shared between channels: while another session holds channel A's row (as an
/// append to A does until it commits), an append to channel B commits, and A's waits.
#[tokio::test]
async fn postgres_appends_to_other_channels_do_not_wait() {
    let db = TestDb::new(Backend::Postgres);
    let store = db.open().await;
    store.ensure_server(&server()).await.unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    store.create_channel(&channel(a), &[]).await.unwrap();
    store.create_channel(&channel(b), &[]).await.unwrap();

    let mut other = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET search_path = {}",
        db.schema
    )))
    .execute(&mut other)
    .await
    .unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SELECT last_offset FROM channels WHERE id = $1 FOR NO KEY UPDATE")
        .bind(a.to_string())
        .execute(&mut other)
        .await
        .unwrap();

    let to_b = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        store.append_messages(&[message(b, "b goes through", 1)]),
    )
    .await
    .expect("an append to B must not wait for A's lock")
    .unwrap();
    assert_eq!(to_b[0].offset, 1);

    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.append_messages(&[message(a, "a waits", 1)]).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "an append to A waits for A's lock");
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    let to_a = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
        .await
        .expect("A's append goes on once the lock is released")
        .unwrap()
        .unwrap();
    assert_eq!(to_a[0].offset, 1);
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
    assert_eq!(at(&outcomes[1]).offset, first.offset + 1);
    assert_eq!(at(&outcomes[2]).offset, first.offset + 2);
    assert_eq!(at(&outcomes[3]).offset, first.offset + 3);
    match &outcomes[4] {
        Appended::Repeat(m) => {
            assert_eq!(
                (m.id, m.offset, m.content.as_str()),
                (batch[2].id, first.offset + 2, "new")
            )
        }
        other => panic!("expected a repeat of the batch's own k2, got {other:?}"),
    }
    assert_eq!(store.last_seq().await.unwrap(), at(&outcomes[3]).seq);
    let stored = store
        .messages_after(ch, Cursor::Offset(0), i64::MAX, 100)
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
    assert_eq!(
        store
            .channel_position(ch)
            .await
            .unwrap()
            .unwrap()
            .last_offset,
        first.offset + 3
    );

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
    assert_eq!(at(&fresh[0]).offset, first.offset + 4);
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
        .messages_after(ch, Cursor::Offset(0), i64::MAX, 1000)
        .await
        .unwrap();
    assert_eq!(stored.len(), 20);
    assert_eq!(
        a.channel_position(ch).await.unwrap().unwrap().last_offset,
        20
    );
    db.drop_schema().await;
}

/// Each channel counts its own offsets, whatever else is appended in between; a message is
/// never stamped earlier than its channel's previous one; gap filling reads one channel's range;
/// a channel deleted and created again under the same id starts over in a later epoch.
async fn each_channel_has_its_own_order(db: &TestDb) {
    let store = db.open().await;
    store.ensure_server(&server()).await.unwrap();
    let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
    store.create_channel(&channel(x), &[]).await.unwrap();
    store.create_channel(&channel(y), &[]).await.unwrap();
    let stored = store
        .append_messages(&[
            message(x, "x1", 5000),
            message(y, "y1", 100),
            message(x, "x2", 4000),
            message(y, "y2", 200),
        ])
        .await
        .unwrap();
    let got: Vec<(&str, i64, i64)> = stored
        .iter()
        .map(|m| (m.content.as_str(), m.offset, m.created_at))
        .collect();
    assert_eq!(
        got,
        [
            ("x1", 1, 5000),
            ("y1", 1, 100),
            ("x2", 2, 5000),
            ("y2", 2, 200)
        ]
    );
    let x3 = store
        .append_messages(&[message(x, "x3", 10)])
        .await
        .unwrap()
        .remove(0);
    assert_eq!((x3.offset, x3.created_at), (3, 5000));
    assert_eq!(
        store.get_message(x3.id).await.unwrap().unwrap().position(),
        x3.position()
    );

    assert_eq!(
        texts(&store.messages_in_offset_range(x, 1, 3).await.unwrap()),
        ["x2", "x3"]
    );
    assert_eq!(
        texts(&store.messages_in_offset_range(y, 0, 9).await.unwrap()),
        ["y1", "y2"]
    );
    let px = store.channel_position(x).await.unwrap().unwrap();
    assert_eq!(px.last_offset, 3);
    assert_eq!(px.epoch, x3.epoch);
    assert!(
        store
            .channel_position(Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );

    // History lists the channel in offset order, newest first.
    assert_eq!(
        texts(&store.recent_messages(x, 10, None).await.unwrap()),
        ["x3", "x2", "x1"]
    );

    assert!(store.delete_channel(x).await.unwrap());
    store.create_channel(&channel(x), &[]).await.unwrap();
    let again = store
        .append_messages(&[message(x, "x again", 1)])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(again.offset, 1);
    assert!(again.epoch > x3.epoch, "a new channel, a new epoch");
}

/// A database written by the previous schema (migrations up to 0007, one global `seq` order,
/// creation times that went backwards between nodes) is upgraded in place: each channel's
/// offsets follow the old commit order, creation times no longer go backwards, and new
/// messages continue both.
async fn an_old_database_is_upgraded_in_order(db: &TestDb) {
    let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
    // (seq, channel, text, created_at): x's third message was stamped before its second.
    let old = [
        (1, x, "x1", 1000),
        (2, y, "y1", 1001),
        (3, x, "x2", 1005),
        (4, x, "x3", 1003),
        (5, y, "y2", 1002),
        (6, x, "x4", 1006),
    ];
    let insert_old = |channel_insert: &'static str, message_insert: &'static str| {
        let mut statements = vec![
            "INSERT INTO message_servers (id, name, source_type, created_at, updated_at) \
             VALUES ('00000000-0000-0000-0000-000000000000', 'Default Server', 'eliza_default', 1, 1)"
                .to_string(),
        ];
        for c in [x, y] {
            statements.push(channel_insert.replace("{id}", &c.to_string()));
        }
        for (seq, c, text, t) in old {
            statements.push(
                message_insert
                    .replace("{seq}", &seq.to_string())
                    .replace("{id}", &Uuid::new_v4().to_string())
                    .replace("{channel}", &c.to_string())
                    .replace("{text}", text)
                    .replace("{t}", &t.to_string()),
            );
        }
        statements
    };
    match db.backend {
        Backend::Sqlite => {
            let path = db.dir.path().join("confab.db");
            let pool = sqlx::SqlitePool::connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true),
            )
            .await
            .unwrap();
            up_to_0007(sqlx::migrate!("./migrations/sqlite"))
                .run(&pool)
                .await
                .unwrap();
            for sql in insert_old(
                "INSERT INTO channels (id, message_server_id, name, type, created_at, updated_at) \
                 VALUES ('{id}', '00000000-0000-0000-0000-000000000000', 'c', 'GROUP', 1, 1)",
                "INSERT INTO central_messages (seq, id, channel_id, author_id, content, created_at, updated_at) \
                 VALUES ({seq}, '{id}', '{channel}', 'a', '{text}', {t}, {t})",
            ) {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }
        Backend::Postgres => {
            let admin = sqlx::PgPool::connect(&pg_url()).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {}", db.schema)))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_with(
                    pg_url()
                        .parse::<sqlx::postgres::PgConnectOptions>()
                        .unwrap()
                        .options([("search_path", db.schema.as_str())]),
                )
                .await
                .unwrap();
            up_to_0007(sqlx::migrate!("./migrations/postgres"))
                .run(&pool)
                .await
                .unwrap();
            for sql in insert_old(
                "INSERT INTO channels (id, message_server_id, name, type, created_at, updated_at) \
                 VALUES ('{id}', '00000000-0000-0000-0000-000000000000', 'c', 'GROUP', 1, 1)",
                "INSERT INTO central_messages (seq, id, channel_id, author_id, content, created_at, updated_at) \
                 VALUES ({seq}, '{id}', '{channel}', 'a', convert_to('{text}', 'UTF8'), {t}, {t})",
            ) {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            sqlx::query("UPDATE message_seq SET last = 6")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }

    let store = db.open().await;
    let xs = store
        .messages_after(x, Cursor::Offset(0), i64::MAX, 100)
        .await
        .unwrap();
    let got: Vec<(&str, i64, i64, i64)> = xs
        .iter()
        .map(|m| (m.content.as_str(), m.seq, m.offset, m.created_at))
        .collect();
    assert_eq!(
        got,
        [
            ("x1", 1, 1, 1000),
            ("x2", 3, 2, 1005),
            ("x3", 4, 3, 1005),
            ("x4", 6, 4, 1006)
        ]
    );
    assert_eq!(
        texts(&store.recent_messages(x, 10, None).await.unwrap()),
        ["x4", "x3", "x2", "x1"]
    );
    assert_eq!(
        texts(&store.recent_messages(y, 10, None).await.unwrap()),
        ["y2", "y1"]
    );
    assert_eq!(
        texts(
            &store
                .messages_after(y, Cursor::Offset(1), i64::MAX, 100)
                .await
                .unwrap()
        ),
        ["y2"]
    );
    assert_eq!(
        store
            .channel_position(x)
            .await
            .unwrap()
            .unwrap()
            .last_offset,
        4
    );
    let next = store
        .append_messages(&[message(x, "x5", 1004), message(y, "y3", 1)])
        .await
        .unwrap();
    assert_eq!((next[0].offset, next[0].created_at), (5, 1006));
    assert_eq!((next[1].offset, next[1].created_at), (3, 1002));
    assert!(next[0].seq > 6 && next[1].seq > next[0].seq);
    assert_eq!(next[0].epoch, xs[0].epoch);
}

/// The migrations of the schema before per-channel order.
fn up_to_0007(full: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    sqlx::migrate::Migrator {
        migrations: Cow::Owned(
            full.migrations
                .iter()
                .filter(|m| m.version <= 7)
                .cloned()
                .collect(),
        ),
        ..full
    }
}
