//! The JSON shapes the REST API returns, as ElizaOS's stores produce them: camelCase objects
//! with ISO dates, optional fields left out when empty (JavaScript drops `undefined` keys).

use confab_protocol::iso_from_ms;
use confab_store::{Channel, MessageServer, StoredMessage};
use serde_json::{Map, Value, json};

fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.into(), v);
    }
}

/// `{id, name, sourceType, sourceId?, metadata?, createdAt, updatedAt}` (§2.6).
pub fn server(s: &MessageServer) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(s.id));
    m.insert("name".into(), json!(s.name));
    m.insert("sourceType".into(), json!(s.source_type));
    put(&mut m, "sourceId", s.source_id.clone().map(Value::String));
    put(&mut m, "metadata", s.metadata.clone());
    m.insert("createdAt".into(), json!(iso_from_ms(s.created_at)));
    m.insert("updatedAt".into(), json!(iso_from_ms(s.updated_at)));
    Value::Object(m)
}

/// `{id, messageServerId, name, type, sourceType?, sourceId?, topic?, metadata?, createdAt,
/// updatedAt}` (§2.7).
pub fn channel(c: &Channel) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(c.id));
    m.insert("messageServerId".into(), json!(c.message_server_id));
    m.insert("name".into(), json!(c.name));
    m.insert("type".into(), json!(c.kind));
    put(
        &mut m,
        "sourceType",
        c.source_type.clone().map(Value::String),
    );
    put(&mut m, "sourceId", c.source_id.clone().map(Value::String));
    put(&mut m, "topic", c.topic.clone().map(Value::String));
    put(&mut m, "metadata", c.metadata.clone());
    m.insert("createdAt".into(), json!(iso_from_ms(c.created_at)));
    m.insert("updatedAt".into(), json!(iso_from_ms(c.updated_at)));
    Value::Object(m)
}

/// Whether `inReplyToRootMessageId` is written as `null` when there is none: rows read back
/// from the database carry the column (null), objects built by `createMessage` do not.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ReplyTo {
    OmitWhenNone,
    NullWhenNone,
}

/// A central message: `{id, channelId, authorId, content, rawMessage?, sourceType?, sourceId?,
/// metadata?, inReplyToRootMessageId?, createdAt, updatedAt}`.
pub fn message(msg: &StoredMessage, reply_to: ReplyTo) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(msg.id));
    m.insert("channelId".into(), json!(msg.channel_id));
    m.insert("authorId".into(), json!(msg.author_id));
    m.insert("content".into(), json!(msg.content));
    put(&mut m, "rawMessage", msg.raw_message.clone());
    put(
        &mut m,
        "sourceType",
        msg.source_type.clone().map(Value::String),
    );
    put(&mut m, "sourceId", msg.source_id.clone().map(Value::String));
    put(&mut m, "metadata", msg.metadata.clone());
    match (&msg.in_reply_to, reply_to) {
        (Some(id), _) => {
            m.insert("inReplyToRootMessageId".into(), json!(id));
        }
        (None, ReplyTo::NullWhenNone) => {
            m.insert("inReplyToRootMessageId".into(), Value::Null);
        }
        (None, ReplyTo::OmitWhenNone) => {}
    }
    m.insert("createdAt".into(), json!(iso_from_ms(msg.created_at)));
    m.insert("updatedAt".into(), json!(iso_from_ms(msg.updated_at)));
    Value::Object(m)
}

/// A message as `GET /channels/:id/messages` lists it: the stored row, `metadata` extended with
/// `thought`, `actions` and `attachments` from the raw message (attachments falling back to the
/// metadata's), plus numeric `created_at` / `updated_at`.
pub fn history_message(msg: &StoredMessage) -> Value {
    let mut v = message(msg, ReplyTo::NullWhenNone);
    let raw = msg.raw_message.as_ref().and_then(Value::as_object);
    let mut metadata = metadata_with_thought(msg);
    let attachments = raw
        .and_then(|r| r.get("attachments"))
        .filter(|a| !a.is_null())
        .or_else(|| metadata.get("attachments"))
        .cloned();
    put(&mut metadata, "attachments", attachments);
    v["metadata"] = Value::Object(metadata);
    v["created_at"] = json!(msg.created_at);
    v["updated_at"] = json!(msg.updated_at);
    v
}

