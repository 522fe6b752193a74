//! Message attachments (`attachments` on a socket send, `metadata.attachments` /
//! `raw_message.attachments` on a REST post): what is accepted, and the form they are stored,
//! broadcast and listed in.
//!
//! An attachment is a URL string or an object with a `url` (ElizaOS's `Media`: `id`, `url`,
//! `title`, `source`, `description`, `text`, `contentType`, plus any other keys a client keeps).
//! A URL is one of:
//! * a confab media path, `/media/uploads/channels/<uuid>/<file>`, `/media/uploads/agents/…`,
//!   `/media/generated/…` (what the upload routes answer);
//! * an absolute file path inside an uploads or generated directory, as ElizaOS's agents hand
//!   them over: rewritten to its `/media/...` URL, as ElizaOS does before broadcasting;
//! * an `http:` or `https:` URL, or a `data:image/…` URL;
//! * a relative reference (`photo.png`), kept as the client gave it.
//!
//! Anything else (`javascript:`, `file:`, other paths) refuses the message.

use serde_json::{Map, Value};

use crate::ids::parse_uuid;

/// At most this many attachments on one message.
pub const MAX_ATTACHMENTS: usize = 16;
/// The longest URL accepted, except `data:` URLs (bounded by the metadata size limit).
pub const MAX_URL_CHARS: usize = 4096;

/// The `/media/...` URL families and the directory names they are stored under.
const FAMILIES: [(&str, &str); 3] = [
    ("/uploads/channels/", "/media/uploads/channels/"),
    ("/uploads/agents/", "/media/uploads/agents/"),
    ("/generated/", "/media/generated/"),
];

/// Why attachments were refused; the text goes back to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid attachments: {0}")]
pub struct AttachmentError(pub String);

fn refuse(text: impl Into<String>) -> AttachmentError {
    AttachmentError(text.into())
}

