//! What the client hands to its user: events, messages, acknowledgements.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::media::Attachment;

/// The nil UUID: the default message server of confab and ElizaOS.
pub const DEFAULT_SERVER: Uuid = Uuid::nil();

/// A chat message, from a live `messageBroadcast` or from history over HTTP.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub sender_id: String,
    pub sender_name: String,
    pub text: String,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// `agent_response` for agent replies.
    pub source: String,
    /// The sender's own id for the message, on the copy the sender receives.
    pub client_message_id: Option<String>,
    pub in_reply_to: Option<String>,
    /// True when it came from the socket (live or replayed), false when loaded over HTTP.
    pub live: bool,
    /// Files attached (urls as the server serves them, usually `/media/...`).
    pub attachments: Vec<Attachment>,
}

impl Message {
    /// Whether an agent wrote it.
    pub fn is_agent_reply(&self) -> bool {
        self.source == "agent_response"
    }

    pub(crate) fn from_broadcast(v: &Value) -> Option<Message> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            id: Uuid,
            channel_id: Option<Uuid>,
            room_id: Option<String>,
            #[serde(default)]
            sender_id: String,
            #[serde(default)]
            sender_name: String,
            #[serde(default)]
            text: String,
            #[serde(default)]
            created_at: i64,
            #[serde(default)]
            source: String,
            client_message_id: Option<String>,
            in_reply_to_message_id: Option<String>,
            #[serde(default)]
            attachments: Value,
        }
        let w: Wire = serde_json::from_value(v.clone()).ok()?;
        let channel_id = w
            .channel_id
            .or_else(|| w.room_id.as_deref().and_then(|r| r.parse().ok()))?;
        Some(Message {
            id: w.id,
            channel_id,
            sender_id: w.sender_id,
            sender_name: w.sender_name,
            text: w.text,
            created_at: w.created_at,
            source: w.source,
            client_message_id: w.client_message_id,
            in_reply_to: w.in_reply_to_message_id,
            live: true,
            attachments: Attachment::list_from(&w.attachments),
        })
    }

    /// A message as `GET /channels/:id/messages` lists it.
    pub(crate) fn from_history(v: &Value) -> Option<Message> {
        let id = v["id"].as_str()?.parse().ok()?;
        let channel_id = v["channelId"].as_str()?.parse().ok()?;
        let meta = &v["metadata"];
        let name = ["user_display_name", "agentName", "authorDisplayName"]
            .iter()
            .find_map(|k| meta[*k].as_str())
            .unwrap_or("User");
        let created_at = v["created_at"].as_i64().unwrap_or_default();
        Some(Message {
            id,
            channel_id,
            sender_id: v["authorId"].as_str().unwrap_or_default().to_owned(),
            sender_name: name.to_owned(),
            text: v["content"].as_str().unwrap_or_default().to_owned(),
            created_at,
            source: v["sourceType"].as_str().unwrap_or_default().to_owned(),
            client_message_id: None,
            in_reply_to: v["inReplyToRootMessageId"].as_str().map(str::to_owned),
            live: false,
            attachments: Attachment::list_from(&meta["attachments"]),
        })
    }
}

/// The server's acknowledgement of a sent message: it is stored, with this id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub message_id: Uuid,
    pub client_message_id: String,
    pub channel_id: Uuid,
    pub created_at: i64,
    /// The server had stored this message already (a resend after a lost acknowledgement): this
    /// acknowledges the original, which was not stored or broadcast again.
    pub repeat: bool,
}

/// The answer to a join.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub channel_id: Uuid,
    /// Missed messages replayed before this reply (a join that resumed from `lastMessageId`).
    pub recovered: Option<usize>,
    /// True when this was an automatic rejoin after a reconnect.
    pub rejoin: bool,
    /// The server's report on the replay, when the join resumed (`recovery` of
    /// `channel_joined`).
    pub recovery: Option<Recovery>,
}

