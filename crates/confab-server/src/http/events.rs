//! The Socket.IO events' description (issue 16): an AsyncAPI 3.0 document generated from
//! `confab-protocol`'s event tables and payload types ([`ClientEvent::catalog`],
//! [`ServerEvent::catalog`]), served at `/api/asyncapi.json` and linked from `/api/docs`.

use confab_protocol::inbound::ClientEvent;
use confab_protocol::outbound::{EventDoc, ServerEvent};
use serde_json::{Map, Value, json};

/// The AsyncAPI document: one channel (the default namespace), a `receive` operation per
/// client → server event and a `send` operation per server → client event.
pub fn asyncapi() -> Value {
    let mut schemas = Vec::new();
    let client = ClientEvent::catalog(&mut schemas);
    let server = ServerEvent::catalog(&mut schemas);
    let mut messages = Map::new();
    let mut operations = Map::new();
    let mut channel_messages = Map::new();
    let mut add = |events: &[EventDoc], prefix: &str, action: &str| {
        for e in events {
            let key = format!("{prefix}.{}", e.name);
            messages.insert(
                key.clone(),
                json!({
                    "name": e.name,
                    "title": e.name,
                    "summary": e.summary,
                    "contentType": "application/json",
                    "payload": e.payload,
                }),
            );
            channel_messages.insert(
                key.clone(),
                json!({ "$ref": format!("#/components/messages/{key}") }),
            );
            operations.insert(
                key.clone(),
                json!({
                    "action": action,
                    "channel": { "$ref": "#/channels/socket" },
                    "summary": e.summary,
                    "messages": [{ "$ref": format!("#/channels/socket/messages/{key}") }],
                }),
            );
        }
    };
    add(&client, "client", "receive");
    add(&server, "server", "send");
    let schemas: Map<String, Value> = schemas
        .into_iter()
        .map(|(name, schema)| (name, json!(schema)))
        .collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "confab Socket.IO events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The events of confab's Socket.IO endpoint (`/socket.io/`, protocol v4 and v2/v3 clients), \
                ElizaOS-compatible. Each message is a Socket.IO event: its name is the event name, its payload the first \
                argument. A client event emitted with an acknowledgement callback is answered with an `ack`-shaped object. \
                Credentials (when authentication is on) go in the handshake's `auth` (`token`, `apiKey`) or headers.",
        },
        "defaultContentType": "application/json",
        "channels": {
            "socket": {
                "address": "/",
                "title": "The default namespace",
                "messages": channel_messages,
            }
        },
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_described_with_a_resolvable_payload() {
        let doc = asyncapi();
        let messages = doc["components"]["messages"].as_object().unwrap();
        for (name, _, _) in ClientEvent::ALL {
            assert!(messages.contains_key(&format!("client.{name}")), "{name}");
        }
        for name in [
            "messageBroadcast",
            "messageAck",
            "channel_joined",
            "controlMessage",
        ] {
            assert!(messages.contains_key(&format!("server.{name}")), "{name}");
        }
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "dangling reference to {name}"
            );
        }
    }
}
