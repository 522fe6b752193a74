//! Media files (uploads and agent-generated files) behind one trait, [`MediaStore`]:
//!
//! * [`FileMedia`] keeps them under a directory (the data directory's `media/`), laid out like
//!   ElizaOS's: `uploads/channels/<id>/<file>`, `uploads/agents/<id>/<file>`,
//!   `generated/<id>/<file>`.
//! * [`PgMedia`] keeps them in PostgreSQL (`media_files`, bytea), so every node of a cluster
//!   serves every file.
//!
//! A file is named by a [`MediaKey`]: its family ([`MediaKind`]), the channel or agent it belongs
//! to, and a plain file name ([`valid_filename`]); nothing a client sends can name a path
//! outside the store.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{StoreError, StoreResult};

/// The URL family a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `/media/uploads/channels/:channelId/:filename`
    Channel,
    /// `/media/uploads/agents/:agentId/:filename`
    Agent,
    /// `/media/generated/:agentId/:filename`
    Generated,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Channel => "channel",
            MediaKind::Agent => "agent",
            MediaKind::Generated => "generated",
        }
    }

    /// The URL prefix ElizaOS serves the family under (ends with `/`).
    pub fn url_prefix(self) -> &'static str {
        match self {
            MediaKind::Channel => "/media/uploads/channels/",
            MediaKind::Agent => "/media/uploads/agents/",
            MediaKind::Generated => "/media/generated/",
        }
    }

    /// Where the family lives under a file store's root.
    fn dir(self) -> &'static str {
        match self {
            MediaKind::Channel => "uploads/channels",
            MediaKind::Agent => "uploads/agents",
            MediaKind::Generated => "generated",
        }
    }

    pub const ALL: [MediaKind; 3] = [MediaKind::Channel, MediaKind::Agent, MediaKind::Generated];
}

/// One file: its family, its channel or agent, its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaKey {
    pub kind: MediaKind,
    pub owner: Uuid,
    pub filename: String,
}

impl MediaKey {
    /// A key, if the file name is a plain one ([`valid_filename`]).
    pub fn new(kind: MediaKind, owner: Uuid, filename: &str) -> Option<Self> {
        valid_filename(filename).then(|| MediaKey {
            kind,
            owner,
            filename: filename.to_owned(),
        })
    }

    /// The path ElizaOS serves it at, e.g. `/media/uploads/channels/<id>/<file>`.
    pub fn url(&self) -> String {
        format!("{}{}/{}", self.kind.url_prefix(), self.owner, self.filename)
    }

    /// The key a `/media/...` URL (or path) names, if any.
    pub fn from_url(url: &str) -> Option<Self> {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        MediaKind::ALL.into_iter().find_map(|kind| {
            let rest = path.strip_prefix(kind.url_prefix())?;
            let (owner, filename) = rest.split_once('/')?;
            let owner = Uuid::parse_str(owner).ok()?;
            MediaKey::new(kind, owner, filename)
        })
    }
}

/// A plain file name: 1–200 characters of `A–Z a–z 0–9 . _ -`, not starting with a dot. No
/// separators, no `..`, nothing a file system or a URL reads specially.
pub fn valid_filename(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The content type a stored file is served with, from its extension (uploads are named after
/// the type their content was found to be, so the two agree).
pub fn content_type_for(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" | "oga" => "audio/ogg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "pdf" => "application/pdf",
        "txt" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// A stored file.
#[derive(Debug, Clone)]
pub struct MediaObject {
    pub content_type: String,
    pub data: Bytes,
}

/// Where media files live.
#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    /// For logs: `files:/path` or `postgresql`.
    fn describe(&self) -> String;
    /// Stores a file (replacing one of the same key).
    async fn put(&self, key: &MediaKey, content_type: &str, data: Bytes) -> StoreResult<()>;
    async fn get(&self, key: &MediaKey) -> StoreResult<Option<MediaObject>>;
    /// Removes a file; false if there was none.
    async fn delete(&self, key: &MediaKey) -> StoreResult<bool>;
    /// Removes every file of a channel or agent; how many there were.
    async fn delete_owner(&self, kind: MediaKind, owner: Uuid) -> StoreResult<u64>;
    /// The key of an absolute file path inside this store (ElizaOS's agents hand attachments
    /// over as such paths); `None` for a store without paths or a path outside it.
    fn key_of_path(&self, _path: &str) -> Option<MediaKey> {
        None
    }
}

impl std::fmt::Debug for dyn MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Files under a directory.
pub struct FileMedia {
    root: PathBuf,
}

impl FileMedia {
    /// Media under `root` (created when the first file is stored).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileMedia { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn owner_dir(&self, kind: MediaKind, owner: Uuid) -> PathBuf {
        self.root.join(kind.dir()).join(owner.to_string())
    }

    fn path(&self, key: &MediaKey) -> PathBuf {
        self.owner_dir(key.kind, key.owner).join(&key.filename)
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("media files: {e}"))
}

#[async_trait]
impl MediaStore for FileMedia {
    fn describe(&self) -> String {
        format!("files:{}", self.root.display())
    }

    async fn put(&self, key: &MediaKey, _content_type: &str, data: Bytes) -> StoreResult<()> {
        let dir = self.owner_dir(key.kind, key.owner);
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        // Written whole under a temporary name, then renamed: a reader never sees half a file.
        let tmp = dir.join(format!(
            ".{}.{}.part",
            key.filename,
            Uuid::new_v4().simple()
        ));
        tokio::fs::write(&tmp, &data).await.map_err(io)?;
        if let Err(e) = tokio::fs::rename(&tmp, self.path(key)).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io(e));
        }
        Ok(())
    }

    async fn get(&self, key: &MediaKey) -> StoreResult<Option<MediaObject>> {
        match tokio::fs::read(self.path(key)).await {
            Ok(data) => Ok(Some(MediaObject {
                content_type: content_type_for(&key.filename).to_owned(),
                data: Bytes::from(data),
            })),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(io(e)),
        }
    }

    async fn delete(&self, key: &MediaKey) -> StoreResult<bool> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    async fn delete_owner(&self, kind: MediaKind, owner: Uuid) -> StoreResult<u64> {
        let dir = self.owner_dir(kind, owner);
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(e)),
        };
        let mut n = 0;
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            if !entry.file_name().to_string_lossy().starts_with('.') {
                n += 1;
            }
        }
        tokio::fs::remove_dir_all(&dir).await.map_err(io)?;
        Ok(n)
    }

    fn key_of_path(&self, path: &str) -> Option<MediaKey> {
        let rel = Path::new(path).strip_prefix(&self.root).ok()?;
        let rel = rel.to_str()?.replace('\\', "/");
        MediaKind::ALL.into_iter().find_map(|kind| {
            let rest = rel.strip_prefix(kind.dir())?.strip_prefix('/')?;
            let (owner, filename) = rest.split_once('/')?;
            MediaKey::new(kind, Uuid::parse_str(owner).ok()?, filename)
        })
    }
}

