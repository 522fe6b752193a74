//! Prometheus metrics, through the `metrics` facade: `GET /metrics` renders them (no separate
//! listener). Other crates record with the names below (`metrics::histogram!(NAME)`), and the
//! recorder installed here picks them up.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `confab_connections` | gauge | open Socket.IO connections |
//! | `confab_connections_total` | counter | connections accepted |
//! | `confab_connections_refused_total{reason}` | counter | handshakes refused (`unauthenticated`, `bad_token`, `connection_limit`) |
//! | `confab_rooms` | gauge | channels with at least one connected member (at scrape time) |
//! | `confab_joins_total` | counter | successful channel joins |
//! | `confab_messages_in_total` | counter | messages received from sockets |
//! | `confab_messages_out_total` | counter | channel broadcasts sent |
//! | `confab_deliveries_total` | counter | packets handed to connections by broadcasts |
//! | `confab_errors_total{kind}` | counter | socket errors that are not refusals (`decode`, `unknown_event`) |
//! | `confab_refusals_total{kind}` | counter | every refusal, socket and REST ([`Refusal`]: `unauthenticated`, `bad_token`, `forbidden`, `operator_only`, `impersonation`, `rate_limit`, `connection_limit`, `too_large`, `queue_full`, `invalid`) |
//! | `confab_rate_limited_total{scope}` | counter | requests or events refused by a limit (`http`, `socket_message`, `socket_join`, `socket_typing`, `socket_channels`, `connections_per_ip`, `connections_per_entity`, `message_size`, `metadata_size`) |
//! | `confab_slow_consumers_total` | counter | connections dropped for not reading |
//! | `confab_store_commit_seconds` | histogram | one message-batch transaction (confab-store) |
//! | `confab_store_batch_size` | histogram | messages per committed batch (confab-store) |
//! | `confab_agent_run_seconds` | histogram | one agent run, recorded by the agents runtime |
//! | `confab_http_requests_total{status}` | counter | `/api` responses by status class |

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const CONNECTIONS: &str = "confab_connections";
pub const CONNECTIONS_TOTAL: &str = "confab_connections_total";
pub const CONNECTIONS_REFUSED: &str = "confab_connections_refused_total";
pub const ROOMS: &str = "confab_rooms";
pub const JOINS: &str = "confab_joins_total";
pub const MESSAGES_IN: &str = "confab_messages_in_total";
pub const MESSAGES_OUT: &str = "confab_messages_out_total";
pub const DELIVERIES: &str = "confab_deliveries_total";
pub const ERRORS: &str = "confab_errors_total";
pub const RATE_LIMITED: &str = "confab_rate_limited_total";
pub const REFUSALS: &str = "confab_refusals_total";
pub const SLOW_CONSUMERS: &str = "confab_slow_consumers_total";
pub const STORE_COMMIT_SECONDS: &str = "confab_store_commit_seconds";
pub const STORE_BATCH_SIZE: &str = "confab_store_batch_size";
/// One agent run, start to reply, in seconds: `metrics::histogram!(AGENT_RUN_SECONDS).record(s)`.
pub const AGENT_RUN_SECONDS: &str = "confab_agent_run_seconds";
pub const HTTP_REQUESTS: &str = "confab_http_requests_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The counters bumped for every message, registered once: `metrics::counter!(NAME)` looks
/// its name up in the recorder's registry at every call.
pub struct PerMessage {
    pub messages_in: metrics::Counter,
    pub messages_out: metrics::Counter,
    pub deliveries: metrics::Counter,
}

static PER_MESSAGE: OnceLock<PerMessage> = OnceLock::new();

