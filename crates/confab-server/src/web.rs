//! The web chat page, built from `web/` by `build.rs` and embedded in the binary.
//!
//! `/`, `/chat` and `/chat-socket` (and `/index.html`) serve the page (`Cache-Control: no-cache`,
//! revalidated by ETag); `/assets/*` are content-hashed and cached for a year as immutable.
//! Anything else stays a plain 404, as before.
//!
//! Text files are embedded with Brotli, zstd and gzip copies made at build time; each request
//! gets the best one its `Accept-Encoding` allows (`Vary: Accept-Encoding`, an ETag per
//! encoding), or the plain bytes.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    pub body: &'static [u8],
    pub content_type: &'static str,
    /// Content-hashed name: cache for good.
    pub immutable: bool,
    pub etag: &'static str,
    /// Precompressed copies: (`Content-Encoding` token, bytes), best first.
    pub encoded: &'static [(&'static str, &'static [u8])],
}

impl Asset {
    /// The copy to send for a request's `Accept-Encoding`: (encoding, bytes), `None` = identity.
    pub fn negotiate(&self, accept: Option<&str>) -> (Option<&'static str>, &'static [u8]) {
        let Some(accept) = accept else {
            return (None, self.body);
        };
        self.encoded
            .iter()
            .find(|(name, _)| accepts(accept, name))
            .map_or((None, self.body), |(name, bytes)| (Some(*name), *bytes))
    }
}

/// Whether an `Accept-Encoding` value allows `coding` (listed, or `*`, with a q-value above 0).
fn accepts(header: &str, coding: &str) -> bool {
    let mut star = false;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            return q > 0.0;
        }
        if name == "*" {
            star = q > 0.0;
        }
    }
    star
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Routes of the single-page app; each serves `index.html`.
const PAGES: &[&str] = &["/", "/index.html", "/chat", "/chat-socket"];

/// The embedded file for a request path, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if PAGES.contains(&path.trim_end_matches('/').max("/")) {
        "/index.html"
    } else {
        path
    };
    ASSETS.iter().find(|a| a.path == path)
}

/// Serves an embedded file, or the plain 404 for anything else.
pub fn serve(method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    let asset = (method == Method::GET || method == Method::HEAD)
        .then(|| find(uri.path()))
        .flatten();
    let Some(asset) = asset else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let cache = if asset.immutable {
        "public, max-age=31536000, immutable"
    } else if asset.path == "/index.html" {
        "no-cache"
    } else {
        "public, max-age=3600"
    };
    let (encoding, body) = asset.negotiate(
        headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    );
    // Each encoding is a different representation, so it has its own validator.
    let etag = match encoding {
        None => HeaderValue::from_static(asset.etag),
        Some(e) => HeaderValue::from_str(&format!("{}-{e}\"", asset.etag.trim_end_matches('"')))
            .expect("an ETag is visible ASCII"),
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().as_bytes() == etag.as_bytes()));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        (StatusCode::OK, [(header::CONTENT_LENGTH, body.len())]).into_response()
    } else {
        body.into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ETAG, etag);
    if !asset.encoded.is_empty() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if let Some(e) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn accept_encoding_negotiation() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(accepts("br;q=0.5, gzip", "br"));
        assert!(!accepts("br;q=0, gzip", "br"));
        assert!(accepts("*", "zstd"));
        assert!(!accepts("*, zstd;q=0", "zstd"));
        assert!(!accepts("identity", "gzip"));
        assert!(!accepts("", "gzip"));
    }

    #[test]
    fn precompressed_copies_decode_to_the_file() {
        let index = find("/").unwrap();
        assert!(
            !index.encoded.is_empty(),
            "index.html has compressed copies"
        );
        for (name, bytes) in index.encoded {
            let plain = match *name {
                "gzip" => {
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(*bytes)
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                }
                "br" => {
                    let mut out = Vec::new();
                    brotli::Decompressor::new(*bytes, 4096)
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                }
                "zstd" => zstd::decode_all(*bytes).unwrap(),
                other => panic!("unexpected encoding {other}"),
            };
            assert_eq!(plain, index.body, "{name} copy");
        }
        assert_eq!(index.negotiate(Some("gzip;q=1, br")).0, Some("br"));
        assert_eq!(index.negotiate(Some("gzip")).0, Some("gzip"));
        assert_eq!(index.negotiate(Some("identity")).0, None);
        assert_eq!(index.negotiate(None).1, index.body);
    }

    #[test]
    fn pages_and_assets() {
        let index = find("/").expect("index.html is embedded");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(!index.immutable);
        for p in ["/chat", "/chat-socket", "/chat/", "/index.html"] {
            assert_eq!(find(p).map(|a| a.path), Some("/index.html"), "{p}");
        }
        assert!(find("/nope").is_none());
        assert!(
            ASSETS
                .iter()
                .all(|a| a.immutable == a.path.starts_with("/assets/"))
        );
    }

    #[test]
    fn caching_headers_and_revalidation() {
        let get = |path: &str, inm: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = inm {
                h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            }
            serve(&Method::GET, &path.parse().unwrap(), &h)
        };
        let res = get("/chat", None);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = res.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(get("/", Some(&etag)).status(), StatusCode::NOT_MODIFIED);
        if let Some(js) = ASSETS
            .iter()
            .find(|a| a.path.starts_with("/assets/") && a.path.ends_with(".js"))
        {
            let res = get(js.path, None);
            assert_eq!(
                res.headers()[header::CONTENT_TYPE],
                "text/javascript; charset=utf-8"
            );
            assert_eq!(
                res.headers()[header::CACHE_CONTROL],
                "public, max-age=31536000, immutable"
            );
        }
        assert_eq!(get("/missing.png", None).status(), StatusCode::NOT_FOUND);
        // A validator for the plain bytes does not match a compressed copy.
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&etag).unwrap());
        let gz = serve(&Method::GET, &"/".parse().unwrap(), &h);
        assert_eq!(gz.status(), StatusCode::OK);
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let post = serve(&Method::POST, &"/".parse().unwrap(), &HeaderMap::new());
        assert_eq!(post.status(), StatusCode::NOT_FOUND);
    }
}
