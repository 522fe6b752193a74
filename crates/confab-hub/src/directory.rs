//! What the hub knows about message servers and channels: an in-memory view over the store so
//! the hot path never reads the database, and the auto-creation rules of compat spec §1.6.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use confab_protocol::outbound::ChannelScope;
use confab_protocol::{ChannelRef, iso_from_ms, now_ms};
use confab_store::{Channel, MessageServer, Store, channel_type};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::HubError;

/// The parts of a channel every delivery needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelInfo {
    pub id: Uuid,
    pub server_id: Uuid,
    pub kind: String,
    /// The non-UUID name the channel was first given, echoed as `roomId`.
    pub alias: Option<String>,
}

impl ChannelInfo {
    pub fn from_channel(c: &Channel) -> Self {
        ChannelInfo {
            id: c.id,
            server_id: c.message_server_id,
            kind: c.kind.clone(),
            alias: c.alias.clone(),
        }
    }

    /// The id as clients see it in `roomId`.
    pub fn room_id(&self) -> String {
        self.alias.clone().unwrap_or_else(|| self.id.to_string())
    }

    pub fn scope(&self) -> ChannelScope {
        ChannelScope {
            channel_id: self.id,
            room_id: self.room_id(),
            message_server_id: self.server_id,
            server_id: self.server_id,
        }
    }
}

/// How a channel that does not exist yet gets created when a message names it.
pub struct AutoCreate<'a> {
    pub channel: &'a ChannelRef,
    pub server_id: Uuid,
    pub creator: String,
    pub dm: bool,
    pub dm_target: Option<Uuid>,
    pub created_by: &'static str,
    pub client_metadata: &'a Map<String, Value>,
}

pub struct Directory {
    store: Arc<dyn Store>,
    channels: RwLock<HashMap<Uuid, Arc<ChannelInfo>>>,
    servers: RwLock<HashSet<Uuid>>,
    /// Participant lists, for agents deciding whether a message is theirs to answer.
    participants: RwLock<HashMap<Uuid, Arc<Vec<String>>>>,
}

impl Directory {
    pub async fn load(store: Arc<dyn Store>) -> Result<Self, HubError> {
        let servers = store
            .list_servers()
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        Ok(Directory {
            store,
            channels: RwLock::new(HashMap::new()),
            servers: RwLock::new(servers),
            participants: RwLock::new(HashMap::new()),
        })
    }

    pub fn server_exists(&self, id: Uuid) -> bool {
        self.servers.read().unwrap().contains(&id)
    }

    pub fn remember_server(&self, server: &MessageServer) {
        self.servers.write().unwrap().insert(server.id);
    }

    pub fn forget_server(&self, id: Uuid) {
        self.servers.write().unwrap().remove(&id);
    }

    pub fn remember(&self, channel: &Channel) -> Arc<ChannelInfo> {
        let info = Arc::new(ChannelInfo::from_channel(channel));
        self.channels
            .write()
            .unwrap()
            .insert(channel.id, info.clone());
        self.forget_participants(channel.id);
        info
    }

    pub fn forget(&self, id: Uuid) {
        self.channels.write().unwrap().remove(&id);
        self.forget_participants(id);
    }

    /// Drops the cached participant list; the next [`participants`](Self::participants) reads
    /// the store.
    pub fn forget_participants(&self, id: Uuid) {
        self.participants.write().unwrap().remove(&id);
    }

    /// The channel's participants, from memory or the store.
    pub async fn participants(&self, id: Uuid) -> Result<Arc<Vec<String>>, HubError> {
        if let Some(p) = self.participants.read().unwrap().get(&id) {
            return Ok(p.clone());
        }
        let list = Arc::new(self.store.participants(id).await?);
        self.participants.write().unwrap().insert(id, list.clone());
        Ok(list)
    }

    pub fn cached(&self, id: Uuid) -> Option<Arc<ChannelInfo>> {
        self.channels.read().unwrap().get(&id).cloned()
    }

    /// The channel if it exists, from memory or the store.
    pub async fn find(&self, id: Uuid) -> Result<Option<Arc<ChannelInfo>>, HubError> {
        if let Some(info) = self.cached(id) {
            return Ok(Some(info));
        }
        Ok(self.store.get_channel(id).await?.map(|c| self.remember(&c)))
    }

    /// The channel, created first if it does not exist (compat spec §1.6 step 2).
    pub async fn find_or_create(&self, spec: AutoCreate<'_>) -> Result<Arc<ChannelInfo>, HubError> {
        if let Some(info) = self.find(spec.channel.id).await? {
            return Ok(info);
        }
        if !self.server_exists(spec.server_id) {
            return Err(HubError::UnknownServer(spec.server_id));
        }
        let id = spec.channel.id;
        let short = &id.to_string()[..8];
        let now = now_ms();
        let kind = if spec.dm {
            channel_type::DM
        } else {
            channel_type::GROUP
        };
        let mut metadata = Map::new();
        metadata.insert("created_by".into(), json!(spec.created_by));
        metadata.insert("created_for_user".into(), json!(spec.creator));
        metadata.insert("created_at".into(), json!(iso_from_ms(now)));
        metadata.insert("channel_type".into(), json!(kind));
        for (k, v) in spec.client_metadata {
            metadata.insert(k.clone(), v.clone());
        }
        let mut participants = vec![spec.creator.clone()];
        if spec.dm
            && let Some(target) = spec.dm_target
        {
            participants.push(target.to_string());
        }
        let channel = Channel {
            id,
            message_server_id: spec.server_id,
            name: if spec.dm {
                format!("DM {short}")
            } else {
                format!("Chat {short}")
            },
            kind: kind.into(),
            source_type: Some("auto_created".into()),
            source_id: None,
            topic: None,
            metadata: Some(Value::Object(metadata)),
            alias: spec.channel.spelled.clone(),
            created_at: now,
            updated_at: now,
        };
        let stored = self
            .store
            .create_channel(&channel, &participants)
            .await
            .map_err(|e| HubError::ChannelCreate(e.to_string()))?;
        tracing::info!(channel = %id, kind, "channel auto-created");
        Ok(self.remember(&stored))
    }
}
