//! Property tests over the validation issue 5 added in front of the hub: credentials from any
//! handshake, tokens that are not tokens, query strings, log filters, message sizes. Nothing
//! panics; nothing invalid is accepted.

use axum::http::Request;
use confab_hub::ConnId;
use confab_server::auth::{Auth, AuthSettings, JwtSettings, Trust, query_param};
use confab_server::limits::{LimitSettings, Limits};
use confab_server::logs::LogHub;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(vec![
                        "apiKey",
                        "token",
                        "entityId",
                        "level",
                        "agentId",
                        "category",
                        "agentName"
                    ])
                    .prop_map(str::to_owned),
                    "[a-z]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn auth() -> std::sync::Arc<Auth> {
    Auth::new(&AuthSettings {
        api_keys: vec!["the-key".into()],
        admin_keys: vec!["the-admin-key".into()],
        jwt: JwtSettings {
            secret: Some("the-secret".into()),
            ..JwtSettings::default()
        },
    })
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn handshakes_never_panic_and_only_the_key_passes(
        auth_obj in any_json(),
        query in "[a-zA-Z0-9=&%.-]{0,80}",
        header in "[ -~]{0,60}",
    ) {
        let a = auth();
        let mut b = Request::builder().uri(format!("/socket.io/?{query}"));
        if let Ok(v) = axum::http::HeaderValue::from_str(&header) {
            b = b.header("x-api-key", v.clone()).header("authorization", v);
        }
        let Ok(req) = b.body(()) else { return Ok(()) };
        let parts = req.into_parts().0;
        if let Ok(p) = a.socket(Some(&auth_obj), &parts) {
            // Random input passes only with the key itself: no random string is a signed token.
            let key_given = auth_obj.get("apiKey").and_then(Value::as_str) == Some("the-key")
                || header.trim() == "the-key"
                || header
                    .trim()
                    .split_once(' ')
                    .is_some_and(|(s, t)| s.eq_ignore_ascii_case("bearer") && t.trim() == "the-key")
                || query_param(&query, "apiKey").as_deref() == Some("the-key");
            prop_assert!(key_given, "{p:?}");
            // The API key grants nothing: no random input makes an operator or a verified
            // entity.
            prop_assert!(!p.operator, "{p:?}");
            prop_assert_eq!(p.trust, Trust::Unverified);
        }
    }

    #[test]
    fn token_strings_never_panic_and_never_pass(t in "[A-Za-z0-9_.=+/-]{0,300}") {
        let a = auth();
        let req = Request::builder().uri("/socket.io/").body(()).unwrap().into_parts().0;
        let given = json!({ "token": t });
        let refused = a.socket(Some(&given), &req).is_err();
        prop_assert!(refused);
        // Not even next to the valid key: a token that fails verification is never ignored.
        let with_key = json!({ "token": t, "apiKey": "the-key" });
        prop_assert!(t.is_empty() || a.socket(Some(&with_key), &req).is_err());
    }

    #[test]
    fn token_shaped_headers_never_pass_over_rest(
        header in "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,40}",
        entity in "[ -~]{0,40}",
    ) {
        let a = auth();
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-api-key", "the-key".parse().unwrap());
        if let Ok(v) = format!("Bearer {header}").parse() {
            h.insert("authorization", v);
        }
        if let Ok(v) = entity.parse() {
            h.insert("x-entity-id", v);
        }
        prop_assert!(a.http(&h).is_err());
    }

    #[test]
    fn query_params_never_panic(q in ".{0,100}", name in "[a-zA-Z]{1,8}") {
        let _ = query_param(&q, &name);
    }

    #[test]
    fn log_filters_never_panic(payload in any_json()) {
        let logs = LogHub::new();
        let conn = ConnId("c".into());
        let r = logs.set_log_filter(&conn, payload.clone());
        if !payload.is_object() {
            prop_assert!(!r.success);
        }
        let _ = logs.recent(0, 10);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn sizes_are_enforced(
        text in ".{0,300}",
        meta in any_json(),
        max_chars in 1usize..200,
        max_bytes in 1usize..400,
    ) {
        let l = Limits::new(LimitSettings {
            max_message_chars: max_chars,
            max_metadata_bytes: max_bytes,
            ..LimitSettings::default()
        });
        let map = match &meta { Value::Object(m) => m.clone(), _ => Map::new() };
        let ok = l.message_size(&text, &map, None).is_ok();
        let fits = text.chars().count() <= max_chars
            && serde_json::to_vec(&map).unwrap().len() <= max_bytes;
        prop_assert_eq!(ok, fits);
    }
}
