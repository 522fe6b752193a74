//! Handshake requests, copied out of hyper's read buffer.
//!
//! hyper parses a request without copying: the URI and every header value are slices of the
//! connection's read buffer (8 to 16 KiB). engineioxide keeps the request that opened a session
//! (`req_parts`) for the session's whole life, and with it that whole buffer — for an idle
//! websocket, the largest allocation it has. So before a Socket.IO request that can open a
//! session reaches socketioxide, its URI (and axum's `OriginalUri`, a clone of it) and headers
//! are copied into allocations of their own size; the buffer is then freed once the connection
//! is upgraded.

use axum::extract::OriginalUri;
use axum::http::{HeaderMap, HeaderValue, Request, Uri, request::Parts};

/// Copies the URI and header values of `parts` into allocations of their own.
pub fn detach(parts: &mut Parts) {
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        // `from_bytes` copies (only valid values reach here: the same check hyper made).
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), copy);
    }
    parts.headers = headers;
    parts.uri = copy_uri(&parts.uri);
    // axum's router keeps the URI as it arrived, a clone sharing the same buffer.
    if let Some(OriginalUri(original)) = parts.extensions.get_mut::<OriginalUri>() {
        *original = copy_uri(original);
    }
}

fn copy_uri(uri: &Uri) -> Uri {
    Uri::try_from(uri.to_string()).unwrap_or_else(|_| uri.clone())
}

/// True for a request that may open an Engine.IO session (and so be kept by it): one under
/// `/socket.io/` without a `sid` (a request of an existing session is not kept).
pub fn opens_session<B>(req: &Request<B>) -> bool {
    req.uri().path().starts_with("/socket.io")
        && !req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("sid=")))
}

/// The middleware: [`detach`] for requests that may open a session, nothing for others.
pub fn layer<B>(req: Request<B>) -> Request<B> {
    if !opens_session(&req) {
        return req;
    }
    let (mut parts, body) = req.into_parts();
    detach(&mut parts);
    Request::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    /// A request parsed the way hyper does it: URI and values share one buffer.
    fn shared_request(buf: &Bytes) -> Request<()> {
        let text = std::str::from_utf8(buf).unwrap();
        let uri_at = text.find("/socket.io").unwrap();
        let uri_end = uri_at + text[uri_at..].find(' ').unwrap();
        let value_at = text.find("secret").unwrap();
        let mut req = Request::new(());
        *req.uri_mut() = Uri::from_maybe_shared(buf.slice(uri_at..uri_end)).unwrap();
        let original = OriginalUri(req.uri().clone());
        req.extensions_mut().insert(original);
        req.headers_mut().insert(
            "x-api-key",
            HeaderValue::from_maybe_shared(buf.slice(value_at..value_at + 6)).unwrap(),
        );
        req.headers_mut()
            .append("accept", HeaderValue::from_static("a"));
        req.headers_mut()
            .append("accept", HeaderValue::from_static("b"));
        let mut secret = HeaderValue::from_static("Bearer t");
        secret.set_sensitive(true);
        req.headers_mut().insert("authorization", secret);
        req
    }

    #[test]
    fn copies_uri_and_headers_out_of_the_shared_buffer() {
        let mut buf = Vec::from(
            &b"GET /socket.io/?EIO=4&transport=websocket&apiKey=k HTTP/1.1\r\nx-api-key: secret\r\n\r\n"[..],
        );
        buf.resize(16 * 1024, 0);
        let buf = Bytes::from(buf);
        let req = layer(shared_request(&buf));
        // Only `buf` itself still refers to the buffer: nothing in the request does.
        assert!(buf.is_unique(), "the request still holds the read buffer");
        assert_eq!(
            req.uri().to_string(),
            "/socket.io/?EIO=4&transport=websocket&apiKey=k"
        );
        assert_eq!(
            req.uri().query(),
            Some("EIO=4&transport=websocket&apiKey=k")
        );
        assert_eq!(req.extensions().get::<OriginalUri>().unwrap().0, *req.uri());
        assert_eq!(req.headers()["x-api-key"], "secret");
        let accept: Vec<_> = req.headers().get_all("accept").iter().collect();
        assert_eq!(accept, ["a", "b"]);
        assert!(req.headers()["authorization"].is_sensitive());
    }

    #[test]
    fn only_session_opening_requests() {
        let with = |uri: &str| {
            let mut req = Request::new(());
            *req.uri_mut() = uri.parse().unwrap();
            opens_session(&req)
        };
        assert!(with("/socket.io/?EIO=4&transport=websocket"));
        assert!(with("/socket.io/?EIO=4&transport=polling&t=abc"));
        assert!(!with("/socket.io/?EIO=4&transport=websocket&sid=abc"));
        assert!(!with("/socket.io/?sid=abc&EIO=4&transport=polling"));
        assert!(!with("/api/messaging/channels"));
    }
}
