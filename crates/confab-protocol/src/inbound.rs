//! Everything a client may send, decoded from every dialect into one [`Command`].
//!
//! Dialects accepted (compat spec §1.4, seeds 000–004):
//! * the `message` envelope `{type, payload}`: 1 = join, 2 = send (ElizaOS), 0 = join (seed 002);
//!   type 1 whose payload carries message text is a send (seed 002's numbering);
//! * direct events `"0"`, `"1"`, `"2"`, `join_channel`, `room_joining`, `send_message`,
//!   `leave_channel`, `typing`, and the log-stream events;
//! * field aliases `channelId`/`roomId`, `messageServerId`/`serverId`,
//!   `senderId`/`entityId`/`userId`, `message`/`text`, `senderName`/`entityName`.
//!
//! Identifiers that are not UUIDs are mapped with [`string_to_uuid`]; nothing here touches state.

use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::ids::{ChannelRef, string_to_uuid};
use crate::texts;

/// How a client talks, which decides the extra events it gets back. Seed 000's clients
/// (`room_joining` / `send_message`) also expect `message` broadcasts and `ack` replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Eliza,
    Legacy,
}

/// The events a client may emit, by what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    /// `message` with a `{type, payload}` envelope.
    Envelope,
    /// A join whatever the payload holds (`"0"`, `join_channel`, `room_joining`).
    Join,
    /// `"1"`: a join, or a send when the payload carries message text (seed 002's numbering).
    JoinOrSend,
    /// `"2"`, `send_message`.
    Send,
    Leave,
    Typing,
    SubscribeLogs,
    UnsubscribeLogs,
    UpdateLogFilters,
}

impl ClientEvent {
    /// Every inbound event name and what it means: the one table the socket layer registers.
    pub const ALL: &'static [(&'static str, ClientEvent, Dialect)] = &[
        ("message", ClientEvent::Envelope, Dialect::Eliza),
        ("0", ClientEvent::Join, Dialect::Eliza),
        ("1", ClientEvent::JoinOrSend, Dialect::Eliza),
        ("2", ClientEvent::Send, Dialect::Eliza),
        ("join_channel", ClientEvent::Join, Dialect::Eliza),
        ("room_joining", ClientEvent::Join, Dialect::Legacy),
        ("send_message", ClientEvent::Send, Dialect::Legacy),
        ("leave_channel", ClientEvent::Leave, Dialect::Eliza),
        ("leave_room", ClientEvent::Leave, Dialect::Eliza),
        ("typing", ClientEvent::Typing, Dialect::Eliza),
        ("subscribe_logs", ClientEvent::SubscribeLogs, Dialect::Eliza),
        (
            "unsubscribe_logs",
            ClientEvent::UnsubscribeLogs,
            Dialect::Eliza,
        ),
        (
            "update_log_filters",
            ClientEvent::UpdateLogFilters,
            Dialect::Eliza,
        ),
        (
            "set_log_filter",
            ClientEvent::UpdateLogFilters,
            Dialect::Eliza,
        ),
    ];
}

/// `message`'s envelope: `{type, payload}` (type 1 join, 2 send, …, compat spec §1.2).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct Envelope {
    /// 0/1 join (1 sends when the payload has text), 2 send.
    #[schema(value_type = i64)]
    r#type: i64,
    payload: Payload,
}

impl ClientEvent {
    /// What the event does, for the API reference.
    pub fn summary(self) -> &'static str {
        match self {
            ClientEvent::Envelope => "ElizaOS's envelope: `{type, payload}`, type 1 join, 2 send",
            ClientEvent::Join => {
                "Join a channel (optionally resuming after `lastMessageId` / `since`)"
            }
            ClientEvent::JoinOrSend => "Join, or send when the payload carries message text",
            ClientEvent::Send => "Send a message (acknowledged by `messageAck`, or the callback)",
            ClientEvent::Leave => "Leave a channel",
            ClientEvent::Typing => "Typing started or stopped (`isTyping`)",
            ClientEvent::SubscribeLogs => "Receive `log_stream` events (operators)",
            ClientEvent::UnsubscribeLogs => "Stop receiving `log_stream` events",
            ClientEvent::UpdateLogFilters => "Filter `log_stream` by agent name and level",
        }
    }

    /// Every client → server event with its payload's schema, for the API reference
    /// (`/api/asyncapi.json`), from [`ClientEvent::ALL`].
    pub fn catalog(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) -> Vec<crate::outbound::EventDoc> {
        use crate::outbound::schema_ref;
        Self::ALL
            .iter()
            .map(|&(name, event, _)| crate::outbound::EventDoc {
                name,
                summary: event.summary(),
                payload: match event {
                    ClientEvent::Envelope => schema_ref::<Envelope>(schemas),
                    ClientEvent::UpdateLogFilters => schema_ref::<LogFilterWire>(schemas),
                    ClientEvent::SubscribeLogs | ClientEvent::UnsubscribeLogs => {
                        utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::default())
                    }
                    _ => schema_ref::<Payload>(schemas),
                },
            })
            .collect()
    }
}

