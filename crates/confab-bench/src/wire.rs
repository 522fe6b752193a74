//! Engine.IO v4 / Socket.IO v5 framing, client side, over one websocket — and the ElizaOS payloads
//! the load generator sends.
//!
//! Why hand-written and not a socket.io client crate: a load generator has to drive several
//! hundred thousand receipts per second from one core, and its own overhead lands in every
//! latency it reports. The generic clients (`rust_socketio`, and socket.io-client in Node) parse
//! every packet into a dynamic value, spawn or box a callback per event and go through an extra
//! channel hop per packet. The subset a benchmark needs is tiny and fixed:
//!
//! | frame            | meaning                                                       |
//! |------------------|---------------------------------------------------------------|
//! | `0{...}`         | Engine.IO OPEN (server → client, first frame)                 |
//! | `2` / `3`        | Engine.IO PING (server → client) / PONG (our reply)           |
//! | `1`              | Engine.IO CLOSE                                               |
//! | `40{auth}`       | Socket.IO CONNECT to `/` with the auth object (client → server)|
//! | `40{"sid":..}`   | CONNECT accepted                                              |
//! | `44{"message"}`  | CONNECT_ERROR (handshake refused)                             |
//! | `42["ev",data]`  | EVENT                                                         |
//! | `42<id>["ev",..]`| EVENT with an ack request                                     |
//! | `43<id>[...]`    | ACK reply                                                     |
//! | `41`             | DISCONNECT                                                    |
//!
//! Only the default namespace and text frames are used (no binary attachments). Incoming events
//! are not parsed into JSON trees: [`str_field`] pulls the few string fields the benchmark reads
//! straight out of the frame.

use std::fmt::Write as _;

use uuid::Uuid;

/// The default message server id of ElizaOS 1.6+ (and confab).
pub const DEFAULT_SERVER_ID: &str = "00000000-0000-0000-0000-000000000000";

/// One frame from the server, classified.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Engine.IO OPEN with its JSON.
    Open(&'a str),
    Ping,
    Close,
    /// Socket.IO CONNECT accepted.
    Connected,
    /// Socket.IO CONNECT_ERROR, with its data.
    ConnectError(&'a str),
    /// Socket.IO DISCONNECT from the server.
    Disconnect,
    /// Socket.IO EVENT: name and first argument (raw JSON text, possibly empty).
    Event {
        name: &'a str,
        data: &'a str,
    },
    /// Anything else (acks, noop, pong, other namespaces).
    Other,
}

/// Classifies a text frame.
pub fn parse(frame: &str) -> Frame<'_> {
    let b = frame.as_bytes();
    match b.first() {
        Some(b'0') => Frame::Open(&frame[1..]),
        Some(b'1') => Frame::Close,
        Some(b'2') => Frame::Ping,
        Some(b'4') => match b.get(1) {
            Some(b'0') => Frame::Connected,
            Some(b'1') => Frame::Disconnect,
            Some(b'4') => Frame::ConnectError(&frame[2..]),
            Some(b'2') => parse_event(&frame[2..]),
            _ => Frame::Other,
        },
        _ => Frame::Other,
    }
}

/// `[<id>]["name",data...]` after the `42`.
fn parse_event(rest: &str) -> Frame<'_> {
    // Skip an ack id, if any.
    let start = rest.find('[').unwrap_or(rest.len());
    let body = &rest[start..];
    let Some(body) = body.strip_prefix("[\"") else {
        return Frame::Other;
    };
    // Event names are plain (no escapes) in this protocol.
    let Some(end) = body.find('"') else {
        return Frame::Other;
    };
    let name = &body[..end];
    let after = &body[end + 1..];
    let data = after
        .strip_prefix(',')
        .map(|d| d.strip_suffix(']').unwrap_or(d))
        .unwrap_or("");
    Frame::Event { name, data }
}

/// The value of the first `"key":"…"` string field in a JSON text, unescaped only if it has no
/// escapes (the benchmark's own values never do); `None` if absent or not a plain string.
pub fn str_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(pos) = json[from..].find(key) {
        let at = from + pos;
        from = at + key.len();
        let before = at.checked_sub(1).map(|i| json.as_bytes()[i]);
        let rest = &json[from..];
        if before == Some(b'"') && rest.starts_with("\":\"") {
            let v = &rest[3..];
            let end = v.find('"')?;
            let s = &v[..end];
            if s.contains('\\') {
                return None;
            }
            return Some(s);
        }
    }
    None
}

/// The Socket.IO CONNECT packet carrying ElizaOS's handshake auth.
pub fn connect_packet(entity: Uuid) -> String {
    format!("40{{\"entityId\":\"{entity}\"}}")
}

/// `message {type:1}`: join a channel (ElizaOS ROOM_JOINING).
pub fn join_packet(channel: &str, entity: Uuid, server_id: &str) -> String {
    format!(
        "42[\"message\",{{\"type\":1,\"payload\":{{\"channelId\":\"{channel}\",\"roomId\":\"{channel}\",\"entityId\":\"{entity}\",\"messageServerId\":\"{server_id}\"}}}}]"
    )
}