/// The per-message counters (installing the recorder first, so the handles are live).
pub fn per_message() -> &'static PerMessage {
    PER_MESSAGE.get_or_init(|| {
        install();
        PerMessage {
            messages_in: metrics::counter!(MESSAGES_IN),
            messages_out: metrics::counter!(MESSAGES_OUT),
            deliveries: metrics::counter!(DELIVERIES),
        }
    })
}

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0, 30.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(STORE_BATCH_SIZE.into()),
                        &[
                            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                        ],
                    )
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests): then this one only renders.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(CONNECTIONS, "Open Socket.IO connections");
    describe_counter!(CONNECTIONS_TOTAL, "Socket.IO connections accepted");
    describe_counter!(CONNECTIONS_REFUSED, "Socket.IO handshakes refused");
    describe_gauge!(ROOMS, "Channels with at least one connected member");
    describe_counter!(JOINS, "Successful channel joins");
    describe_counter!(MESSAGES_IN, "Messages received from sockets");
    describe_counter!(MESSAGES_OUT, "Channel broadcasts sent");
    describe_counter!(
        DELIVERIES,
        "Packets handed to connections by channel broadcasts"
    );
    describe_counter!(ERRORS, "Errors sent to clients, by kind");
    describe_counter!(REFUSALS, "Refusals, socket and REST, by kind");
    describe_counter!(
        RATE_LIMITED,
        "Requests or events refused by a limit, by scope"
    );
    describe_counter!(
        SLOW_CONSUMERS,
        "Connections dropped because they stopped reading"
    );
    describe_histogram!(
        STORE_COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "Message batch commit time"
    );
    describe_histogram!(STORE_BATCH_SIZE, "Messages per committed batch");
    describe_histogram!(
        AGENT_RUN_SECONDS,
        metrics::Unit::Seconds,
        "Agent run latency"
    );
    describe_counter!(HTTP_REQUESTS, "/api responses by status class");
    // Present from the first scrape, at zero.
    metrics::gauge!(CONNECTIONS).set(0.0);
    let _ = metrics::histogram!(AGENT_RUN_SECONDS);
    let _ = metrics::histogram!(STORE_COMMIT_SECONDS);
    metrics::counter!(MESSAGES_IN).absolute(0);
}

/// Why something a client asked for was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No credential, a wrong API key, or no token where one is required.
    Unauthenticated,
    /// A token that failed verification.
    BadToken,
    /// A channel, DM, session or job the caller may not reach.
    Forbidden,
    /// Administration, logs or metrics without operator credentials.
    OperatorOnly,
    /// Posting as another entity.
    Impersonation,
    /// A rate limit (scope in `confab_rate_limited_total`).
    RateLimit,
    /// Connections per IP or per entity, channels per connection.
    ConnectionLimit,
    /// Message text or metadata too large.
    TooLarge,
    /// Too many events waiting on one connection.
    QueueFull,
    /// A socket event that could not be decoded, or is unknown.
    Invalid,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::BadToken => "bad_token",
            Refusal::Forbidden => "forbidden",
            Refusal::OperatorOnly => "operator_only",
            Refusal::Impersonation => "impersonation",
            Refusal::RateLimit => "rate_limit",
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::TooLarge => "too_large",
            Refusal::QueueFull => "queue_full",
            Refusal::Invalid => "invalid",
        }
    }
}

/// Counts a refusal.
pub fn refused(kind: Refusal) {
    metrics::counter!(REFUSALS, "kind" => kind.as_str()).increment(1);
}

/// Counts a refusal by a limit, under its scope and as a refusal.
pub fn rate_limited(scope: &'static str) {
    metrics::counter!(RATE_LIMITED, "scope" => scope).increment(1);
    refused(match scope {
        "connections_per_ip" | "connections_per_entity" | "socket_channels" => {
            Refusal::ConnectionLimit
        }
        "message_size" | "metadata_size" => Refusal::TooLarge,
        _ => Refusal::RateLimit,
    });
}

/// A socket event refused as invalid (`decode`, `unknown_event`).
pub fn error(kind: &'static str) {
    metrics::counter!(ERRORS, "kind" => kind).increment(1);
    refused(Refusal::Invalid);
}

/// `GET /metrics`.
pub async fn render(io: Option<socketioxide::SocketIo>) -> String {
    if let Some(ns) = io.as_ref().and_then(|io| io.of("/"))
        && let Ok(rooms) = ns.rooms().await
    {
        // Legacy (`legacy:<uuid>`) rooms shadow channel rooms: count channels only.
        let n = rooms.iter().filter(|r| !r.starts_with("legacy:")).count();
        metrics::gauge!(ROOMS).set(n as f64);
    }
    install().render()
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_known_names() {
        let h = super::install();
        super::rate_limited("test");
        metrics::histogram!(super::AGENT_RUN_SECONDS).record(0.01);
        let text = h.render();
        assert!(
            text.contains("confab_rate_limited_total{scope=\"test\"} 1"),
            "{text}"
        );
        assert!(text.contains("confab_agent_run_seconds_bucket"), "{text}");
    }
}
