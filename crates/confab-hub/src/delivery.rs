//! Turning a stored message into what clients receive.

use confab_protocol::outbound::{LegacyMessage, MessageAck, MessageBroadcast};
use confab_protocol::texts;
use confab_store::StoredMessage;
use serde_json::Value;

use crate::directory::ChannelInfo;

/// `source_type` values with a meaning for delivery.
pub mod source {
    pub const SOCKET_CLIENT: &str = "socketio_client";
    pub const AGENT_RESPONSE: &str = "agent_response";
    pub const AGENT_ACTION: &str = "agent_action";
    pub const GUI: &str = "eliza_gui";
}

/// The `messageBroadcast` payload of a stored message, the same for every receiver.
pub fn broadcast(m: &StoredMessage, channel: &ChannelInfo) -> MessageBroadcast {
    let source = m
        .source_type
        .clone()
        .unwrap_or_else(|| source::SOCKET_CLIENT.into());
    let from_agent = source == source::AGENT_RESPONSE || source == source::AGENT_ACTION;
    let raw = m.raw_message.as_ref();
    let raw_field = |k: &str| raw.and_then(|r| r.get(k)).filter(|v| !v.is_null()).cloned();
    let sender_name = ["user_display_name", "agentName", "author_display_name"]
        .iter()
        .find_map(|k| m.meta_str(k))
        .map(str::to_owned)
        .unwrap_or_else(|| if from_agent { "Agent" } else { "User" }.to_owned());
    let attachments = m
        .metadata
        .as_ref()
        .and_then(|md| md.get("attachments"))
        .filter(|v| !v.is_null())
        .cloned()
        .or_else(|| raw_field("attachments"));
    let action = source == source::AGENT_ACTION;
    MessageBroadcast {
        id: m.id,
        sender_id: m.author_id.clone(),
        sender_name,
        text: m.content.clone(),
        channel_id: channel.id,
        room_id: channel.room_id(),
        message_server_id: channel.server_id,
        server_id: channel.server_id,
        created_at: m.created_at,
        source,
        attachments,
        client_message_id: None,
        in_reply_to_message_id: m.in_reply_to.clone(),
        thought: if from_agent {
            raw_field("thought")
        } else {
            None
        },
        actions: if from_agent {
            raw_field("actions")
        } else {
            None
        },
        updated_at: action.then_some(m.updated_at),
        raw_message: if action { m.raw_message.clone() } else { None },
    }
}

pub fn ack(
    m: &StoredMessage,
    channel: &ChannelInfo,
    client_message_id: Option<String>,
    repeat: bool,
) -> MessageAck {
    MessageAck {
        repeat,
        client_message_id,
        message_id: m.id,
        status: texts::ACK_STATUS,
        channel_id: channel.id,
        room_id: channel.room_id(),
        message_server_id: channel.server_id,
        server_id: channel.server_id,
        created_at: m.created_at,
    }
}

pub fn legacy(m: &StoredMessage, channel: &ChannelInfo) -> LegacyMessage {
    LegacyMessage {
        id: m.id,
        user_id: m.author_id.clone(),
        text: m.content.clone(),
        timestamp: m.created_at,
        scope: channel.scope(),
    }
}

/// The attachments a client sent, kept in the stored metadata like ElizaOS does.
pub fn attachments_value(a: &Option<Value>) -> Value {
    a.clone().unwrap_or(Value::Array(Vec::new()))
}