/// Builds `message {type:2}` packets (ElizaOS SEND_MESSAGE) with as little work per message as
/// possible: everything but the marker is preformatted once per sender.
///
/// The text is `bn|<run>|<sender>|<seq>|<sent µs>|` + padding, and the client message id is
/// `bn<run>-<sender>-<seq>-<sent µs>`, so both the receipts and the ack carry the send time.
pub struct SendTemplate {
    head: String,
    mid: String,
    tail: String,
    pad: String,
    run: u32,
    sender: u32,
    payload_bytes: usize,
}

impl SendTemplate {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        channel: &str,
        sender_entity: Uuid,
        sender_name: &str,
        server_id: &str,
        run: u32,
        sender: u32,
        payload_bytes: usize,
        extra_payload: &str,
    ) -> Self {
        let head = format!(
            "42[\"message\",{{\"type\":2,\"payload\":{{\"channelId\":\"{channel}\",\"roomId\":\"{channel}\",\"senderId\":\"{sender_entity}\",\"senderName\":\"{sender_name}\",\"messageServerId\":\"{server_id}\",\"source\":\"bench\"{extra_payload},\"message\":\""
        );
        SendTemplate {
            head,
            mid: "\",\"messageId\":\"".into(),
            tail: "\"}}]".into(),
            pad: "x".repeat(payload_bytes),
            run,
            sender,
            payload_bytes,
        }
    }

    /// The packet for message `seq` sent at `t_us`.
    pub fn packet(&self, seq: u64, t_us: u64) -> String {
        let mut s = String::with_capacity(self.head.len() + self.payload_bytes + 96);
        s.push_str(&self.head);
        let before = s.len();
        let _ = write!(s, "bn|{}|{}|{}|{}|", self.run, self.sender, seq, t_us);
        let marker = s.len() - before;
        s.push_str(&self.pad[..self.payload_bytes.saturating_sub(marker)]);
        s.push_str(&self.mid);
        let _ = write!(s, "bn{}-{}-{}-{}", self.run, self.sender, seq, t_us);
        s.push_str(&self.tail);
        s
    }
}

/// What a receipt's text says about the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub run: u32,
    pub sender: u32,
    pub seq: u64,
    pub t_us: u64,
}

/// Reads `bn|run|sender|seq|t|…`.
pub fn text_marker(text: &str) -> Option<Marker> {
    let mut it = text.strip_prefix("bn|")?.splitn(5, '|');
    Some(Marker {
        run: it.next()?.parse().ok()?,
        sender: it.next()?.parse().ok()?,
        seq: it.next()?.parse().ok()?,
        t_us: it.next()?.parse().ok()?,
    })
}

/// Reads `bnrun-sender-seq-t` (a client message id).
pub fn cmid_marker(cmid: &str) -> Option<Marker> {
    let mut it = cmid.strip_prefix("bn")?.splitn(4, '-');
    Some(Marker {
        run: it.next()?.parse().ok()?,
        sender: it.next()?.parse().ok()?,
        seq: it.next()?.parse().ok()?,
        t_us: it.next()?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(parse("0{\"sid\":\"a\"}"), Frame::Open("{\"sid\":\"a\"}"));
        assert_eq!(parse("2"), Frame::Ping);
        assert_eq!(parse("40{\"sid\":\"x\"}"), Frame::Connected);
        assert_eq!(
            parse("44{\"message\":\"no\"}"),
            Frame::ConnectError("{\"message\":\"no\"}")
        );
        assert_eq!(
            parse("42[\"messageAck\",{\"a\":1}]"),
            Frame::Event {
                name: "messageAck",
                data: "{\"a\":1}"
            }
        );
        assert_eq!(
            parse("4212[\"x\"]"),
            Frame::Event {
                name: "x",
                data: ""
            }
        );
    }

    #[test]
    fn fields_and_markers() {
        let t = SendTemplate::new("c", Uuid::nil(), "n", DEFAULT_SERVER_ID, 7, 3, 40, "");
        let p = t.packet(12, 3456);
        let Frame::Event { name, data } = parse(&p) else {
            panic!("{p}")
        };
        assert_eq!(name, "message");
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        let text = v["payload"]["message"].as_str().unwrap();
        assert_eq!(text.len(), 40);
        let m = text_marker(str_field(data, "message").unwrap()).unwrap();
        assert_eq!(
            m,
            Marker {
                run: 7,
                sender: 3,
                seq: 12,
                t_us: 3456
            }
        );
        assert_eq!(
            cmid_marker(v["payload"]["messageId"].as_str().unwrap()),
            Some(m)
        );
        assert_eq!(str_field(r#"{"xtext":"a","text":"b"}"#, "text"), Some("b"));
        assert_eq!(str_field(r#"{"text":1}"#, "text"), None);
    }
}