/// One thing a client asked for, whatever dialect it used.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Join(JoinRequest),
    Send(SendRequest),
    Leave(LeaveRequest),
    Typing(TypingRequest),
    SubscribeLogs,
    UnsubscribeLogs,
    UpdateLogFilters(LogFilterUpdate),
}

/// Where a rejoining client left off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumePoint {
    /// The id of the last message the client saw.
    AfterMessage(Uuid),
    /// Epoch milliseconds: everything stored strictly later.
    Since(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinRequest {
    pub channel: ChannelRef,
    pub server_id: Option<Uuid>,
    pub entity_id: Option<Uuid>,
    pub agent_id: Option<String>,
    pub display_name: Option<String>,
    pub metadata: Map<String, Value>,
    pub resume: Option<ResumePoint>,
}

/// The longest client message id accepted (characters).
pub const MAX_CLIENT_MESSAGE_ID: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    pub channel: ChannelRef,
    pub server_id: Option<Uuid>,
    pub sender_id: Option<Uuid>,
    pub sender_name: Option<String>,
    pub text: String,
    /// The sender's id for the message (`messageId`, or `clientMessageId`): its idempotency
    /// key. A resend with the same id by the same sender is a repeat, not a new message.
    pub client_message_id: Option<String>,
    pub source: Option<String>,
    pub attachments: Option<Value>,
    pub metadata: Map<String, Value>,
    pub target_user_id: Option<Uuid>,
    pub in_reply_to: Option<Uuid>,
    /// The payload as received, stored as the message's `raw_message` like ElizaOS does.
    pub raw: Value,
}

