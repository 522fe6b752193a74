//! The wire vocabulary of confab, defined once.
//!
//! * [`attachments`]: what a message may carry as attachments, and their stored form.
//! * [`ids`]: UUID rules, ElizaOS's `stringToUuid`, and channel references that remember how a
//!   client spelled a non-UUID room name.
//! * [`inbound`]: everything a client may send, in every dialect, decoded into one typed
//!   [`inbound::Command`].
//! * [`outbound`]: every event the server emits, as serde structs, with their event names.
//! * [`texts`]: the human-readable error strings ElizaOS clients match on.

pub mod attachments;
pub mod ids;
pub mod inbound;
pub mod outbound;
pub mod texts;

pub use ids::{
    ChannelRef, DEFAULT_AUTHOR_ID, DEFAULT_SERVER_ID, is_uuid, parse_uuid, string_to_uuid,
};
pub use inbound::{Command, Dialect};
pub use outbound::ServerEvent;

/// Milliseconds since the Unix epoch, the timestamp unit of every payload.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Parses a client-supplied point in time: epoch milliseconds as digits, or an ISO-8601 /
/// RFC 3339 date (the 1.7.2 web UI sends `before` as `toISOString()`).
pub fn parse_epoch_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(f) = s.parse::<f64>() {
        return f.is_finite().then_some(f as i64);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|dt| dt.and_utc().timestamp_millis())
}

/// Formats epoch milliseconds as JavaScript's `Date.prototype.toISOString` does.
pub fn iso_from_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn epoch_and_iso() {
        assert_eq!(
            super::parse_epoch_ms("1700000000000"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            super::parse_epoch_ms("2023-11-14T22:13:20.000Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            super::parse_epoch_ms("2023-11-14T22:13:20"),
            Some(1_700_000_000_000)
        );
        assert_eq!(super::parse_epoch_ms("yesterday"), None);
        assert_eq!(
            super::iso_from_ms(1_700_000_000_000),
            "2023-11-14T22:13:20.000Z"
        );
    }
}
