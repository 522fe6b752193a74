//! The default brain: Weizenbaum's ELIZA, one conversation state per agent and channel.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use async_trait::async_trait;
use confab_eliza::Eliza;
use lru::LruCache;
use uuid::Uuid;

use super::{Brain, BrainError, BrainReply, ChunkSink, Prompt, word_chunks};

/// Conversations remembered at once; the least recently used one is forgotten first (it then
/// starts over, as ELIZA would with a new patient).
pub const DEFAULT_CONVERSATIONS: usize = 10_000;

pub struct ElizaBrain {
    /// `Some(seed)`: every conversation makes the same choices for the same inputs.
    seed: Option<u64>,
    conversations: Mutex<LruCache<(Uuid, Uuid), Eliza>>,
}

impl ElizaBrain {
    pub fn new(seed: Option<u64>, conversations: usize) -> Self {
        let cap = NonZeroUsize::new(conversations.max(1)).expect("non-zero");
        ElizaBrain {
            seed,
            conversations: Mutex::new(LruCache::new(cap)),
        }
    }

    /// ELIZA's answer to one line, in the conversation of `agent` in `channel`.
    pub fn respond(&self, agent: Uuid, channel: Uuid, text: &str) -> String {
        let mut conversations = self.conversations.lock().unwrap();
        let eliza = conversations.get_or_insert_mut((agent, channel), || match self.seed {
            Some(seed) => Eliza::with_seed(seed),
            None => Eliza::random(),
        });
        if Eliza::is_farewell(text) {
            return eliza.farewell().to_owned();
        }
        eliza.respond(text)
    }
}

/// Removes leading mentions of the agent ("Eliza, ...", "@eliza ...") so the script sees what
/// was said to it.
fn without_address<'a>(text: &'a str, handles: &[String]) -> &'a str {
    let mut rest = text.trim_start();
    loop {
        let stripped = rest.trim_start_matches('@');
        let lower = stripped.to_lowercase();
        let Some(h) = handles.iter().find(|h| {
            lower.starts_with(h.as_str())
                && !lower[h.len()..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphanumeric)
        }) else {
            return rest;
        };
        // Lower-casing can change byte lengths outside ASCII; only strip when it did not.
        if lower.len() != stripped.len() {
            return rest;
        }
        rest = stripped[h.len()..].trim_start_matches([',', ':', ' ', '!', '-']);
        if rest.is_empty() {
            return text;
        }
    }
}

#[async_trait]
impl Brain for ElizaBrain {
    fn describe(&self) -> String {
        "eliza".into()
    }

    fn wants_history(&self) -> bool {
        false
    }

    async fn reply(
        &self,
        prompt: &Prompt<'_>,
        out: &mut dyn ChunkSink,
    ) -> Result<BrainReply, BrainError> {
        let said = without_address(&prompt.message.text, &prompt.character.handles());
        let text = self.respond(prompt.agent_id, prompt.channel_id, said);
        for chunk in word_chunks(&text) {
            out.chunk(chunk).await;
        }
        Ok(BrainReply {
            text,
            thought: None,
            actions: vec!["REPLY".into()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_is_stripped() {
        let h = vec!["eliza".to_string(), "doc".to_string()];
        assert_eq!(without_address("Eliza, I am sad", &h), "I am sad");
        assert_eq!(without_address("@eliza I am sad", &h), "I am sad");
        assert_eq!(without_address("@Doc: hi", &h), "hi");
        assert_eq!(without_address("Elizabeth is here", &h), "Elizabeth is here");
        assert_eq!(without_address("eliza", &h), "eliza");
        assert_eq!(without_address("I told eliza", &h), "I told eliza");
    }

    #[test]
    fn conversations_are_separate_and_seeded() {
        let a = ElizaBrain::new(Some(7), 10);
        let b = ElizaBrain::new(Some(7), 10);
        let (agent, c1, c2) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        for line in ["I am sad.", "My mother hates me.", "I dream of trains."] {
            let x = a.respond(agent, c1, line);
            assert_eq!(x, b.respond(agent, c1, line));
            assert!(!x.is_empty());
        }
        // A fresh conversation starts from the beginning of the rule cycles.
        assert_eq!(
            a.respond(agent, c2, "I am sad."),
            ElizaBrain::new(Some(7), 10).respond(agent, c1, "I am sad.")
        );
    }
}