/// The stored metadata plus `thought` and `actions` from the raw message (agent replies).
fn metadata_with_thought(msg: &StoredMessage) -> Map<String, Value> {
    let raw = msg.raw_message.as_ref().and_then(Value::as_object);
    let mut metadata = msg
        .metadata
        .as_ref()
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for key in ["thought", "actions"] {
        put(&mut metadata, key, raw.and_then(|r| r.get(key)).cloned());
    }
    metadata
}

/// A message as the sessions API lists it: `{id, content, authorId, isAgent, createdAt,
/// metadata}` (`isAgent` = an agent reply).
pub fn session_message(msg: &StoredMessage) -> Value {
    json!({
        "id": msg.id,
        "content": msg.content,
        "authorId": msg.author_id,
        "isAgent": msg.source_type.as_deref() == Some(confab_hub::delivery::source::AGENT_RESPONSE),
        "createdAt": iso_from_ms(msg.created_at),
        "metadata": metadata_with_thought(msg),
    })
}

/// The message as published on ElizaOS's internal bus (§3.1), which REST replies echo as
/// `userMessage`: `{id, channel_id, message_server_id, author_id, author_display_name?, content,
/// raw_message?, source_id?, source_type?, in_reply_to_message_id?, created_at, metadata?}`.
pub fn bus_message(
    msg: &StoredMessage,
    message_server_id: &Value,
    author_display_name: Option<Value>,
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(msg.id));
    m.insert("channel_id".into(), json!(msg.channel_id));
    m.insert("message_server_id".into(), message_server_id.clone());
    m.insert("author_id".into(), json!(msg.author_id));
    put(&mut m, "author_display_name", author_display_name);
    m.insert("content".into(), json!(msg.content));
    put(&mut m, "raw_message", msg.raw_message.clone());
    put(
        &mut m,
        "source_id",
        msg.source_id.clone().map(Value::String),
    );
    put(
        &mut m,
        "source_type",
        msg.source_type.clone().map(Value::String),
    );
    put(
        &mut m,
        "in_reply_to_message_id",
        msg.in_reply_to.clone().map(Value::String),
    );
    m.insert("created_at".into(), json!(msg.created_at));
    put(&mut m, "metadata", msg.metadata.clone());
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn stored() -> StoredMessage {
        StoredMessage {
            seq: 1,
            offset: 1,
            epoch: 1,
            id: Uuid::nil(),
            channel_id: Uuid::nil(),
            author_id: "a".into(),
            content: "hi".into(),
            raw_message: Some(json!({"thought": "t", "actions": ["REPLY"]})),
            in_reply_to: None,
            source_type: Some("agent_response".into()),
            source_id: None,
            metadata: Some(json!({"agentName": "Eliza", "attachments": [1]})),
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_000,
        }
    }

    #[test]
    fn history_merges_raw_fields_into_metadata() {
        let v = history_message(&stored());
        assert_eq!(v["metadata"]["thought"], "t");
        assert_eq!(v["metadata"]["actions"], json!(["REPLY"]));
        assert_eq!(v["metadata"]["attachments"], json!([1]));
        assert_eq!(v["metadata"]["agentName"], "Eliza");
        assert_eq!(v["createdAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["created_at"], 1_700_000_000_000i64);
        assert!(v["inReplyToRootMessageId"].is_null());
        assert!(v.get("sourceId").is_none());
    }

    #[test]
    fn created_message_omits_reply_to() {
        let v = message(&stored(), ReplyTo::OmitWhenNone);
        assert!(v.get("inReplyToRootMessageId").is_none());
    }
}
