//! What produces an agent's reply. [`eliza::ElizaBrain`] answers offline with the 1966 DOCTOR
//! script; [`openai::OpenAiBrain`] streams from any OpenAI-compatible chat-completions endpoint.

pub mod eliza;
pub mod openai;

use async_trait::async_trait;
use uuid::Uuid;

use crate::character::Character;

/// One line of the conversation as a brain sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// Display name of the author.
    pub author: String,
    pub text: String,
    /// Written by the agent that is answering.
    pub own: bool,
    /// Files attached to the message.
    pub attachments: Vec<Attachment>,
}

/// A file attached to a message, as a brain sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attachment {
    /// Where it is: a `/media/...` path, an http(s) URL or a `data:` URL.
    pub url: String,
    pub title: Option<String>,
    /// ElizaOS's `contentType` (`image`, `video`, …) or a MIME type, when the client gave one.
    pub content_type: Option<String>,
    /// For an image, a URL a model can fetch: the file itself as a `data:` URL (a `/media/...`
    /// file the model could not reach), or the http(s)/data URL as given. Filled only for
    /// brains that accept images.
    pub image_url: Option<String>,
}

impl Attachment {
    /// Whether it is an image, by its declared type or its URL.
    pub fn is_image(&self) -> bool {
        let by_type = self.content_type.as_deref().map(|t| {
            let t = t.to_ascii_lowercase();
            t == "image" || t.starts_with("image/")
        });
        by_type.unwrap_or_else(|| {
            let path = self.url.split(['?', '#']).next().unwrap_or_default();
            let lower = path.to_ascii_lowercase();
            lower.starts_with("data:image/")
                || [".png", ".jpg", ".jpeg", ".gif", ".webp"]
                    .iter()
                    .any(|e| lower.ends_with(e))
        })
    }
}

/// Everything a brain gets to answer one message.
#[derive(Debug, Clone)]
pub struct Prompt<'a> {
    pub character: &'a Character,
    pub agent_id: Uuid,
    pub channel_id: Uuid,
    pub dm: bool,
    /// Earlier messages of the channel, oldest first (empty for brains that keep their own
    /// state).
    pub history: Vec<Turn>,
    /// The message being answered.
    pub message: Turn,
}

/// A finished reply. An empty `text` means the agent chose not to answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrainReply {
    pub text: String,
    pub thought: Option<String>,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum BrainError {
    #[error("the model did not answer within {0} ms")]
    Timeout(u64),
    /// The circuit breaker is open: the endpoint failed repeatedly and is not being called.
    #[error("{0}")]
    Unavailable(String),
    #[error("model request failed: {0}")]
    Upstream(String),
}

/// Where a brain writes the reply as it is produced.
#[async_trait]
pub trait ChunkSink: Send {
    async fn chunk(&mut self, text: &str);
    /// Text streamed so far.
    fn streamed(&self) -> &str;
}

#[async_trait]
pub trait Brain: Send + Sync + 'static {
    /// For logs and `/api/agents`: `eliza` or `openai:<model>`.
    fn describe(&self) -> String;
    /// Whether the prompt should carry the channel's recent history.
    fn wants_history(&self) -> bool;
    /// Whether images attached to the message are given to it (as `image_url`s).
    fn accepts_images(&self) -> bool {
        false
    }
    async fn reply(
        &self,
        prompt: &Prompt<'_>,
        out: &mut dyn ChunkSink,
    ) -> Result<BrainReply, BrainError>;
}

/// Splits text into word-sized stream chunks, each with the whitespace that follows it.
pub fn word_chunks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let word_end = rest
            .char_indices()
            .find(|(_, c)| c.is_whitespace())
            .map_or(rest.len(), |(i, _)| i);
        let end = rest[word_end..]
            .char_indices()
            .find(|(_, c)| !c.is_whitespace())
            .map_or(rest.len(), |(i, _)| word_end + i);
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_chunks_rebuild_the_text() {
        for text in ["In what way?", "  lead", "a  b\n c ", "", "ünï côdé 🎉 ok"] {
            let chunks: Vec<&str> = word_chunks(text).collect();
            assert_eq!(chunks.concat(), text);
            assert!(chunks.iter().all(|c| !c.is_empty()));
        }
        assert_eq!(
            word_chunks("In what way?").collect::<Vec<_>>(),
            vec!["In ", "what ", "way?"]
        );
    }
}
