//! Identifier rules shared by every layer.
//!
//! ElizaOS identifies servers, channels, entities and messages with UUID strings. Clients written
//! from the seeds often use plain strings instead (`'user-123'`, `'your-room-id'`); those are mapped
//! with ElizaOS's own `stringToUuid`, so the same string yields the same id here as there.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::{Digest, Sha1};
use uuid::Uuid;

/// The nil UUID: ElizaOS's "Default Server", created at boot.
pub const DEFAULT_SERVER_ID: Uuid = Uuid::nil();

/// The author of a REST post that names none (`@elizaos/api-client`'s `postMessage` sends no
/// `author_id`) from a caller that has no entity of its own either.
pub const DEFAULT_AUTHOR_ID: Uuid = Uuid::from_u128(1);

/// Characters JavaScript's `encodeURIComponent` leaves alone: `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// True for the 8-4-4-4-12 hexadecimal form ElizaOS's `validateUuid` accepts (any version, any
/// case, nil included). Braced, URN and simple forms are rejected.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Parses the canonical hyphenated form only (see [`is_uuid`]).
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    if is_uuid(s) {
        Uuid::parse_str(s).ok()
    } else {
        None
    }
}

/// ElizaOS's `stringToUuid`: a UUID is returned as is (lower-cased); anything else is hashed with
/// SHA-1 over its `encodeURIComponent` form, the first 16 bytes kept, byte 8 given the RFC 4122
/// variant bits and byte 6 a zero version nibble.
pub fn string_to_uuid(s: &str) -> Uuid {
    if let Some(id) = parse_uuid(s) {
        return id;
    }
    let encoded = utf8_percent_encode(s, URI_COMPONENT).to_string();
    let digest = Sha1::digest(encoded.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes[6] &= 0x0f;
    Uuid::from_bytes(bytes)
}

/// A channel as a client named it: the UUID every layer uses, and, when the client used a plain
/// string, that string as spelled (payloads echo it in `roomId` so seed filters keep matching).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelRef {
    pub id: Uuid,
    pub spelled: Option<String>,
}

impl ChannelRef {
    pub fn parse(s: &str) -> Self {
        match parse_uuid(s) {
            // A UUID in another case keeps its spelling, so `roomId` echoes it exactly.
            Some(id) if s.bytes().any(|b| b.is_ascii_uppercase()) => ChannelRef {
                id,
                spelled: Some(s.to_owned()),
            },
            Some(id) => ChannelRef { id, spelled: None },
            None => ChannelRef {
                id: string_to_uuid(s),
                spelled: Some(s.to_owned()),
            },
        }
    }

    pub fn from_id(id: Uuid) -> Self {
        ChannelRef { id, spelled: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shapes() {
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(is_uuid("00000000-0000-0000-0000-000000000000"));
        assert!(is_uuid("ABCDEF00-0000-0000-0000-000000000000"));
        assert!(!is_uuid("123e4567e89b12d3a456426614174000"));
        assert!(!is_uuid("{123e4567-e89b-12d3-a456-426614174000}"));
        assert!(!is_uuid("user-123"));
        assert!(!is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
    }

    #[test]
    fn uuids_map_to_themselves_lowercased() {
        let id = string_to_uuid("ABCDEF00-0000-0000-0000-0000000000AA");
        assert_eq!(id.to_string(), "abcdef00-0000-0000-0000-0000000000aa");
    }

    #[test]
    fn strings_hash_with_zero_version_and_rfc_variant() {
        let id = string_to_uuid("user-123");
        let b = id.as_bytes();
        assert_eq!(b[6] >> 4, 0, "version nibble is zero");
        assert_eq!(b[8] >> 6, 0b10, "RFC 4122 variant");
        assert_eq!(id, string_to_uuid("user-123"));
        assert_ne!(id, string_to_uuid("user-124"));
    }

    /// Reference values printed by `stringToUuid` from `@elizaos/core` 1.7.2.
    #[test]
    fn matches_elizaos_string_to_uuid() {
        for (input, expected) in [
            ("user-123", "d5ecfb11-836d-0806-918f-2fd4c815d970"),
            ("your-room-id", "cd5a7580-8471-004c-b110-c02b0173db8e"),
            ("test-room", "b9c78336-c518-0c94-b931-5fb4c5332739"),
            ("hello world", "f0355dd5-2823-054c-ae66-a0b12842c215"),
            ("ünïcødé/?&", "f7fd60f5-6e4b-0655-80b3-e41c39b228dc"),
            ("default", "7505d64a-54e0-01b7-acd5-4ccd58b49dc4"),
        ] {
            assert_eq!(string_to_uuid(input).to_string(), expected, "{input}");
        }
    }

    #[test]
    fn channel_ref_keeps_spelling() {
        let upper = ChannelRef::parse("ABCDEF00-0000-0000-0000-0000000000AA");
        assert_eq!(
            upper.spelled.as_deref(),
            Some("ABCDEF00-0000-0000-0000-0000000000AA")
        );
        let r = ChannelRef::parse("your-room-id");
        assert_eq!(r.spelled.as_deref(), Some("your-room-id"));
        assert_eq!(r.id, string_to_uuid("your-room-id"));
        let u = ChannelRef::parse("123e4567-e89b-12d3-a456-426614174000");
        assert_eq!(u.spelled, None);
    }
}
