//! Property tests (a fuzz harness) over inbound decoding: for every client event, any JSON
//! payload — random values, near-valid payloads with fields of the wrong type, huge strings,
//! deep nesting, odd Unicode — decodes to a command or a refusal, never a panic; and what
//! decodes satisfies the invariants the hub relies on.

use confab_protocol::inbound::{ClientEvent, Command, decode};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "[0-9a-fA-F-]{36}".prop_map(Value::String),
        Just(json!("00000000-0000-0000-0000-000000000000")),
        Just(json!("")),
        Just(json!("\u{0}\u{FEFF}\u{10FFFF}")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Field names the decoder looks at, and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "payload",
            "channelId",
            "roomId",
            "channel_id",
            "messageServerId",
            "serverId",
            "message_server_id",
            "senderId",
            "entityId",
            "userId",
            "author_id",
            "senderName",
            "entityName",
            "message",
            "text",
            "content",
            "messageId",
            "metadata",
            "attachments",
            "source",
            "inReplyToMessageId",
            "targetUserId",
            "isTyping",
            "lastMessageId",
            "since",
            "agentId",
            "agentName",
            "level",
            "isDm",
            "channelType",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z_]{1,12}",
    ]
}

/// A payload close to a valid one, with some fields replaced by arbitrary values.
fn near_valid() -> impl Strategy<Value = Value> {
    let base = prop_oneof![
        Just(json!({"channelId": "00000000-0000-0000-0000-000000000001"})),
        Just(
            json!({"channelId": "general", "message": "hi", "senderId": "00000000-0000-0000-0000-000000000002", "messageServerId": "00000000-0000-0000-0000-000000000000"})
        ),
        Just(json!({"roomId": "r", "text": "t", "userId": "u"})),
        Just(json!({"channelId": "c", "isTyping": true})),
        Just(json!({"level": "warn", "agentName": "Eliza"})),
    ];
    (
        base,
        prop::collection::vec((field_name(), any_json()), 0..4),
        any::<u8>(),
    )
        .prop_map(|(mut v, replacements, t)| {
            for (k, r) in replacements {
                v[k] = r;
            }
            // Sometimes wrap it in the `message` envelope, with any type number.
            if t % 2 == 0 {
                json!({"type": t % 5, "payload": v})
            } else {
                v
            }
        })
}

fn check(kind: ClientEvent, data: Value) {
    match decode(kind, data) {
        Ok(Command::Send(req)) => {
            // A decoded message always names its channel; text is a string.
            let _ = (req.channel.id, req.text.len());
        }
        Ok(Command::Join(req)) => {
            let _ = req.channel.id;
        }
        Ok(_) => {}
        Err(refusal) => assert!(!refusal.error.to_string().is_empty()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_payload_for_any_event_never_panics(data in any_json(), i in 0usize..64) {
        let (_, kind, _) = ClientEvent::ALL[i % ClientEvent::ALL.len()];
        check(kind, data);
    }

    #[test]
    fn near_valid_payloads_never_panic(data in near_valid(), i in 0usize..64) {
        let (_, kind, _) = ClientEvent::ALL[i % ClientEvent::ALL.len()];
        check(kind, data);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn huge_and_deep_values_never_panic(len in 0usize..200_000, depth in 0usize..200, i in 0usize..64) {
        let (_, kind, _) = ClientEvent::ALL[i % ClientEvent::ALL.len()];
        let mut deep = json!("x".repeat(len));
        for _ in 0..depth {
            deep = json!({"message": deep, "channelId": "c"});
        }
        check(kind, json!({"type": 2, "payload": {"channelId": "c", "message": "x".repeat(len), "metadata": deep}}));
    }
}
