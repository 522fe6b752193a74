//! Media: what an upload answers (ElizaOS 1.7.2's `upload-media` shape), the file to upload, and
//! the attachment a message carries.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::client::{Error, Result};

/// The answer to `POST /api/messaging/channels/:id/upload-media` and
/// `POST /api/media/agents/:id/upload-media` (the `data` of ElizaOS's envelope):
/// `{url, type, filename, originalName, size}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaUpload {
    /// Where the file is served, relative to the server: `/media/uploads/channels/<id>/<name>`.
    pub url: String,
    /// The MIME type the server recorded (channel uploads) or the media kind (agent uploads).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The stored file's name (`<timestamp>-<random><ext>`).
    #[serde(default)]
    pub filename: String,
    /// The name it was uploaded under.
    #[serde(default)]
    pub original_name: String,
    /// Bytes.
    #[serde(default)]
    pub size: u64,
}

/// A file to upload: its name, its bytes, and the MIME type to claim (the server checks it
/// against the content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFile {
    pub name: String,
    pub bytes: Vec<u8>,
    pub content_type: String,
}

impl MediaFile {
    /// A file from memory; the MIME type is guessed from the name's extension.
    pub fn new(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        let name = name.into();
        let content_type = mime_guess::from_path(&name)
            .first_or_octet_stream()
            .essence_str()
            .to_owned();
        MediaFile {
            name,
            bytes: bytes.into(),
            content_type,
        }
    }

    /// Reads a file from disk.
    pub async fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| Error::Http(format!("{}: {e}", path.display())))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        Ok(MediaFile::new(name, bytes))
    }

    /// Overrides the guessed MIME type.
    pub fn content_type(mut self, mime: impl Into<String>) -> Self {
        self.content_type = mime.into();
        self
    }
}

/// An attachment of a message, in ElizaOS's `Media` shape:
/// `{id, url, title?, source?, description?, text?, contentType?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(default)]
    pub id: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `image`, `video`, `audio`, `document` or `link`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

impl Attachment {
    /// The attachment for an uploaded file, as ElizaOS's web client builds it: the served url,
    /// the original name as the title, `source: "file_upload"`, the content kind.
    pub fn from_upload(upload: &MediaUpload) -> Self {
        Attachment {
            id: Uuid::new_v4().to_string(),
            url: upload.url.clone(),
            title: Some(if upload.original_name.is_empty() {
                upload.filename.clone()
            } else {
                upload.original_name.clone()
            }),
            source: Some("file_upload".into()),
            description: None,
            text: None,
            content_type: Some(content_kind(&upload.kind).into()),
        }
    }

    /// The attachments in a message's `attachments` value (an array; anything without a `url`
    /// is skipped).
    pub(crate) fn list_from(v: &Value) -> Vec<Attachment> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| serde_json::from_value(a.clone()).ok())
            .collect()
    }
}

/// ElizaOS's content kind for a MIME type (or an agent upload's `type`, already a kind).
pub fn content_kind(mime: &str) -> &'static str {
    let top = mime.split('/').next().unwrap_or_default();
    match top {
        "image" => "image",
        "video" => "video",
        "audio" => "audio",
        _ => "document",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn upload_shape_and_attachment() {
        let u: MediaUpload = serde_json::from_value(json!({
            "url": "/media/uploads/channels/c/1-x.png", "type": "image/png",
            "filename": "1-x.png", "originalName": "cat.png", "size": 42
        }))
        .unwrap();
        assert_eq!(
            (u.kind.as_str(), u.original_name.as_str(), u.size),
            ("image/png", "cat.png", 42)
        );
        let a = Attachment::from_upload(&u);
        assert_eq!(a.content_type.as_deref(), Some("image"));
        assert_eq!(a.title.as_deref(), Some("cat.png"));
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["contentType"], "image");
        assert_eq!(v["url"], "/media/uploads/channels/c/1-x.png");
        assert!(v.get("description").is_none());
        assert_eq!(
            Attachment::list_from(&json!([{"url": "/a"}, {"nourl": 1}, 3])).len(),
            1
        );
    }

    #[test]
    fn guesses_the_mime_type() {
        assert_eq!(MediaFile::new("a.PNG", vec![]).content_type, "image/png");
        assert_eq!(
            MediaFile::new("notes.txt", vec![]).content_type,
            "text/plain"
        );
        assert_eq!(
            MediaFile::new("blob", vec![]).content_type,
            "application/octet-stream"
        );
        assert_eq!(content_kind("application/pdf"), "document");
    }
}
