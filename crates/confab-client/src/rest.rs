//! The REST calls a chat needs: agents, channels, DMs, history.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::client::{Error, Result};
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
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.api_key {
            req = req.header("x-api-key", key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.map_err(|e| Error::Http(e.to_string()))?;
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = v["error"]["message"]
                .as_str()
                .or_else(|| v["error"].as_str())
                .unwrap_or("request failed");
            return Err(Error::Http(format!("{status}: {msg}")));
        }
        Ok(v)
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
