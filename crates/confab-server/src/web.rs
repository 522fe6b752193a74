//! The web chat page, built from `web/` by `build.rs` and embedded in the binary.
//!
//! `/`, `/chat` and `/chat-socket` (and `/index.html`) serve the page (`Cache-Control: no-cache`,
//! revalidated by ETag); `/assets/*` are content-hashed and cached for a year as immutable.
//! Anything else stays a plain 404, as before.

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
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        (StatusCode::OK, [(header::CONTENT_LENGTH, asset.body.len())]).into_response()
    } else {
        asset.body.into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

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
        if let Some(js) = ASSETS.iter().find(|a| a.path.ends_with(".js")) {
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
        let post = serve(&Method::POST, &"/".parse().unwrap(), &HeaderMap::new());
        assert_eq!(post.status(), StatusCode::NOT_FOUND);
    }
}