impl SendRequest {
    /// A DM by the payload's own description (`isDm` or `channelType: "DM"`).
    pub fn is_dm(&self) -> bool {
        self.metadata.get("isDm").and_then(Value::as_bool) == Some(true)
            || self
                .metadata
                .get("channelType")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("dm"))
    }

    /// The second DM participant: `metadata.targetUserId`, `metadata.recipientId`, or the
    /// top-level `targetUserId`.
    pub fn dm_target(&self) -> Option<Uuid> {
        ["targetUserId", "recipientId"]
            .iter()
            .find_map(|k| self.metadata.get(*k).and_then(Value::as_str))
            .map(string_to_uuid)
            .or(self.target_user_id)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LeaveRequest {
    pub channel: ChannelRef,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TypingRequest {
    pub channel: ChannelRef,
    pub entity_id: Option<Uuid>,
    pub is_typing: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogFilterUpdate {
    pub agent_name: Option<String>,
    pub level: Option<Value>,
}

/// Why a client payload was refused. [`DecodeError::message`] is the text sent back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("{}", texts::JOIN_CHANNEL_REQUIRED)]
    JoinWithoutChannel,
    #[error("{}", texts::SEND_FIELDS_REQUIRED)]
    SendFieldsRequired,
    #[error("channelId is required.")]
    ChannelRequired,
    #[error("Invalid message envelope: expected an object {{type, payload}}.")]
    BadEnvelope,
    #[error("Unknown message type: {0}")]
    UnknownType(String),
    #[error("Invalid payload: {0}")]
    Invalid(String),
}

/// A decode failure together with whatever client message id could still be read, so the
/// error can be correlated by the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub error: DecodeError,
    pub client_message_id: Option<String>,
}

/// Decodes one inbound event's first argument.
pub fn decode(event: ClientEvent, data: Value) -> Result<Command, Refusal> {
    let refuse = |error| Refusal {
        error,
        client_message_id: None,
    };
    match event {
        ClientEvent::Envelope => {
            let Value::Object(mut envelope) = data else {
                return Err(refuse(DecodeError::BadEnvelope));
            };
            let (Some(kind), Some(payload)) = (envelope.remove("type"), envelope.remove("payload"))
            else {
                return Err(refuse(DecodeError::BadEnvelope));
            };
            let kind_number = match &kind {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match kind_number {
                Some(0) => decode(ClientEvent::Join, payload),
                Some(1) => decode(ClientEvent::JoinOrSend, payload),
                Some(2) => decode(ClientEvent::Send, payload),
                _ => Err(refuse(DecodeError::UnknownType(kind.to_string()))),
            }
        }
        ClientEvent::Join => decode_join(payload_object(data)?),
        ClientEvent::JoinOrSend => {
            let p = payload_object(data)?;
            if p.message.is_some() || p.text.is_some() {
                decode_send(p)
            } else {
                decode_join(p)
            }
        }
        ClientEvent::Send => decode_send(payload_object(data)?),
        ClientEvent::Leave => {
            let p = payload_object(data)?;
            let channel = p
                .channel()
                .ok_or_else(|| refuse(DecodeError::ChannelRequired))?;
            Ok(Command::Leave(LeaveRequest { channel }))
        }
        ClientEvent::Typing => {
            let p = payload_object(data)?;
            let channel = p
                .channel()
                .ok_or_else(|| refuse(DecodeError::ChannelRequired))?;
            Ok(Command::Typing(TypingRequest {
                channel,
                entity_id: p.entity(),
                is_typing: p.is_typing.unwrap_or(true),
            }))
        }
        ClientEvent::SubscribeLogs => Ok(Command::SubscribeLogs),
        ClientEvent::UnsubscribeLogs => Ok(Command::UnsubscribeLogs),
        ClientEvent::UpdateLogFilters => {
            let filters: LogFilterWire = match data {
                Value::Null => LogFilterWire::default(),
                other => serde_json::from_value(other)
                    .map_err(|e| refuse(DecodeError::Invalid(e.to_string())))?,
            };
            Ok(Command::UpdateLogFilters(LogFilterUpdate {
                agent_name: filters.agent_name,
                level: filters.level,
            }))
        }
    }
}

fn payload_object(data: Value) -> Result<Payload, Refusal> {
    let client_message_id = ["messageId", "clientMessageId"]
        .iter()
        .find_map(|k| StrOrNum::deserialize(data.get(*k)?).ok())
        .map(StrOrNum::into_string);
    if !data.is_object() {
        return Err(Refusal {
            error: DecodeError::Invalid("the payload must be a JSON object".into()),
            client_message_id,
        });
    }
    let raw = data.clone();
    let mut payload: Payload = serde_json::from_value(data).map_err(|e| Refusal {
        error: DecodeError::Invalid(e.to_string()),
        client_message_id,
    })?;
    payload.raw = raw;
    Ok(payload)
}

fn decode_join(p: Payload) -> Result<Command, Refusal> {
    let channel = p.channel().ok_or(Refusal {
        error: DecodeError::JoinWithoutChannel,
        client_message_id: None,
    })?;
    let resume = match (&p.last_message_id, &p.since) {
        (Some(id), _) => Some(ResumePoint::AfterMessage(string_to_uuid(id))),
        (None, Some(since)) => Some(ResumePoint::Since(since.as_epoch_ms().ok_or(Refusal {
            error: DecodeError::Invalid("since must be epoch milliseconds or an ISO date".into()),
            client_message_id: None,
        })?)),
        (None, None) => None,
    };
    Ok(Command::Join(JoinRequest {
        server_id: p.server(),
        entity_id: p.entity(),
        agent_id: p.agent_id.clone(),
        display_name: p.display_name.clone().or(p.username.clone()),
        metadata: p.metadata.clone().unwrap_or_default(),
        resume,
        channel,
    }))
}

fn decode_send(p: Payload) -> Result<Command, Refusal> {
    let client_message_id = p
        .message_id
        .clone()
        .or(p.client_message_id.clone())
        .map(StrOrNum::into_string);
    let refuse = |error| Refusal {
        error,
        client_message_id: client_message_id.clone(),
    };
    // The id is the message's idempotency key (see `SendRequest::client_message_id`).
    if client_message_id
        .as_deref()
        .is_some_and(|id| id.is_empty() || id.chars().count() > MAX_CLIENT_MESSAGE_ID)
    {
        return Err(refuse(DecodeError::Invalid(format!(
            "messageId must be 1 to {MAX_CLIENT_MESSAGE_ID} characters"
        ))));
    }
    let channel = p
        .channel()
        .ok_or_else(|| refuse(DecodeError::SendFieldsRequired))?;
    let text = p.message.clone().or(p.text.clone()).unwrap_or_default();
    if text.is_empty() {
        return Err(refuse(DecodeError::SendFieldsRequired));
    }
    // Stored as they will be served: checked, `/media/...` URLs for files.
    let attachments = match &p.attachments {
        None => None,
        Some(a) => crate::attachments::normalize(a)
            .map_err(|e| refuse(DecodeError::Invalid(e.to_string())))?,
    };
    Ok(Command::Send(SendRequest {
        server_id: p.server(),
        sender_id: p.sender(),
        sender_name: p.sender_name.clone().or(p.entity_name.clone()),
        client_message_id: client_message_id.clone(),
        source: p.source.clone(),
        attachments: attachments.clone(),
        metadata: p.metadata.clone().unwrap_or_default(),
        target_user_id: p.target_user_id.as_deref().map(string_to_uuid),
        in_reply_to: p.in_reply_to_message_id.as_deref().map(string_to_uuid),
        raw: with_attachments(p.raw, &attachments),
        channel,
        text,
    }))
}

/// The raw payload (stored as `raw_message`) with its attachments in their stored form.
fn with_attachments(mut raw: Value, attachments: &Option<Value>) -> Value {
    if let (Some(a), Some(obj)) = (attachments, raw.as_object_mut())
        && obj.contains_key("attachments")
    {
        obj.insert("attachments".into(), a.clone());
    }
    raw
}

/// The union of every field any dialect puts in a join, send, leave or typing payload.
/// Unknown fields are ignored; a known field of the wrong type refuses the payload.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ClientPayload)]
struct Payload {
    channel_id: Option<String>,
    room_id: Option<String>,
    message_server_id: Option<String>,
    server_id: Option<String>,
    sender_id: Option<String>,
    entity_id: Option<String>,
    user_id: Option<String>,
    message: Option<String>,
    text: Option<String>,
    sender_name: Option<String>,
    entity_name: Option<String>,
    username: Option<String>,
    display_name: Option<String>,
    agent_id: Option<String>,
    /// A string or a number.
    #[schema(value_type = Option<String>)]
    message_id: Option<StrOrNum>,
    /// A string or a number.
    #[schema(value_type = Option<String>)]
    client_message_id: Option<StrOrNum>,
    source: Option<String>,
    attachments: Option<Value>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
    target_user_id: Option<String>,
    in_reply_to_message_id: Option<String>,
    last_message_id: Option<String>,
    /// A string or a number.
    #[schema(value_type = Option<String>)]
    since: Option<StrOrNum>,
    is_typing: Option<bool>,
    #[serde(skip)]
    raw: Value,
}

impl Payload {
    fn channel(&self) -> Option<ChannelRef> {
        non_empty(&self.channel_id)
            .or(non_empty(&self.room_id))
            .map(ChannelRef::parse)
    }
    fn server(&self) -> Option<Uuid> {
        non_empty(&self.message_server_id)
            .or(non_empty(&self.server_id))
            .map(string_to_uuid)
    }
    /// The author of a send: `senderId`, else `entityId`, else `userId`.
    fn sender(&self) -> Option<Uuid> {
        non_empty(&self.sender_id)
            .or(non_empty(&self.entity_id))
            .or(non_empty(&self.user_id))
            .map(string_to_uuid)
    }
    /// The entity of a join or typing: `entityId`, else `userId`, else `senderId`.
    fn entity(&self) -> Option<Uuid> {
        non_empty(&self.entity_id)
            .or(non_empty(&self.user_id))
            .or(non_empty(&self.sender_id))
            .map(string_to_uuid)
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.trim().is_empty())
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum StrOrNum {
    Str(String),
    Num(serde_json::Number),
}

impl StrOrNum {
    fn into_string(self) -> String {
        match self {
            StrOrNum::Str(s) => s,
            StrOrNum::Num(n) => n.to_string(),
        }
    }
    fn as_epoch_ms(&self) -> Option<i64> {
        match self {
            StrOrNum::Num(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            StrOrNum::Str(s) => crate::parse_epoch_ms(s),
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LogFilters)]
struct LogFilterWire {
    agent_name: Option<String>,
    level: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn join(c: Command) -> JoinRequest {
        match c {
            Command::Join(j) => j,
            other => panic!("expected join, got {other:?}"),
        }
    }
    fn send(c: Command) -> SendRequest {
        match c {
            Command::Send(s) => s,
            other => panic!("expected send, got {other:?}"),
        }
    }

    const CH: &str = "123e4567-e89b-12d3-a456-426614174000";

    #[test]
    fn envelope_types() {
        let j = join(
            decode(
                ClientEvent::Envelope,
                json!({"type":1,"payload":{"channelId":CH}}),
            )
            .unwrap(),
        );
        assert_eq!(j.channel.id.to_string(), CH);
        let j = join(
            decode(
                ClientEvent::Envelope,
                json!({"type":0,"payload":{"roomId":CH}}),
            )
            .unwrap(),
        );
        assert_eq!(j.channel.id.to_string(), CH);
        let s = send(
            decode(
                ClientEvent::Envelope,
                json!({"type":1,"payload":{"channelId":CH,"message":"hi"}}),
            )
            .unwrap(),
        );
        assert_eq!(s.text, "hi");
        let s = send(
            decode(
                ClientEvent::Envelope,
                json!({"type":2,"payload":{"roomId":CH,"message":"yo","senderId":"user-123"}}),
            )
            .unwrap(),
        );
        assert_eq!(s.sender_id, Some(string_to_uuid("user-123")));
        assert_eq!(
            decode(ClientEvent::Envelope, json!({"type":3,"payload":{}}))
                .unwrap_err()
                .error,
            DecodeError::UnknownType("3".into())
        );
        assert_eq!(
            decode(ClientEvent::Envelope, json!({"payload":{}}))
                .unwrap_err()
                .error,
            DecodeError::BadEnvelope
        );
        assert_eq!(
            decode(ClientEvent::Envelope, json!("hello"))
                .unwrap_err()
                .error,
            DecodeError::BadEnvelope
        );
    }

    #[test]
    fn aliases_and_defaults() {
        let s = send(
            decode(
                ClientEvent::Send,
                json!({"roomId":"your-room-id","text":"t","userId":"u1","entityName":"N","messageId":42}),
            )
            .unwrap(),
        );
        assert_eq!(s.channel.spelled.as_deref(), Some("your-room-id"));
        assert_eq!(s.sender_name.as_deref(), Some("N"));
        assert_eq!(s.client_message_id.as_deref(), Some("42"));
        assert_eq!(s.server_id, None);
        let s = send(decode(ClientEvent::Send, json!({"channelId":CH,"message":"m","serverId":"00000000-0000-0000-0000-000000000000"})).unwrap());
        assert_eq!(s.server_id, Some(Uuid::nil()));
        assert_eq!(s.sender_id, None);
    }

    #[test]
    fn refusals_carry_texts() {
        let r = decode(ClientEvent::Join, json!({"entityId": "x"})).unwrap_err();
        assert_eq!(r.error.to_string(), texts::JOIN_CHANNEL_REQUIRED);
        let r = decode(
            ClientEvent::Send,
            json!({"channelId": CH, "message": "", "messageId": "c1"}),
        )
        .unwrap_err();
        assert_eq!(r.error.to_string(), texts::SEND_FIELDS_REQUIRED);
        assert_eq!(r.client_message_id.as_deref(), Some("c1"));
        let r = decode(ClientEvent::Send, json!({"channelId": 5, "message": "x"})).unwrap_err();
        assert!(matches!(r.error, DecodeError::Invalid(_)));
        let r = decode(ClientEvent::Send, json!([1, 2])).unwrap_err();
        assert!(matches!(r.error, DecodeError::Invalid(_)));
        let r = decode(
            ClientEvent::Send,
            json!({"channelId": CH, "message": "x", "metadata": 3}),
        )
        .unwrap_err();
        assert!(matches!(r.error, DecodeError::Invalid(_)));
    }

    #[test]
    fn resume_points() {
        let j = join(
            decode(
                ClientEvent::Join,
                json!({"channelId":CH,"lastMessageId":CH}),
            )
            .unwrap(),
        );
        assert_eq!(
            j.resume,
            Some(ResumePoint::AfterMessage(Uuid::parse_str(CH).unwrap()))
        );
        let j = join(
            decode(
                ClientEvent::Join,
                json!({"channelId":CH,"since":1700000000000i64}),
            )
            .unwrap(),
        );
        assert_eq!(j.resume, Some(ResumePoint::Since(1_700_000_000_000)));
        let j = join(
            decode(
                ClientEvent::Join,
                json!({"channelId":CH,"since":"2023-11-14T22:13:20.000Z"}),
            )
            .unwrap(),
        );
        assert_eq!(j.resume, Some(ResumePoint::Since(1_700_000_000_000)));
    }

    #[test]
    fn dm_detection() {
        let s = send(decode(ClientEvent::Send, json!({"channelId":CH,"message":"m","metadata":{"channelType":"DM","targetUserId":CH}})).unwrap());
        assert!(s.is_dm());
        assert_eq!(s.dm_target(), Some(Uuid::parse_str(CH).unwrap()));
    }
}
