//! One agent run, and what clients see of it, in this order, to the channel's room:
//!
//! 1. `controlMessage {action:"disable_input"}` (and seed 000's `thinking` to its clients);
//! 2. `messageStreamChunk {messageId, chunk, index, agentId, channelId}` while the reply streams;
//! 3. the reply, stored (source `agent_response`, `in_reply_to` the message) and broadcast as
//!    `messageBroadcast` with the stream's `messageId` as its id; or `messageStreamError` if
//!    the run failed; or nothing if the agent chose not to answer;
//! 4. `messageComplete`, then `controlMessage {action:"enable_input"}` — always, so no client's
//!    input stays locked.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use confab_hub::{Committed, Delivery, Hub};
use confab_protocol::ServerEvent;
use confab_protocol::outbound::{
    ControlAction, ControlMessage, MessageComplete, MessageStreamChunk, MessageStreamError,
    Thinking,
};
use confab_store::{NewMessage, channel_type};
use serde_json::json;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::brain::{Attachment, BrainError, ChunkSink, Prompt, Turn};
use crate::registry::Agent;
use crate::runtime::{AgentEvent, AgentEventKind, agent_turn};

/// What runs share.
pub(crate) struct RunContext {
    pub hub: Hub,
    pub events: broadcast::Sender<AgentEvent>,
    pub history: u32,
    pub media: Option<std::sync::Arc<dyn confab_store::media::MediaStore>>,
    /// Cluster mode: the lease each run holds while it lives.
    pub leases: Option<Arc<dyn crate::RunLeases>>,
}

impl RunContext {
    pub(crate) fn skipped(&self, agent: &Agent, message: &Committed) {
        self.publish(agent, message, AgentEventKind::Skipped);
    }

    fn publish(&self, agent: &Agent, message: &Committed, kind: AgentEventKind) {
        let _ = self.events.send(AgentEvent {
            agent_id: agent.id,
            channel_id: message.channel.id,
            reply_to: message.message.id,
            kind,
        });
    }
}

/// Sends stream chunks to the room as the brain produces them.
struct RoomStream<'a> {
    ctx: &'a RunContext,
    agent: &'a Agent,
    message: &'a Committed,
    reply_id: Uuid,
    index: u32,
    text: String,
}

#[async_trait]
impl ChunkSink for RoomStream<'_> {
    async fn chunk(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.text.push_str(text);
        let channel = &self.message.channel;
        let event = ServerEvent::MessageStreamChunk(MessageStreamChunk {
            message_id: self.reply_id,
            chunk: text.to_owned(),
            index: self.index,
            agent_id: self.agent.id,
            channel_id: channel.id,
            room_id: channel.room_id(),
        });
        self.ctx.hub.announce(channel.id, &event).await;
        self.ctx.publish(
            self.agent,
            self.message,
            AgentEventKind::Chunk {
                message_id: self.reply_id,
                index: self.index,
                text: text.to_owned(),
            },
        );
        self.index += 1;
    }

    fn streamed(&self) -> &str {
        &self.text
    }
}