/// How a resumed join went, as the server reports it: `{complete, delivered, reason?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Every message after the resume point has reached this connection, in order.
    pub complete: bool,
    /// Messages replayed for this join.
    pub delivered: usize,
    /// Why it is not complete: `unknown_message`, `limit_exceeded`, `slow_consumer`,
    /// `unconfirmed`, `history_unavailable`.
    pub reason: Option<String>,
}

impl Recovery {
    pub(crate) fn from_wire(v: &Value) -> Option<Recovery> {
        let delivered = v.get("delivered")?.as_u64()? as usize;
        let reason = v["reason"].as_str().map(str::to_owned);
        Some(Recovery {
            complete: v["complete"].as_bool().unwrap_or(reason.is_none()),
            delivered,
            reason,
        })
    }
}

/// The socket's state, as a status line shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    Connected,
    /// Waiting before the next attempt (1-based).
    Reconnecting {
        attempt: u32,
    },
    /// Reconnection gave up, or the client was closed.
    Closed,
}

/// Everything that arrives, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Connected {
        /// False for the first connection.
        reconnected: bool,
    },
    Disconnected {
        reason: String,
    },
    Reconnecting {
        attempt: u32,
        delay: Duration,
    },
    /// Reconnection failed `attempts` times in a row; the client stopped.
    GaveUp {
        attempts: u32,
    },
    Joined(Joined),
    /// A new message (each id once).
    Message(Message),
    /// A piece of an agent's reply while it is generated.
    StreamChunk {
        channel_id: Uuid,
        message_id: Uuid,
        agent_id: Uuid,
        index: u64,
        chunk: String,
    },
    StreamError {
        channel_id: Uuid,
        message_id: Uuid,
        error: String,
    },
    /// `controlMessage`: `disable_input` while an agent runs, `enable_input` after.
    Control {
        channel_id: Uuid,
        action: String,
    },
    /// An agent run in the channel ended.
    Complete {
        channel_id: Uuid,
        agent_id: Option<Uuid>,
    },
    /// `messageError` from the server.
    Error {
        error: String,
        client_message_id: Option<String>,
    },
    /// `userJoined`, `userLeft`, `userTyping`.
    Presence {
        kind: PresenceKind,
        channel_id: Uuid,
        entity_id: Uuid,
        username: Option<String>,
    },
    /// Any other event, as sent.
    Other {
        name: String,
        data: Value,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceKind {
    Joined,
    Left,
    Typing,
    StoppedTyping,
}

fn uuid_of(v: &Value, key: &str) -> Option<Uuid> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

fn channel_of(v: &Value) -> Option<Uuid> {
    uuid_of(v, "channelId").or_else(|| uuid_of(v, "roomId"))
}

/// Maps a server event (other than broadcasts and joins, handled by the client) to an [`Event`].
pub(crate) fn event_from_wire(name: &str, data: Value) -> Event {
    let other = |data| Event::Other {
        name: name.to_owned(),
        data,
    };
    match name {
        "messageStreamChunk" => match (channel_of(&data), uuid_of(&data, "messageId")) {
            (Some(channel_id), Some(message_id)) => Event::StreamChunk {
                channel_id,
                message_id,
                agent_id: uuid_of(&data, "agentId").unwrap_or_default(),
                index: data["index"].as_u64().unwrap_or_default(),
                chunk: data["chunk"].as_str().unwrap_or_default().to_owned(),
            },
            _ => other(data),
        },
        "messageStreamError" => match (channel_of(&data), uuid_of(&data, "messageId")) {
            (Some(channel_id), Some(message_id)) => Event::StreamError {
                channel_id,
                message_id,
                error: data["error"].as_str().unwrap_or_default().to_owned(),
            },
            _ => other(data),
        },
        "controlMessage" => {
            // confab: `{action, channelId}`; core's shape nests it: `{payload:{action}, roomId}`.
            let action = data["action"]
                .as_str()
                .or_else(|| data["payload"]["action"].as_str())
                .map(str::to_owned);
            match (channel_of(&data), action) {
                (Some(channel_id), Some(action)) => Event::Control { channel_id, action },
                _ => other(data),
            }
        }
        "messageComplete" => match channel_of(&data) {
            Some(channel_id) => Event::Complete {
                channel_id,
                agent_id: uuid_of(&data, "agentId"),
            },
            None => other(data),
        },
        "messageError" => Event::Error {
            error: data["error"].as_str().unwrap_or_default().to_owned(),
            client_message_id: data["clientMessageId"].as_str().map(str::to_owned),
        },
        "userJoined" | "userLeft" | "userTyping" => {
            let kind = match name {
                "userJoined" => PresenceKind::Joined,
                "userLeft" => PresenceKind::Left,
                _ if data["isTyping"].as_bool() == Some(false) => PresenceKind::StoppedTyping,
                _ => PresenceKind::Typing,
            };
            let entity = uuid_of(&data, "entityId").or_else(|| uuid_of(&data, "userId"));
            match (channel_of(&data), entity) {
                (Some(channel_id), Some(entity_id)) => Event::Presence {
                    kind,
                    channel_id,
                    entity_id,
                    username: data["username"].as_str().map(str::to_owned),
                },
                _ => other(data),
            }
        }
        _ => other(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn broadcast_and_history_shapes() {
        let c = Uuid::new_v4();
        let m = Message::from_broadcast(&json!({
            "id": Uuid::nil(), "roomId": c.to_string(), "senderId": "s", "senderName": "Eliza",
            "text": "hi", "createdAt": 5, "source": "agent_response"
        }))
        .unwrap();
        assert_eq!(m.channel_id, c);
        assert!(m.is_agent_reply() && m.live);
        let h = Message::from_history(&json!({
            "id": Uuid::nil(), "channelId": c, "authorId": "a", "content": "yo",
            "metadata": {"user_display_name": "Pat"}, "created_at": 7, "sourceType": "socketio_client"
        }))
        .unwrap();
        assert_eq!(
            (h.sender_name.as_str(), h.created_at, h.live),
            ("Pat", 7, false)
        );
    }

    #[test]
    fn recovery_report() {
        assert_eq!(
            Recovery::from_wire(
                &json!({"complete": false, "delivered": 3, "from": {}, "reason": "limit_exceeded"})
            ),
            Some(Recovery {
                complete: false,
                delivered: 3,
                reason: Some("limit_exceeded".into())
            })
        );
        assert_eq!(
            Recovery::from_wire(&json!({"complete": true, "delivered": 0})),
            Some(Recovery {
                complete: true,
                delivered: 0,
                reason: None
            })
        );
        assert_eq!(Recovery::from_wire(&Value::Null), None);
        let m = Message::from_broadcast(&json!({
            "id": Uuid::nil(), "channelId": Uuid::nil(), "text": "see",
            "attachments": [{"id": "a", "url": "/media/uploads/channels/x/1.png", "contentType": "image"}]
        }))
        .unwrap();
        assert_eq!(m.attachments[0].content_type.as_deref(), Some("image"));
    }

    #[test]
    fn control_and_presence() {
        let c = Uuid::new_v4();
        assert_eq!(
            event_from_wire(
                "controlMessage",
                json!({"action": "disable_input", "channelId": c})
            ),
            Event::Control {
                channel_id: c,
                action: "disable_input".into()
            }
        );
        let e = Uuid::new_v4();
        assert!(matches!(
            event_from_wire(
                "userTyping",
                json!({"channelId": c, "entityId": e, "isTyping": false})
            ),
            Event::Presence {
                kind: PresenceKind::StoppedTyping,
                ..
            }
        ));
        assert!(matches!(
            event_from_wire("channelCleared", json!({})),
            Event::Other { .. }
        ));
    }
}
