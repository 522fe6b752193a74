//! Hub operations used by the REST API beyond messaging: servers, participants, agents.
//!
//! Reads go straight to the store; writes that the hot path depends on (new message servers,
//! new channels) also update the [`Directory`](crate::Directory), and writes that clients see
//! (an edited message) are announced to the channel's room.

use std::sync::Arc;

use confab_protocol::outbound::MessageUpdated;
use confab_protocol::{ServerEvent, now_ms};
use confab_store::{
    Channel, MessageSearch, MessageServer, MessageUpdate, StoredMessage, channel_type,
};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::{Committed, Hub, HubError, delivery};

/// Serialises DM find-or-create: the store has no uniqueness on channel names, so two
/// concurrent requests for the same pair would otherwise both create a channel.
static DM_CREATION: Mutex<()> = Mutex::const_new(());

impl Hub {
    // ---- message servers -----------------------------------------------------------------

    pub async fn servers(&self) -> Result<Vec<MessageServer>, HubError> {
        Ok(self.inner.store.list_servers().await?)
    }

    pub async fn server(&self, id: Uuid) -> Result<Option<MessageServer>, HubError> {
        Ok(self.inner.store.get_server(id).await?)
    }

    /// Creates a message server with a new id and registers it, so messages may auto-create
    /// channels in it.
    pub async fn create_server(
        &self,
        name: String,
        source_type: String,
        source_id: Option<String>,
        metadata: Option<Value>,
    ) -> Result<MessageServer, HubError> {
        let now = now_ms();
        let server = MessageServer {
            id: Uuid::new_v4(),
            name,
            source_type,
            source_id,
            metadata,
            created_at: now,
            updated_at: now,
        };
        self.inner.store.ensure_server(&server).await?;
        self.inner.directory.remember_server(&server);
        Ok(server)
    }

    /// Deletes a message server with its channels and their messages; each channel's room gets
    /// `channelDeleted`. False if there was no such server. (Refusing the default server is the
    /// caller's rule.)
    pub async fn delete_server(&self, id: Uuid) -> Result<bool, HubError> {
        for channel in self.inner.store.list_channels(id).await? {
            self.delete_channel(channel.id).await?;
        }
        let deleted = self.inner.store.delete_server(id).await?;
        self.inner.directory.forget_server(id);
        Ok(deleted)
    }

    pub async fn server_agents(&self, server: Uuid) -> Result<Vec<Uuid>, HubError> {
        Ok(self.inner.store.server_agents(server).await?)
    }

    pub async fn add_server_agent(&self, server: Uuid, agent: Uuid) -> Result<(), HubError> {
        Ok(self.inner.store.add_server_agent(server, agent).await?)
    }

    pub async fn remove_server_agent(&self, server: Uuid, agent: Uuid) -> Result<(), HubError> {
        Ok(self.inner.store.remove_server_agent(server, agent).await?)
    }

    pub async fn agent_servers(&self, agent: Uuid) -> Result<Vec<Uuid>, HubError> {
        Ok(self.inner.store.agent_servers(agent).await?)
    }

    // ---- channels and participants -------------------------------------------------------

    /// The full stored channel (the directory only keeps what delivery needs).
    pub async fn channel(&self, id: Uuid) -> Result<Option<Channel>, HubError> {
        Ok(self.inner.store.get_channel(id).await?)
    }

    pub async fn channels(&self, server: Uuid) -> Result<Vec<Channel>, HubError> {
        Ok(self.inner.store.list_channels(server).await?)
    }

    pub async fn participants(&self, channel: Uuid) -> Result<Vec<String>, HubError> {
        Ok(self.inner.store.participants(channel).await?)
    }

    pub async fn add_participants(
        &self,
        channel: Uuid,
        entities: &[String],
    ) -> Result<(), HubError> {
        self.inner.store.add_participants(channel, entities).await?;
        self.inner.directory.forget_participants(channel);
        Ok(())
    }

    /// False if the entity was not a participant.
    pub async fn remove_participant(&self, channel: Uuid, entity: &str) -> Result<bool, HubError> {
        let removed = self.inner.store.remove_participant(channel, entity).await?;
        self.inner.directory.forget_participants(channel);
        Ok(removed)
    }

