//! Rate and size limits, all built on `governor` (GCRA): a quota of N per period allows a burst
//! of N, then one more every period/N.
//!
//! * HTTP: per client IP on `/api` (ElizaOS's default, 1,000 per 15 minutes), 429 with
//!   `Retry-After`, `RateLimit-Limit/Remaining/Reset` and ElizaOS's body.
//! * Sockets: messages and typing indicators per minute per entity (all its connections
//!   together), joins per minute per connection, channels per connection, connections per IP
//!   and per entity. Over a limit:
//!   `messageError {error, retryAfterMs}` (and a failed acknowledgement), or a refused handshake.
//! * Uploads: ElizaOS's two per-IP limits on media uploads (50 per 15 minutes, 100 file
//!   operations per 5 minutes), 429 with ElizaOS's codes.
//! * Sizes: message text and metadata, checked after decoding (the 1 MB frame limit is the
//!   transport's).
//!
//! "Per IP" is the client's address: behind trusted proxies, the one they forward
//! ([`crate::proxy`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde_json::json;
use uuid::Uuid;

use crate::proxy::TrustedProxies;

/// Limits, as resolved by the binary. Zero disables a limit.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Requests per window per IP on `/api` (`RATE_LIMIT_MAX`).
    pub http_max: u32,
    /// The window (`RATE_LIMIT_WINDOW_MS`).
    pub http_window: Duration,
    /// Messages per minute per entity over sockets (`RATE_LIMIT_SOCKET_MESSAGES`).
    pub socket_messages_per_min: u32,
    /// Joins per minute per connection (`RATE_LIMIT_SOCKET_JOINS`).
    pub socket_joins_per_min: u32,
    /// Typing indicators per minute per entity (`RATE_LIMIT_SOCKET_TYPING`).
    pub socket_typing_per_min: u32,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` are believed.
    pub trusted_proxies: TrustedProxies,
    /// Channels one connection may be in at once.
    pub channels_per_connection: usize,
    /// Open sockets per client IP.
    pub connections_per_ip: usize,
    /// Open sockets per entity.
    pub connections_per_entity: usize,
    /// Longest message text, in characters.
    pub max_message_chars: usize,
    /// Largest message metadata (plus attachments), in bytes of JSON.
    pub max_metadata_bytes: usize,
    /// Media uploads per window per IP (ElizaOS: 50 per 15 minutes).
    pub upload_max: u32,
    pub upload_window: Duration,
    /// File operations (uploads) per window per IP (ElizaOS: 100 per 5 minutes).
    pub file_ops_max: u32,
    pub file_ops_window: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            http_max: 1000,
            http_window: Duration::from_secs(15 * 60),
            socket_messages_per_min: 100,
            socket_joins_per_min: 120,
            socket_typing_per_min: 120,
            trusted_proxies: TrustedProxies::default(),
            channels_per_connection: 128,
            connections_per_ip: 1000,
            connections_per_entity: 100,
            max_message_chars: 1_000_000,
            max_metadata_bytes: 256 * 1024,
            upload_max: 50,
            upload_window: Duration::from_secs(15 * 60),
            file_ops_max: 100,
            file_ops_window: Duration::from_secs(5 * 60),
        }
    }
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

fn quota(n: u32, period: Duration) -> Option<Quota> {
    let n = NonZeroU32::new(n)?;
    let per = period.checked_div(n.get())?.max(Duration::from_nanos(1));
    Quota::with_period(per).map(|q| q.allow_burst(n))
}

/// A refusal for exceeding a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    pub error: String,
    /// When trying again can succeed (0: not a matter of time, e.g. too many channels).
    pub retry_after_ms: u64,
}

/// A refused upload (ElizaOS's 429 body: `{success:false, error:{code, message}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadExceeded {
    pub code: &'static str,
    pub message: &'static str,
    pub retry_after_secs: u64,
}

/// The shared limiters.
pub struct Limits {
    pub settings: LimitSettings,
    http: Option<Keyed<IpAddr>>,
    messages: Option<Keyed<Uuid>>,
    typing: Option<Keyed<Uuid>>,
    joins: Option<Quota>,
    uploads: Option<Keyed<IpAddr>>,
    file_ops: Option<Keyed<IpAddr>>,
    counts: Mutex<Counts>,
    clock: DefaultClock,
}

#[derive(Default)]
struct Counts {
    per_ip: HashMap<IpAddr, usize>,
    per_entity: HashMap<Uuid, usize>,
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Arc<Self> {
        let limits = Arc::new(Limits {
            http: quota(settings.http_max, settings.http_window)
                .map(|q| RateLimiter::keyed(q).with_middleware::<StateInformationMiddleware>()),
            messages: quota(settings.socket_messages_per_min, Duration::from_secs(60))
                .map(|q| RateLimiter::keyed(q).with_middleware::<StateInformationMiddleware>()),
            typing: quota(settings.socket_typing_per_min, Duration::from_secs(60))
                .map(|q| RateLimiter::keyed(q).with_middleware::<StateInformationMiddleware>()),
            joins: quota(settings.socket_joins_per_min, Duration::from_secs(60)),
            uploads: quota(settings.upload_max, settings.upload_window)
                .map(|q| RateLimiter::keyed(q).with_middleware::<StateInformationMiddleware>()),
            file_ops: quota(settings.file_ops_max, settings.file_ops_window)
                .map(|q| RateLimiter::keyed(q).with_middleware::<StateInformationMiddleware>()),
            counts: Mutex::default(),
            clock: DefaultClock::default(),
            settings,
        });
        // Forget idle keys now and then, so the maps do not grow with every IP and entity seen.
        if tokio::runtime::Handle::try_current().is_ok() {
            let weak = Arc::downgrade(&limits);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let Some(l) = weak.upgrade() else { break };
                    if let Some(h) = &l.http {
                        h.retain_recent();
                    }
                    for m in [&l.messages, &l.typing].into_iter().flatten() {
                        m.retain_recent();
                    }
                    for m in [&l.uploads, &l.file_ops].into_iter().flatten() {
                        m.retain_recent();
                    }
                }
            });
        }
        limits
    }

    fn wait_ms(&self, not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>) -> u64 {
        let ms = not_until.wait_time_from(self.clock.now()).as_millis() as u64;
        ms.max(1)
    }

    /// One socket message by `entity`.
    pub fn message(&self, entity: Uuid) -> Result<(), Exceeded> {
        let Some(l) = &self.messages else {
            return Ok(());
        };
        l.check_key(&entity).map(|_| ()).map_err(|nu| {
            crate::metrics::rate_limited("socket_message");
            Exceeded {
                error: format!(
                    "Rate limit exceeded: at most {} messages per minute",
                    self.settings.socket_messages_per_min
                ),
                retry_after_ms: self.wait_ms(&nu),
            }
        })
    }

    /// One typing indicator by `entity`.
    pub fn typing(&self, entity: Uuid) -> Result<(), Exceeded> {
        let Some(l) = &self.typing else {
            return Ok(());
        };
        l.check_key(&entity).map(|_| ()).map_err(|nu| {
            crate::metrics::rate_limited("socket_typing");
            Exceeded {
                error: format!(
                    "Rate limit exceeded: at most {} typing indicators per minute",
                    self.settings.socket_typing_per_min
                ),
                retry_after_ms: self.wait_ms(&nu),
            }
        })
    }

    /// One media upload from `ip`: ElizaOS's two limiters, uploads then file operations. A
    /// refusal carries ElizaOS's code and text and the seconds to wait.
    pub fn upload(&self, ip: IpAddr) -> Result<(), UploadExceeded> {
        let limited = [
            (
                &self.uploads,
                "UPLOAD_RATE_LIMIT_EXCEEDED",
                "Too many upload attempts. Please try again later.",
            ),
            (
                &self.file_ops,
                "FILE_RATE_LIMIT_EXCEEDED",
                "Too many file operations. Please try again later.",
            ),
        ];
        for (limiter, code, message) in limited {
            if let Some(l) = limiter
                && let Err(nu) = l.check_key(&ip)
            {
                crate::metrics::rate_limited("upload");
                let wait = nu.wait_time_from(self.clock.now());
                return Err(UploadExceeded {
                    code,
                    message,
                    retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
                });
            }
        }
        Ok(())
    }

    /// The client address of a request or handshake (see [`crate::proxy`]).
    pub fn client_ip(
        &self,
        ext: &axum::http::Extensions,
        headers: &axum::http::HeaderMap,
    ) -> IpAddr {
        self.settings.trusted_proxies.client_of(ext, headers)
    }

    /// A per-connection join limiter (`None`: unlimited).
    pub fn join_limiter(&self) -> Option<governor::DefaultDirectRateLimiter> {
        self.joins.map(RateLimiter::direct)
    }

    /// One join on a connection, which is in `current` channels.
    pub fn join(
        &self,
        limiter: Option<&governor::DefaultDirectRateLimiter>,
        current: usize,
        already_in: bool,
    ) -> Result<(), Exceeded> {
        let max = self.settings.channels_per_connection;
        if max > 0 && !already_in && current >= max {
            crate::metrics::rate_limited("socket_channels");
            return Err(Exceeded {
                error: format!(
                    "Too many channels: a connection may be in at most {max} channels; leave one first"
                ),
                retry_after_ms: 0,
            });
        }
        if let Some(l) = limiter
            && let Err(nu) = l.check()
        {
            crate::metrics::rate_limited("socket_join");
            return Err(Exceeded {
                error: format!(
                    "Rate limit exceeded: at most {} joins per minute",
                    self.settings.socket_joins_per_min
                ),
                retry_after_ms: self.wait_ms(&nu),
            });
        }
        Ok(())
    }

    /// Text and metadata sizes of a message.
    pub fn message_size(
        &self,
        text: &str,
        metadata: &serde_json::Map<String, serde_json::Value>,
        attachments: Option<&serde_json::Value>,
    ) -> Result<(), Exceeded> {
        let max = self.settings.max_message_chars;
        // Bytes bound characters from above: count characters only when it could matter.
        if max > 0 && text.len() > max && text.chars().count() > max {
            crate::metrics::rate_limited("message_size");
            return Err(Exceeded {
                error: format!("Message too long: at most {max} characters"),
                retry_after_ms: 0,
            });
        }
        let max = self.settings.max_metadata_bytes;
        if max > 0 {
            let size = serde_json::to_vec(metadata).map(|v| v.len()).unwrap_or(0)
                + attachments
                    .map(|a| serde_json::to_vec(a).map(|v| v.len()).unwrap_or(0))
                    .unwrap_or(0);
            if size > max {
                crate::metrics::rate_limited("metadata_size");
                return Err(Exceeded {
                    error: format!("Metadata too large: at most {max} bytes"),
                    retry_after_ms: 0,
                });
            }
        }
        Ok(())
    }

    /// Takes a connection slot for `ip` and `entity`; the slot is given back when the returned
    /// guard (kept by the socket) is dropped.
    pub fn connect(self: &Arc<Self>, ip: IpAddr, entity: Uuid) -> Result<ConnSlot, &'static str> {
        let mut c = self.counts.lock().unwrap();
        let s = &self.settings;
        if s.connections_per_ip > 0
            && c.per_ip.get(&ip).copied().unwrap_or(0) >= s.connections_per_ip
        {
            crate::metrics::rate_limited("connections_per_ip");
            return Err("Too many connections from this address");
        }
        if s.connections_per_entity > 0
            && c.per_entity.get(&entity).copied().unwrap_or(0) >= s.connections_per_entity
        {
            crate::metrics::rate_limited("connections_per_entity");
            return Err("Too many connections for this entity");
        }
        *c.per_ip.entry(ip).or_default() += 1;
        *c.per_entity.entry(entity).or_default() += 1;
        metrics::gauge!(crate::metrics::CONNECTIONS).increment(1.0);
        metrics::counter!(crate::metrics::CONNECTIONS_TOTAL).increment(1);
        Ok(ConnSlot(Arc::new(SlotInner {
            limits: self.clone(),
            ip,
            entity,
        })))
    }

    fn release(&self, ip: IpAddr, entity: Uuid) {
        let mut c = self.counts.lock().unwrap();
        if let Some(n) = c.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&ip);
            }
        }
        if let Some(n) = c.per_entity.get_mut(&entity) {
            *n -= 1;
            if *n == 0 {
                c.per_entity.remove(&entity);
            }
        }
        metrics::gauge!(crate::metrics::CONNECTIONS).decrement(1.0);
    }

    /// The `/api` middleware: ElizaOS's 429 past the per-IP quota, `RateLimit-*` headers always.
    pub async fn http_layer(
        axum::extract::State(this): axum::extract::State<Arc<Self>>,
        req: Request,
        next: Next,
    ) -> Response {
        let Some(limiter) = &this.http else {
            return next.run(req).await;
        };
        let path = req.uri().path();
        if !(path == "/api" || path.starts_with("/api/")) {
            return next.run(req).await;
        }
        let ip = this.client_ip(req.extensions(), req.headers());
        let limit = this.settings.http_max;
        let window = this.settings.http_window;
        match limiter.check_key(&ip) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                // Seconds until the quota is whole again.
                let used = limit.saturating_sub(remaining) as u64;
                let reset = (window.as_secs() * used).div_ceil(limit.max(1) as u64);
                let mut res = next.run(req).await;
                let h = res.headers_mut();
                h.insert("ratelimit-limit", HeaderValue::from(limit));
                h.insert("ratelimit-remaining", HeaderValue::from(remaining));
                h.insert("ratelimit-reset", HeaderValue::from(reset));
                res
            }
            Err(nu) => {
                crate::metrics::rate_limited("http");
                let wait = nu.wait_time_from(this.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let mut res = (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(json!({
                        "success": false,
                        "error": {
                            "code": "RATE_LIMIT_EXCEEDED",
                            "message": "Too many requests. Please try again later."
                        }
                    })),
                )
                    .into_response();
                let h = res.headers_mut();
                h.insert("retry-after", HeaderValue::from(secs.max(1)));
                h.insert("ratelimit-limit", HeaderValue::from(limit));
                h.insert("ratelimit-remaining", HeaderValue::from(0u32));
                h.insert("ratelimit-reset", HeaderValue::from(secs.max(1)));
                res
            }
        }
    }
}