pub(crate) async fn run(ctx: &RunContext, agent: &Arc<Agent>, message: &Arc<Committed>) {
    let started = Instant::now();
    let channel = &message.channel;
    let scope = channel.scope();
    let reply_id = confab_store::new_message_id();
    let thinking = |is_thinking| {
        ServerEvent::Thinking(Thinking {
            scope: scope.clone(),
            agent_id: agent.id,
            agent_name: agent.name().to_owned(),
            is_thinking,
        })
    };
    let control = |action| {
        ServerEvent::ControlMessage(ControlMessage {
            action,
            scope: scope.clone(),
            target: Some(agent.id),
        })
    };

    ctx.hub
        .announce(channel.id, &control(ControlAction::DisableInput))
        .await;
    ctx.hub.announce_legacy(channel.id, &thinking(true)).await;
    ctx.publish(
        agent,
        message,
        AgentEventKind::Started {
            message_id: reply_id,
        },
    );

    let prompt = Prompt {
        character: &agent.character,
        agent_id: agent.id,
        channel_id: channel.id,
        dm: channel.kind == channel_type::DM,
        history: if agent.brain.wants_history() {
            history(ctx, agent, message).await
        } else {
            Vec::new()
        },
        message: Turn {
            author: author_name(&message.message),
            text: message.message.content.clone(),
            own: false,
            attachments: attachments(ctx, &message.message, agent.brain.accepts_images()).await,
        },
    };
    let mut stream = RoomStream {
        ctx,
        agent,
        message,
        reply_id,
        index: 0,
        text: String::new(),
    };
    let outcome = agent.brain.reply(&prompt, &mut stream).await;
    let partial = std::mem::take(&mut stream.text);

    let outcome = match outcome {
        Ok(reply) if reply.text.trim().is_empty() => Ok(None),
        Ok(reply) => {
            let depth = if ctx.agents_wrote(&message.message) {
                agent_turn(message.message.metadata.as_ref()) + 1
            } else {
                1
            };
            let stored = NewMessage {
                id: reply_id,
                channel_id: channel.id,
                author_id: agent.id.to_string(),
                content: reply.text.clone(),
                raw_message: Some(json!({
                    "text": reply.text,
                    "thought": reply.thought,
                    "actions": reply.actions,
                })),
                in_reply_to: Some(message.message.id.to_string()),
                source_type: Some(confab_hub::delivery::source::AGENT_RESPONSE.into()),
                source_id: None,
                metadata: Some(json!({
                    "agent_id": agent.id,
                    "agentName": agent.name(),
                    "attachments": [],
                    "channelType": channel.kind,
                    "isDm": channel.kind == channel_type::DM,
                    "messageServerId": channel.server_id,
                    "agentTurn": depth,
                    "brain": agent.brain.describe(),
                })),
                created_at: 0,
                client_key: None,
            };
            ctx.hub
                .append(stored, channel.clone(), Delivery::ToRoom)
                .await
                .map(Some)
                .map_err(|e| BrainError::Upstream(format!("storing the reply failed: {e}")))
        }
        Err(e) => Err(e),
    };

    match outcome {
        Ok(Some(committed)) => {
            tracing::debug!(agent = %agent.id, channel = %channel.id, reply = %reply_id, elapsed_us = started.elapsed().as_micros() as u64, "agent replied");
            ctx.publish(agent, message, AgentEventKind::Replied(Arc::new(committed)));
        }
        Ok(None) => {
            tracing::debug!(agent = %agent.id, channel = %channel.id, "agent chose not to answer");
            ctx.publish(agent, message, AgentEventKind::Declined);
        }
        Err(e) => {
            tracing::warn!(agent = %agent.id, name = agent.name(), channel = %channel.id, error = %e, "agent run failed");
            let event = ServerEvent::MessageStreamError(MessageStreamError {
                message_id: reply_id,
                agent_id: agent.id,
                channel_id: channel.id,
                room_id: channel.room_id(),
                error: format!("{} could not answer: {e}", agent.name()),
                partial_text: partial,
            });
            ctx.hub.announce(channel.id, &event).await;
            ctx.publish(
                agent,
                message,
                AgentEventKind::Failed {
                    message_id: reply_id,
                    error: e.to_string(),
                },
            );
        }
    }

    ctx.hub
        .announce(
            channel.id,
            &ServerEvent::MessageComplete(MessageComplete {
                scope: scope.clone(),
                agent_id: Some(agent.id),
            }),
        )
        .await;
    ctx.hub
        .announce(channel.id, &control(ControlAction::EnableInput))
        .await;
    ctx.hub.announce_legacy(channel.id, &thinking(false)).await;
    ctx.publish(agent, message, AgentEventKind::Finished);
    // The name confab-server's metrics module documents and exports.
    metrics::histogram!("confab_agent_run_seconds").record(started.elapsed().as_secs_f64());
}