/// Files in PostgreSQL (`media_files`, migration 0009), on the store's own pool.
pub struct PgMedia {
    pool: PgPool,
}

impl PgMedia {
    /// Media on `pool`, whose migrations (the store's) have created `media_files`.
    pub fn new(pool: PgPool) -> Self {
        PgMedia { pool }
    }
}

#[async_trait]
impl MediaStore for PgMedia {
    fn describe(&self) -> String {
        "postgresql:media_files".into()
    }

    async fn put(&self, key: &MediaKey, content_type: &str, data: Bytes) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO media_files (kind, owner_id, filename, content_type, size, data) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (kind, owner_id, filename) DO UPDATE \
             SET content_type = EXCLUDED.content_type, size = EXCLUDED.size, data = EXCLUDED.data",
        )
        .bind(key.kind.as_str())
        .bind(key.owner.to_string())
        .bind(&key.filename)
        .bind(content_type)
        .bind(data.len() as i64)
        .bind(data.as_ref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get(&self, key: &MediaKey) -> StoreResult<Option<MediaObject>> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT content_type, data FROM media_files \
             WHERE kind = $1 AND owner_id = $2 AND filename = $3",
        )
        .bind(key.kind.as_str())
        .bind(key.owner.to_string())
        .bind(&key.filename)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(content_type, data)| MediaObject {
            content_type,
            data: Bytes::from(data),
        }))
    }

    async fn delete(&self, key: &MediaKey) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM media_files WHERE kind = $1 AND owner_id = $2 AND filename = $3",
        )
        .bind(key.kind.as_str())
        .bind(key.owner.to_string())
        .bind(&key.filename)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_owner(&self, kind: MediaKind, owner: Uuid) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM media_files WHERE kind = $1 AND owner_id = $2")
            .bind(kind.as_str())
            .bind(owner.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls() {
        for bad in ["", ".hidden", "a/b", "..", "a\\b", "a b", "x%2e", "é.png"] {
            assert!(!valid_filename(bad), "{bad:?}");
        }
        assert!(valid_filename("1700000000000-123.png"));
        let id = Uuid::new_v4();
        let key = MediaKey::new(MediaKind::Channel, id, "1-2.png").unwrap();
        assert_eq!(key.url(), format!("/media/uploads/channels/{id}/1-2.png"));
        assert_eq!(MediaKey::from_url(&key.url()), Some(key.clone()));
        assert_eq!(MediaKey::from_url(&format!("{}?x=1", key.url())), Some(key));
        assert_eq!(
            MediaKey::from_url(&format!("/media/uploads/channels/{id}/../x")),
            None
        );
        assert_eq!(
            MediaKey::from_url("/media/generated/not-a-uuid/a.png"),
            None
        );
    }

    #[tokio::test]
    async fn files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileMedia::new(dir.path().join("media"));
        let (ch, other) = (Uuid::new_v4(), Uuid::new_v4());
        let a = MediaKey::new(MediaKind::Channel, ch, "a.png").unwrap();
        let b = MediaKey::new(MediaKind::Channel, ch, "b.txt").unwrap();
        let c = MediaKey::new(MediaKind::Channel, other, "c.txt").unwrap();
        assert!(store.get(&a).await.unwrap().is_none());
        for k in [&a, &b, &c] {
            store
                .put(k, "x", Bytes::from_static(b"data"))
                .await
                .unwrap();
        }
        let got = store.get(&a).await.unwrap().unwrap();
        assert_eq!(&got.data[..], b"data");
        assert_eq!(got.content_type, "image/png");
        let path = dir
            .path()
            .join("media/uploads/channels")
            .join(ch.to_string())
            .join("a.png");
        assert_eq!(store.key_of_path(path.to_str().unwrap()), Some(a.clone()));
        assert!(store.delete(&a).await.unwrap());
        assert!(!store.delete(&a).await.unwrap());
        assert_eq!(store.delete_owner(MediaKind::Channel, ch).await.unwrap(), 1);
        assert!(store.get(&b).await.unwrap().is_none());
        assert!(store.get(&c).await.unwrap().is_some());
    }
}