    /// The DM channel of two entities on a server, created on first use as ElizaOS does: name
    /// `DM-<smaller id>-<larger id>`, metadata `{user1, user2}`, both as participants.
    pub async fn find_or_create_dm(
        &self,
        a: Uuid,
        b: Uuid,
        server: Uuid,
    ) -> Result<Channel, HubError> {
        let (user1, user2) = if a.to_string() <= b.to_string() {
            (a, b)
        } else {
            (b, a)
        };
        let name = format!("DM-{user1}-{user2}");
        let _guard = DM_CREATION.lock().await;
        if let Some(existing) = self
            .inner
            .store
            .find_channel_by_name(server, channel_type::DM, &name)
            .await?
        {
            return Ok(existing);
        }
        let now = now_ms();
        let channel = Channel {
            id: Uuid::new_v4(),
            message_server_id: server,
            name,
            kind: channel_type::DM.into(),
            source_type: None,
            source_id: None,
            topic: None,
            metadata: Some(json!({ "user1": user1, "user2": user2 })),
            alias: None,
            created_at: now,
            updated_at: now,
        };
        self.create_channel(channel, &[user1.to_string(), user2.to_string()])
            .await
    }

    // ---- messages ------------------------------------------------------------------------

    /// Newest first, optionally only those created strictly before `before_ms`.
    pub async fn recent_messages(
        &self,
        channel: Uuid,
        limit: u32,
        before_ms: Option<i64>,
    ) -> Result<Vec<StoredMessage>, HubError> {
        Ok(self
            .inner
            .store
            .recent_messages(channel, limit, before_ms)
            .await?)
    }

    /// Full-text search, ranked best first (access is the caller's business).
    pub async fn search_messages(
        &self,
        search: &MessageSearch,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<StoredMessage>, HubError> {
        Ok(self
            .inner
            .store
            .search_messages(search, limit, offset)
            .await?)
    }

    pub async fn message(&self, id: Uuid) -> Result<Option<StoredMessage>, HubError> {
        Ok(self.inner.store.get_message(id).await?)
    }

    /// A user's edit of a stored message (`PATCH /messages/:id`): stores the new text with
    /// `metadata.edited: true` and a new `updatedAt`, then tells the channel's room with
    /// `messageUpdated`. `None` if there is no such message.
    pub async fn edit_message(
        &self,
        id: Uuid,
        content: String,
    ) -> Result<Option<StoredMessage>, HubError> {
        let Some(stored) = self.inner.store.get_message(id).await? else {
            return Ok(None);
        };
        let mut mark = Map::new();
        mark.insert("edited".into(), Value::Bool(true));
        let update = MessageUpdate {
            content: Some(content),
            metadata: Some(crate::merge_metadata(stored.metadata.as_ref(), mark)),
            updated_at: now_ms(),
            ..MessageUpdate::default()
        };
        let Some(updated) = self.inner.store.update_message(id, &update).await? else {
            return Ok(None);
        };
        let channel = self.info_or_bare(updated.channel_id).await;
        let event = ServerEvent::MessageUpdated(MessageUpdated {
            message_id: updated.id,
            sender_id: updated.author_id.clone(),
            text: updated.content.clone(),
            updated_at: updated.updated_at,
            edited: true,
            scope: channel.scope(),
        });
        self.event_to_channel(channel.id, &event, None).await;
        Ok(Some(updated))
    }

    /// Edits a stored message and re-broadcasts it to its channel under the same id (clients
    /// update the bubble in place); `None` if there is no such message.
    pub async fn update_message(
        &self,
        id: Uuid,
        update: &MessageUpdate,
    ) -> Result<Option<Committed>, HubError> {
        let Some(updated) = self.inner.store.update_message(id, update).await? else {
            return Ok(None);
        };
        let channel = Arc::new(self.info_or_bare(updated.channel_id).await);
        let payload = delivery::broadcast(&updated, &channel);
        self.event_to_channel(channel.id, &ServerEvent::MessageBroadcast(payload), None)
            .await;
        Ok(Some(Committed {
            message: updated,
            channel,
            repeat: false,
        }))
    }
}