impl RunContext {
    /// Whether the message came from an agent (its reply then goes one turn deeper).
    fn agents_wrote(&self, m: &confab_store::StoredMessage) -> bool {
        m.source_type.as_deref() == Some(confab_hub::delivery::source::AGENT_RESPONSE)
            || m.metadata
                .as_ref()
                .is_some_and(|md| md.get("agentTurn").is_some())
    }
}

fn author_name(m: &confab_store::StoredMessage) -> String {
    ["user_display_name", "agentName", "author_display_name"]
        .iter()
        .find_map(|k| m.meta_str(k))
        .map(str::to_owned)
        .unwrap_or_else(|| "User".into())
}

/// The largest image handed to a model inline (OpenAI's limit is 20 MB).
const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// A stored message's attachments (metadata first, then the raw message, as ElizaOS lists them).
fn listed_attachments(m: &confab_store::StoredMessage) -> Vec<Attachment> {
    let list = [&m.metadata, &m.raw_message]
        .into_iter()
        .flatten()
        .find_map(|v| v.get("attachments").filter(|a| a.is_array()));
    let Some(list) = list.and_then(|a| a.as_array()) else {
        return Vec::new();
    };
    let text =
        |o: &serde_json::Value, k: &str| o.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    list.iter()
        .filter_map(|a| match a {
            serde_json::Value::String(url) => Some(Attachment {
                url: url.clone(),
                ..Attachment::default()
            }),
            o @ serde_json::Value::Object(_) => Some(Attachment {
                url: text(o, "url")?,
                title: text(o, "title").or_else(|| text(o, "name")),
                content_type: text(o, "contentType"),
                image_url: None,
            }),
            _ => None,
        })
        .collect()
}

/// The message's attachments; for a brain that accepts images, each image with a URL its model
/// can fetch (a `/media/...` file read from storage and inlined as a `data:` URL).
async fn attachments(
    ctx: &RunContext,
    m: &confab_store::StoredMessage,
    images: bool,
) -> Vec<Attachment> {
    let mut list = listed_attachments(m);
    if !images {
        return list;
    }
    for a in list.iter_mut().filter(|a| a.is_image()) {
        let lower = a.url.to_ascii_lowercase();
        if lower.starts_with("https://")
            || lower.starts_with("http://")
            || lower.starts_with("data:image/")
        {
            a.image_url = Some(a.url.clone());
            continue;
        }
        let (Some(media), Some(key)) = (
            ctx.media.as_ref(),
            confab_store::media::MediaKey::from_url(&a.url),
        ) else {
            continue;
        };
        match media.get(&key).await {
            Ok(Some(file))
                if file.content_type.starts_with("image/")
                    && file.data.len() <= MAX_IMAGE_BYTES =>
            {
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD.encode(&file.data);
                a.image_url = Some(format!("data:{};base64,{encoded}", file.content_type));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(url = %a.url, error = %e, "reading an attached image"),
        }
    }
    list
}

/// The channel's messages before the one being answered, oldest first.
async fn history(ctx: &RunContext, agent: &Agent, message: &Committed) -> Vec<Turn> {
    let m = &message.message;
    let recent = ctx
        .hub
        .store()
        .recent_messages(m.channel_id, ctx.history + 1, Some(m.created_at + 1))
        .await
        .unwrap_or_default();
    let own = agent.id.to_string();
    let mut turns: Vec<Turn> = recent
        .iter()
        .filter(|r| r.id != m.id && r.seq < m.seq)
        .take(ctx.history as usize)
        .map(|r| Turn {
            author: author_name(r),
            text: r.content.clone(),
            own: r.author_id == own,
            attachments: listed_attachments(r),
        })
        .collect();
    turns.reverse();
    turns
}