/// A connection's slot in the per-IP and per-entity counts.
#[derive(Clone)]
pub struct ConnSlot(#[allow(dead_code)] Arc<SlotInner>);

struct SlotInner {
    limits: Arc<Limits>,
    ip: IpAddr,
    entity: Uuid,
}

impl Drop for SlotInner {
    fn drop(&mut self) {
        self.limits.release(self.ip, self.entity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(f: impl FnOnce(&mut LimitSettings)) -> Arc<Limits> {
        let mut s = LimitSettings::default();
        f(&mut s);
        Limits::new(s)
    }

    #[tokio::test]
    async fn messages_per_entity() {
        let l = limits(|s| s.socket_messages_per_min = 3);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..3 {
            l.message(a).unwrap();
        }
        let e = l.message(a).unwrap_err();
        assert!(e.retry_after_ms > 0 && e.retry_after_ms <= 20_000, "{e:?}");
        l.message(b).unwrap();
        let off = limits(|s| s.socket_messages_per_min = 0);
        for _ in 0..1000 {
            off.message(a).unwrap();
        }
    }

    #[tokio::test]
    async fn joins_and_channels() {
        let l = limits(|s| {
            s.socket_joins_per_min = 2;
            s.channels_per_connection = 5;
        });
        let j = l.join_limiter();
        l.join(j.as_ref(), 0, false).unwrap();
        l.join(j.as_ref(), 1, false).unwrap();
        assert!(l.join(j.as_ref(), 2, false).unwrap_err().retry_after_ms > 0);
        let e = l.join(None, 5, false).unwrap_err();
        assert_eq!(e.retry_after_ms, 0);
        l.join(None, 5, true).unwrap();
    }

    #[tokio::test]
    async fn connection_slots() {
        let l = limits(|s| {
            s.connections_per_ip = 2;
            s.connections_per_entity = 1;
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let sa = l.connect(ip, a).unwrap();
        assert!(l.connect(ip, a).is_err(), "per entity");
        let sb = l.connect(ip, b).unwrap();
        assert!(l.connect(ip, c).is_err(), "per ip");
        drop(sa.clone());
        assert!(l.connect(ip, c).is_err(), "a clone keeps the slot");
        drop(sa);
        let _sc = l.connect(ip, c).unwrap();
        drop(sb);
        assert!(!l.counts.lock().unwrap().per_entity.contains_key(&b));
    }

    #[test]
    fn sizes() {
        let l = Limits {
            settings: LimitSettings {
                max_message_chars: 5,
                max_metadata_bytes: 20,
                ..LimitSettings::default()
            },
            http: None,
            messages: None,
            typing: None,
            joins: None,
            uploads: None,
            file_ops: None,
            counts: Mutex::default(),
            clock: DefaultClock::default(),
        };
        let empty = serde_json::Map::new();
        l.message_size("héllo", &empty, None).unwrap();
        assert!(l.message_size("hello!", &empty, None).is_err());
        let mut big = serde_json::Map::new();
        big.insert("k".into(), json!("x".repeat(30)));
        assert!(l.message_size("hi", &big, None).is_err());
        assert!(
            l.message_size("hi", &empty, Some(&json!(["y".repeat(30)])))
                .is_err()
        );
    }
}