/// Checks a message's attachments and gives them in stored form: always an array, every
/// URL a safe one, file paths rewritten to `/media/...` URLs. `null` means none (`None`).
pub fn normalize(value: &Value) -> Result<Option<Value>, AttachmentError> {
    let items: Vec<&Value> = match value {
        Value::Null => return Ok(None),
        Value::Array(a) => a.iter().collect(),
        single @ (Value::String(_) | Value::Object(_)) => vec![single],
        _ => return Err(refuse("expected an array of attachments")),
    };
    if items.len() > MAX_ATTACHMENTS {
        return Err(refuse(format!(
            "at most {MAX_ATTACHMENTS} attachments per message"
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        out.push(match item {
            Value::String(url) => Value::String(checked_url(url, i)?),
            Value::Object(obj) => Value::Object(checked_object(obj, i)?),
            _ => {
                return Err(refuse(format!(
                    "attachment {i} must be a URL or an object with a url"
                )));
            }
        });
    }
    Ok(Some(Value::Array(out)))
}

fn checked_object(
    obj: &Map<String, Value>,
    i: usize,
) -> Result<Map<String, Value>, AttachmentError> {
    let url = obj
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse(format!("attachment {i} has no url")))?;
    for key in [
        "id",
        "title",
        "source",
        "description",
        "text",
        "contentType",
        "name",
    ] {
        if let Some(v) = obj.get(key)
            && !(v.is_string() || v.is_null())
        {
            return Err(refuse(format!("attachment {i}: {key} must be a string")));
        }
    }
    let mut obj = obj.clone();
    obj.insert("url".into(), Value::String(checked_url(url, i)?));
    Ok(obj)
}

fn checked_url(url: &str, i: usize) -> Result<String, AttachmentError> {
    let bad = || {
        refuse(format!(
            "attachment {i}: the url must be a /media/ path, an http(s) URL or a data:image URL"
        ))
    };
    let lower = url.get(..16).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("data:image/") {
        return Ok(url.to_owned());
    }
    if url.is_empty() || url.chars().count() > MAX_URL_CHARS || url.chars().any(char::is_control) {
        return Err(bad());
    }
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Ok(url.to_owned());
    }
    if url.starts_with("/media/") {
        return media_path(url).ok_or_else(bad);
    }
    if relative(url) {
        return Ok(url.to_owned());
    }
    file_path_url(url).ok_or_else(bad)
}

/// A relative reference (`photo.png`, `files/a.pdf`): no scheme, not rooted. Clients keep such
/// names as ElizaOS lets them; a browser resolves them under the page, never as a script.
fn relative(url: &str) -> bool {
    let head = url.split(['/', '?', '#']).next().unwrap_or(url);
    !head.contains(':') && !url.starts_with('/') && !url.starts_with('\\')
}

/// A `/media/<family>/<uuid>/<file>` path, checked.
fn media_path(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    FAMILIES.iter().find_map(|(_, prefix)| {
        let rest = path.strip_prefix(prefix)?;
        let (owner, file) = rest.split_once('/')?;
        (parse_uuid(owner).is_some() && plain_file(file)).then(|| url.to_owned())
    })
}

/// ElizaOS's rewrite of an absolute file path under an uploads or generated directory
/// (`…/uploads/channels/<id>/<file>` → `/media/uploads/channels/<id>/<file>`).
pub fn file_path_url(path: &str) -> Option<String> {
    let absolute = path.starts_with('/')
        || (path.len() > 2
            && path.as_bytes()[1] == b':'
            && path.as_bytes()[0].is_ascii_alphabetic());
    if !absolute {
        return None;
    }
    let path = path.replace('\\', "/");
    FAMILIES.iter().find_map(|(dir, prefix)| {
        let at = path.rfind(dir)?;
        let rest = &path[at + dir.len()..];
        let (owner, file) = rest.split_once('/')?;
        let owner = parse_uuid(owner)?;
        plain_file(file).then(|| format!("{prefix}{owner}/{file}"))
    })
}

/// A file name with no separator and nothing special (the media store's rule).
fn plain_file(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A REST body's `metadata` or `raw_message` with its `attachments` (if any) in stored form.
pub fn normalize_within(holder: Option<Value>) -> Result<Option<Value>, AttachmentError> {
    let Some(mut holder) = holder else {
        return Ok(None);
    };
    if let Some(obj) = holder.as_object_mut()
        && let Some(a) = obj.get("attachments")
    {
        match normalize(a)? {
            Some(a) => obj.insert("attachments".into(), a),
            None => obj.remove("attachments"),
        };
    }
    Ok(Some(holder))
}

/// The `/media/...` URLs among stored attachments (for removing a message's files).
pub fn media_urls(value: &Value) -> Vec<String> {
    let url = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("url").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    let all: Vec<String> = match value {
        Value::Array(a) => a.iter().filter_map(url).collect(),
        other => url(other).into_iter().collect(),
    };
    all.into_iter()
        .filter(|u| u.starts_with("/media/"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "0b9e2a4c-1c7e-4a8e-9f3d-5a8a9d2c1e00";

    #[test]
    fn accepted_and_rewritten() {
        let media = format!("/media/uploads/channels/{ID}/1-2.png");
        let v = normalize(&json!([
            {"url": media, "contentType": "image", "title": "a"},
            "https://example.com/x.png",
            "photo.png",
            {"url": format!("/home/eliza/.eliza/data/uploads/agents/{ID}/3.jpg")},
            format!("C:\\eliza\\data\\generated\\{ID}\\4.png"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(v[0]["url"], json!(media));
        assert_eq!(v[0]["title"], json!("a"));
        assert_eq!(
            v[3]["url"],
            json!(format!("/media/uploads/agents/{ID}/3.jpg"))
        );
        assert_eq!(v[2], json!("photo.png"));
        assert_eq!(v[4], json!(format!("/media/generated/{ID}/4.png")));
        assert_eq!(normalize(&json!(null)).unwrap(), None);
        assert_eq!(
            normalize(&json!({"url": "http://x/y"})).unwrap(),
            Some(json!([{"url": "http://x/y"}]))
        );
        assert_eq!(
            media_urls(&v),
            vec![
                media,
                format!("/media/uploads/agents/{ID}/3.jpg"),
                format!("/media/generated/{ID}/4.png")
            ]
        );
    }

    #[test]
    fn refused() {
        for bad in [
            json!(1),
            json!([1]),
            json!([{"title": "no url"}]),
            json!(["javascript:alert(1)"]),
            json!(["file:///etc/passwd"]),
            json!(["vbscript:x"]),
            json!(["\\\\host\\share\\x"]),
            json!(["/etc/passwd"]),
            json!([format!("/media/uploads/channels/{ID}/../../x")]),
            json!(["/media/uploads/channels/not-a-uuid/x.png"]),
            json!([{"url": "https://x", "title": 5}]),
            json!(vec!["https://x"; MAX_ATTACHMENTS + 1]),
        ] {
            assert!(normalize(&bad).is_err(), "{bad}");
        }
    }
}
