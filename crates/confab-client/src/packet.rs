//! Engine.IO v4 + Socket.IO v5 text packets over a WebSocket (the subset a client needs: no
//! binary attachments, the default namespace only).
//!
//! A WebSocket text frame holds one Engine.IO packet: `0{open json}`, `1` close, `2` ping,
//! `3` pong, `4<socket.io packet>` message, `6` noop. A Socket.IO packet is a type digit
//! (`0` CONNECT, `1` DISCONNECT, `2` EVENT, `3` ACK, `4` CONNECT_ERROR), an optional ack id
//! (decimal digits), then JSON.

use serde_json::Value;

/// A packet the server sent, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// Engine.IO OPEN: the session's timing.
    Open {
        ping_interval_ms: u64,
        ping_timeout_ms: u64,
    },
    Ping,
    Close,
    /// Socket.IO CONNECT accepted for the namespace.
    Connected,
    /// Socket.IO CONNECT_ERROR, with the server's message.
    ConnectError(String),
    /// Socket.IO DISCONNECT (the server closed the namespace).
    Disconnect,
    Event {
        name: String,
        data: Value,
        ack: Option<u64>,
    },
    Ack {
        id: u64,
        data: Value,
    },
    /// Anything else (pong, noop, upgrade, other namespaces).
    Ignored,
}

/// Decodes one WebSocket text frame.
pub fn decode(frame: &str) -> Inbound {
    let mut chars = frame.chars();
    match chars.next() {
        Some('0') => {
            let open: Value = serde_json::from_str(chars.as_str()).unwrap_or(Value::Null);
            Inbound::Open {
                ping_interval_ms: open["pingInterval"].as_u64().unwrap_or(25_000),
                ping_timeout_ms: open["pingTimeout"].as_u64().unwrap_or(20_000),
            }
        }
        Some('1') => Inbound::Close,
        Some('2') => Inbound::Ping,
        Some('4') => decode_socketio(chars.as_str()),
        _ => Inbound::Ignored,
    }
}

fn decode_socketio(p: &str) -> Inbound {
    let Some(kind) = p.chars().next() else {
        return Inbound::Ignored;
    };
    let rest = &p[1..];
    // A namespace other than "/" is written "/name,": not ours.
    if rest.starts_with('/') {
        return Inbound::Ignored;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = rest[..digits].parse::<u64>().ok();
    let json: Value = if rest[digits..].is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&rest[digits..]).unwrap_or(Value::Null)
    };
    match kind {
        '0' => Inbound::Connected,
        '1' => Inbound::Disconnect,
        '2' => match json {
            Value::Array(mut items) if !items.is_empty() => {
                let name = items.remove(0).as_str().unwrap_or_default().to_owned();
                let data = if items.is_empty() {
                    Value::Null
                } else {
                    items.remove(0)
                };
                Inbound::Event {
                    name,
                    data,
                    ack: id,
                }
            }
            _ => Inbound::Ignored,
        },
        '3' => match (id, json) {
            (Some(id), Value::Array(mut items)) => Inbound::Ack {
                id,
                data: if items.is_empty() {
                    Value::Null
                } else {
                    items.remove(0)
                },
            },
            _ => Inbound::Ignored,
        },
        '4' => Inbound::ConnectError(
            json.get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| json.to_string()),
        ),
        _ => Inbound::Ignored,
    }
}

/// Socket.IO CONNECT to the default namespace with an auth object.
pub fn connect(auth: &Value) -> String {
    format!("40{auth}")
}

/// Engine.IO PONG.
pub const PONG: &str = "3";

/// Socket.IO EVENT, with an ack id if the sender wants an acknowledgement.
pub fn event(name: &str, data: &Value, ack: Option<u64>) -> String {
    let body = Value::Array(vec![Value::String(name.to_owned()), data.clone()]);
    match ack {
        Some(id) => format!("42{id}{body}"),
        None => format!("42{body}"),
    }
}

/// Socket.IO ACK answering a server event that asked for one.
pub fn ack(id: u64, data: &Value) -> String {
    format!("43{id}{}", Value::Array(vec![data.clone()]))
}

/// The WebSocket URL of a server's Socket.IO endpoint: `http://h:p` → `ws://h:p/socket.io/?EIO=4&transport=websocket`.
pub fn websocket_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        format!("ws://{base}")
    };
    format!("{base}/socket.io/?EIO=4&transport=websocket")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_engine_and_socketio_packets() {
        assert_eq!(
            decode(
                r#"0{"sid":"x","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#
            ),
            Inbound::Open {
                ping_interval_ms: 300,
                ping_timeout_ms: 200
            }
        );
        assert_eq!(decode("2"), Inbound::Ping);
        assert_eq!(decode("1"), Inbound::Close);
        assert_eq!(decode(r#"40{"sid":"abc"}"#), Inbound::Connected);
        assert_eq!(
            decode(r#"44{"message":"Valid entityId required"}"#),
            Inbound::ConnectError("Valid entityId required".into())
        );
        assert_eq!(
            decode(r#"42["messageBroadcast",{"id":"1"}]"#),
            Inbound::Event {
                name: "messageBroadcast".into(),
                data: json!({"id":"1"}),
                ack: None
            }
        );
        assert_eq!(
            decode(r#"4217["ping",1]"#),
            Inbound::Event {
                name: "ping".into(),
                data: json!(1),
                ack: Some(17)
            }
        );
        assert_eq!(
            decode(r#"4312[{"success":true}]"#),
            Inbound::Ack {
                id: 12,
                data: json!({"success":true})
            }
        );
        assert_eq!(decode("41"), Inbound::Disconnect);
        assert_eq!(decode(r#"42/admin,["x"]"#), Inbound::Ignored);
        assert_eq!(decode("3"), Inbound::Ignored);
    }

    #[test]
    fn encodes_client_packets() {
        assert_eq!(connect(&json!({"entityId":"e"})), r#"40{"entityId":"e"}"#);
        assert_eq!(
            event("message", &json!({"type":1}), Some(3)),
            r#"423["message",{"type":1}]"#
        );
        assert_eq!(event("typing", &json!(null), None), r#"42["typing",null]"#);
        assert_eq!(ack(5, &json!("ok")), r#"435["ok"]"#);
    }

    #[test]
    fn websocket_urls() {
        assert_eq!(
            websocket_url("http://localhost:3000/"),
            "ws://localhost:3000/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            websocket_url("https://chat.example"),
            "wss://chat.example/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            websocket_url("127.0.0.1:9"),
            "ws://127.0.0.1:9/socket.io/?EIO=4&transport=websocket"
        );
    }
}
