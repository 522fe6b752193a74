//! The REST calls a chat needs: agents, channels, DMs, history, media uploads.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::client::{Error, Result};
use crate::media::{MediaFile, MediaUpload};
use crate::types::{DEFAULT_SERVER, Message};

/// An agent as `GET /api/agents` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    pub id: Uuid,
    pub name: String,
    /// `active` or `inactive`.
    pub status: String,
}

/// A channel of a message server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    pub id: Uuid,
    pub name: String,
    /// `DM`, `GROUP`, …
    pub kind: String,
}

impl ChannelInfo {
    fn from_json(v: &Value) -> Option<ChannelInfo> {
        Some(ChannelInfo {
            id: v["id"].as_str()?.parse().ok()?,
            name: v["name"].as_str().unwrap_or_default().to_owned(),
            kind: v["type"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// HTTP access to the same server.
#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
}

impl Rest {
    pub fn new(base: &str, api_key: Option<String>) -> Self {
        let base = base.trim_end_matches('/');
        let base = if base.contains("://") {
            base.to_owned()
        } else {
            format!("http://{base}")
        };
        let base = base
            .replacen("ws://", "http://", 1)
            .replacen("wss://", "https://", 1);
        Rest {
            http: reqwest::Client::new(),
            base,
            api_key,
        }
    }

    /// Like [`Rest::new`], trusting these PEM certificates for `https://` besides the system's
    /// roots (see [`Config::add_root_certificate_pem`](crate::Config::add_root_certificate_pem)).
    pub fn with_root_certificates(
        base: &str,
        api_key: Option<String>,
        pems: &[Vec<u8>],
    ) -> Result<Self> {
        let mut rest = Rest::new(base, api_key);
        if pems.is_empty() {
            return Ok(rest);
        }
        let mut builder = reqwest::Client::builder();
        for pem in pems {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Connect(format!("bad PEM certificate: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        rest.http = builder.build().map_err(|e| Error::Connect(e.to_string()))?;
        Ok(rest)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.execute(req).await
    }

    /// Sends a request with the API key; the JSON answer, or ElizaOS's error message.
    async fn execute(&self, mut req: reqwest::RequestBuilder) -> Result<Value> {
        if let Some(key) = &self.api_key {
            req = req.header("x-api-key", key);
        }
        let res = req.send().await.map_err(|e| Error::Http(e.to_string()))?;
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = v["error"]["message"]
                .as_str()
                .or_else(|| v["error"].as_str())
                .or_else(|| v["message"].as_str())
                .unwrap_or("request failed");
            return Err(Error::Http(format!("{status}: {msg}")));
        }
        Ok(v)
    }

    /// The absolute URL of a server path (`/media/...` as an upload answers it); an absolute
    /// URL is returned as it is.
    pub fn url(&self, path: &str) -> String {
        if path.contains("://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Uploads a file to a channel (`POST /api/messaging/channels/:id/upload-media`, multipart
    /// field `file`). Send it with a message through
    /// [`Outgoing::attach`](crate::Outgoing::attach) and [`Attachment::from_upload`](crate::Attachment::from_upload).
    pub async fn upload_channel_media(
        &self,
        channel: Uuid,
        file: MediaFile,
    ) -> Result<MediaUpload> {
        self.upload(
            &format!("/api/messaging/channels/{channel}/upload-media"),
            file,
        )
        .await
    }

    /// Uploads a file for an agent (`POST /api/media/agents/:id/upload-media`).
    pub async fn upload_agent_media(&self, agent: Uuid, file: MediaFile) -> Result<MediaUpload> {
        self.upload(&format!("/api/media/agents/{agent}/upload-media"), file)
            .await
    }

    async fn upload(&self, path: &str, file: MediaFile) -> Result<MediaUpload> {
        let part = reqwest::multipart::Part::bytes(file.bytes)
            .file_name(file.name)
            .mime_str(&file.content_type)
            .map_err(|e| Error::Http(format!("bad content type: {e}")))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let req = self
            .http
            .request(reqwest::Method::POST, self.url(path))
            .multipart(form);
        let v = self.execute(req).await?;
        serde_json::from_value(v["data"].clone())
            .map_err(|e| Error::Http(format!("unexpected upload answer ({e}): {v}")))
    }

    /// Every agent.
    pub async fn agents(&self) -> Result<Vec<AgentInfo>> {
        let v = self.call(reqwest::Method::GET, "/api/agents", None).await?;
        Ok(v["data"]["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                Some(AgentInfo {
                    id: a["id"].as_str()?.parse().ok()?,
                    name: a["name"].as_str().unwrap_or_default().to_owned(),
                    status: a["status"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    /// Every channel of the default message server.
    pub async fn channels(&self) -> Result<Vec<ChannelInfo>> {
        let path = format!("/api/messaging/message-servers/{DEFAULT_SERVER}/channels");
        let v = self.call(reqwest::Method::GET, &path, None).await?;
        Ok(v["data"]["channels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(ChannelInfo::from_json)
            .collect())
    }

    /// The DM channel between two entities (found or created).
    pub async fn dm_channel(&self, me: Uuid, other: Uuid) -> Result<ChannelInfo> {
        let path = format!("/api/messaging/dm-channel?currentUserId={me}&targetUserId={other}");
        let v = self.call(reqwest::Method::GET, &path, None).await?;
        ChannelInfo::from_json(&v["data"]).ok_or_else(|| Error::Http(format!("bad channel: {v}")))
    }

    /// Creates a group channel with these participants.
    pub async fn create_group(&self, name: &str, participants: &[Uuid]) -> Result<ChannelInfo> {
        let body = json!({
            "name": name,
            "participantCentralUserIds": participants,
            "message_server_id": DEFAULT_SERVER,
            "type": "GROUP",
        });
        let v = self
            .call(reqwest::Method::POST, "/api/messaging/channels", Some(body))
            .await?;
        ChannelInfo::from_json(&v["data"]).ok_or_else(|| Error::Http(format!("bad channel: {v}")))
    }

    /// Up to `limit` messages before `before` (epoch ms; `None`: the newest), oldest first.
    pub async fn history(
        &self,
        channel: Uuid,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<Message>> {
        let mut path = format!("/api/messaging/channels/{channel}/messages?limit={limit}");
        if let Some(b) = before {
            path.push_str(&format!("&before={b}"));
        }
        let v = self.call(reqwest::Method::GET, &path, None).await?;
        let mut list: Vec<Message> = v["data"]["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Message::from_history)
            .collect();
        list.reverse();
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    //! The upload request as a server receives it: a small axum server on a free loopback port
    //! records what arrives and answers in ElizaOS's shape.

    use std::sync::{Arc, Mutex};

    use axum::extract::{Multipart, Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use axum::{Json, Router};

    use super::*;

    #[derive(Debug, Default, Clone)]
    struct Seen {
        route: String,
        id: String,
        api_key: Option<String>,
        fields: Vec<Field>,
    }

    type Log = Arc<Mutex<Vec<Seen>>>;
    /// A multipart field: name, file name, content type, bytes.
    type Field = (String, Option<String>, Option<String>, Vec<u8>);

    async fn record(route: &str, id: String, headers: HeaderMap, mut form: Multipart) -> Seen {
        let mut seen = Seen {
            route: route.into(),
            id,
            api_key: headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            fields: Vec::new(),
        };
        while let Some(field) = form.next_field().await.unwrap() {
            let name = field.name().unwrap_or_default().to_owned();
            let file = field.file_name().map(str::to_owned);
            let mime = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.unwrap().to_vec();
            seen.fields.push((name, file, mime, bytes));
        }
        seen
    }

    fn answer(seen: &Seen, prefix: &str) -> (StatusCode, Json<Value>) {
        let (_, file, mime, bytes) = &seen.fields[0];
        if seen.id == Uuid::nil().to_string() {
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({"success": false, "error": {"code": "INVALID_FILE_TYPE", "message": "File type not allowed"}}),
                ),
            );
        }
        (
            StatusCode::OK,
            Json(json!({"success": true, "data": {
                "url": format!("/media/{prefix}/{}/1700000000000-abc.png", seen.id),
                "type": mime, "filename": "1700000000000-abc.png",
                "originalName": file, "size": bytes.len(),
            }})),
        )
    }

    async fn fake_server() -> (String, Log) {
        let log: Log = Arc::default();
        let app = Router::new()
            .route(
                "/api/messaging/channels/{id}/upload-media",
                post(
                    |State(log): State<Log>,
                     Path(id): Path<String>,
                     h: HeaderMap,
                     form: Multipart| async move {
                        let seen = record("channel", id, h, form).await;
                        let reply = answer(&seen, "uploads/channels");
                        log.lock().unwrap().push(seen);
                        reply
                    },
                ),
            )
            .route(
                "/api/media/agents/{id}/upload-media",
                post(
                    |State(log): State<Log>,
                     Path(id): Path<String>,
                     h: HeaderMap,
                     form: Multipart| async move {
                        let seen = record("agent", id, h, form).await;
                        let reply = answer(&seen, "uploads/agents");
                        log.lock().unwrap().push(seen);
                        reply
                    },
                ),
            )
            .with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), log)
    }

    #[tokio::test]
    async fn channel_upload_sends_one_multipart_file_field() {
        let (base, log) = fake_server().await;
        let rest = Rest::new(&base, Some("k3y".into()));
        let channel = Uuid::new_v4();
        let png = b"\x89PNG\r\n\x1a\n0000".to_vec();
        let up = rest
            .upload_channel_media(channel, MediaFile::new("cat.png", png.clone()))
            .await
            .unwrap();
        assert_eq!(
            up,
            MediaUpload {
                url: format!("/media/uploads/channels/{channel}/1700000000000-abc.png"),
                kind: "image/png".into(),
                filename: "1700000000000-abc.png".into(),
                original_name: "cat.png".into(),
                size: png.len() as u64,
            }
        );
        assert_eq!(rest.url(&up.url), format!("{base}{}", up.url));
        let seen = log.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].route, "channel");
        assert_eq!(seen[0].id, channel.to_string());
        assert_eq!(seen[0].api_key.as_deref(), Some("k3y"));
        assert_eq!(
            seen[0].fields,
            vec![(
                "file".to_owned(),
                Some("cat.png".to_owned()),
                Some("image/png".to_owned()),
                png
            )]
        );
    }

    #[tokio::test]
    async fn agent_upload_and_errors_in_elizaos_shape() {
        let (base, log) = fake_server().await;
        let rest = Rest::new(&base, None);
        let agent = Uuid::new_v4();
        let up = rest
            .upload_agent_media(
                agent,
                MediaFile::new("notes", b"hello".to_vec()).content_type("text/plain"),
            )
            .await
            .unwrap();
        assert_eq!(up.kind, "text/plain");
        assert!(
            up.url
                .starts_with(&format!("/media/uploads/agents/{agent}/"))
        );
        {
            let seen = log.lock().unwrap();
            assert_eq!(seen[0].route, "agent");
            assert_eq!(seen[0].api_key, None);
            assert_eq!(seen[0].fields[0].1.as_deref(), Some("notes"));
        }
        let err = rest
            .upload_channel_media(Uuid::nil(), MediaFile::new("x.png", b"x".to_vec()))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            Error::Http("400 Bad Request: File type not allowed".into())
        );
        assert!(MediaFile::read("/nonexistent/file.png").await.is_err());
    }
}
