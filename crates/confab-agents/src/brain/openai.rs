//! Any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, llama.cpp server,
//! LM Studio, OpenRouter), streamed token by token over server-sent events.
//!
//! Every attempt is bounded by a timeout; failed attempts are retried with exponential backoff
//! as long as nothing has streamed yet; a circuit breaker shared by every agent using the same
//! endpoint stops calls to an endpoint that keeps failing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};

use super::{Brain, BrainError, BrainReply, ChunkSink, Prompt, Turn};
use crate::breaker::CircuitBreaker;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// Where and how to call the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEndpoint {
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    /// Bound on one attempt, from request to the last token.
    pub timeout: Duration,
    /// Further attempts after a failure, while nothing has streamed.
    pub retries: u32,
    /// Wait before the first retry; doubles each time.
    pub backoff: Duration,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// The model is shown attached images (`image_url` parts): see [`accepts_images`].
    pub vision: bool,
}

/// Models that take images, by name (`OPENAI_VISION_MODELS` replaces the list): a name matches
/// an entry it starts with, case-insensitively, after any `provider/` prefix; `*` matches all.
pub const DEFAULT_VISION_MODELS: &[&str] = &[
    "gpt-4o",
    "chatgpt-4o",
    "gpt-4.1",
    "gpt-4-turbo",
    "gpt-4-vision",
    "gpt-5",
    "o1",
    "o3",
    "o4",
    "claude-3",
    "claude-sonnet-4",
    "claude-opus-4",
    "claude-haiku-4",
    "gemini",
    "gemma3",
    "llava",
    "bakllava",
    "pixtral",
    "qwen2-vl",
    "qwen2.5-vl",
    "qwen-vl",
    "llama3.2-vision",
    "llama-3.2-vision",
    "minicpm-v",
    "moondream",
];

/// Whether `model` is in the `vision` list (see [`DEFAULT_VISION_MODELS`]).
pub fn accepts_images(model: &str, vision: &[String]) -> bool {
    let name = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    vision.iter().any(|v| {
        let v = v.trim().to_ascii_lowercase();
        v == "*" || (!v.is_empty() && name.starts_with(&v))
    })
}

impl ModelEndpoint {
    fn url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

pub struct OpenAiBrain {
    client: reqwest::Client,
    endpoint: ModelEndpoint,
    breaker: Arc<CircuitBreaker>,
}

/// How one attempt ended badly.
enum AttemptError {
    /// Worth another attempt (connection refused, 5xx, 429, timeout before any token).
    Retryable(BrainError),
    /// Not worth it (4xx, or tokens already streamed).
    Final(BrainError),
}

impl OpenAiBrain {
    pub fn new(
        client: reqwest::Client,
        endpoint: ModelEndpoint,
        breaker: Arc<CircuitBreaker>,
    ) -> Self {
        OpenAiBrain {
            client,
            endpoint,
            breaker,
        }
    }

    pub fn endpoint(&self) -> &ModelEndpoint {
        &self.endpoint
    }

    /// The message being answered: its text, and for a model that accepts images, each
    /// attached image as an `image_url` part.
    fn user_content(&self, turn: &Turn) -> Value {
        let text = user_text(turn);
        let images: Vec<&str> = if self.endpoint.vision {
            turn.attachments
                .iter()
                .filter_map(|a| a.image_url.as_deref())
                .collect()
        } else {
            Vec::new()
        };
        if images.is_empty() {
            return json!(text);
        }
        let mut parts = vec![json!({"type": "text", "text": text})];
        parts.extend(
            images
                .into_iter()
                .map(|url| json!({"type": "image_url", "image_url": {"url": url}})),
        );
        Value::Array(parts)
    }

    fn request_body(&self, prompt: &Prompt<'_>) -> Value {
        let mut messages = vec![json!({"role": "system", "content": system_prompt(prompt)})];
        for turn in &prompt.history {
            messages.push(if turn.own {
                json!({"role": "assistant", "content": turn.text})
            } else {
                json!({"role": "user", "content": user_text(turn)})
            });
        }
        messages.push(json!({
            "role": "user",
            "content": self.user_content(&prompt.message),
        }));
        let mut body = json!({
            "model": self.endpoint.model,
            "messages": messages,
            "stream": true,
        });
        if let Some(n) = self.endpoint.max_tokens {
            body["max_tokens"] = json!(n);
        }
        if let Some(t) = self.endpoint.temperature {
            body["temperature"] = json!(t);
        }
        body
    }

    async fn attempt(&self, body: &Value, out: &mut dyn ChunkSink) -> Result<String, AttemptError> {
        let before = out.streamed().len();
        let timeout_ms = self.endpoint.timeout.as_millis() as u64;
        let run = async {
            let mut req = self.client.post(self.endpoint.url()).json(body);
            if let Some(key) = &self.endpoint.api_key {
                req = req.bearer_auth(key);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| AttemptError::Retryable(BrainError::Upstream(describe(&e))))?;
            let status = resp.status();
            if !status.is_success() {
                let text = resp.text().await.unwrap_or_default();
                let err = BrainError::Upstream(format!(
                    "HTTP {}: {}",
                    status.as_u16(),
                    text.chars().take(300).collect::<String>()
                ));
                return Err(if status.is_server_error() || status.as_u16() == 429 {
                    AttemptError::Retryable(err)
                } else {
                    AttemptError::Final(err)
                });
            }
            let is_stream = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("text/event-stream"));
            if !is_stream {
                // The endpoint ignored `stream: true`: one JSON answer.
                let v: Value = resp
                    .json()
                    .await
                    .map_err(|e| AttemptError::Retryable(BrainError::Upstream(describe(&e))))?;
                let text = v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if !text.is_empty() {
                    out.chunk(&text).await;
                }
                return Ok(text);
            }
            let mut text = String::new();
            let mut events = resp.bytes_stream().eventsource();
            while let Some(event) = events.next().await {
                let event = event.map_err(|e| {
                    AttemptError::Retryable(BrainError::Upstream(format!("stream broke: {e}")))
                })?;
                let data = event.data.trim();
                if data == "[DONE]" {
                    break;
                }
                let Ok(v) = serde_json::from_str::<Value>(data) else {
                    continue;
                };
                if let Some(err) = v.get("error") {
                    return Err(AttemptError::Final(BrainError::Upstream(
                        err.get("message")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .unwrap_or_else(|| err.to_string()),
                    )));
                }
                if let Some(piece) = v["choices"][0]["delta"]["content"].as_str()
                    && !piece.is_empty()
                {
                    text.push_str(piece);
                    out.chunk(piece).await;
                }
            }
            Ok(text)
        };
        match tokio::time::timeout(self.endpoint.timeout, run).await {
            Ok(Err(AttemptError::Retryable(e))) if out.streamed().len() > before => {
                Err(AttemptError::Final(e))
            }
            Ok(outcome) => outcome,
            Err(_) if out.streamed().len() > before => {
                Err(AttemptError::Final(BrainError::Timeout(timeout_ms)))
            }
            Err(_) => Err(AttemptError::Retryable(BrainError::Timeout(timeout_ms))),
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// The character as a system prompt: system text, bio, and example exchanges.
/// A user's line: `author: text`, with what it attached named (so a model that is not shown
/// the files still knows they are there).
fn user_text(turn: &Turn) -> String {
    let mut text = format!("{}: {}", turn.author, turn.text);
    for a in &turn.attachments {
        let name = a.title.as_deref().unwrap_or_else(|| {
            a.url
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty() && !a.url.starts_with("data:"))
                .unwrap_or("a file")
        });
        let kind = if a.is_image() { "image" } else { "file" };
        text.push_str(&format!("\n[attached {kind}: {name}]"));
    }
    text
}

fn system_prompt(prompt: &Prompt<'_>) -> String {
    let c = prompt.character;
    let mut s = c
        .system
        .clone()
        .unwrap_or_else(|| format!("You are {}.", c.name));
    let bio = c.bio_lines();
    if !bio.is_empty() {
        s.push_str("\n\nAbout you:\n");
        for line in bio {
            s.push_str("- ");
            s.push_str(&line);
            s.push('\n');
        }
    }
    let examples: Vec<String> = c
        .message_examples
        .iter()
        .take(5)
        .map(|conv| {
            conv.iter()
                .filter_map(|m| {
                    let name = m.get("name")?.as_str()?;
                    let text = m.get("content")?.get("text")?.as_str()?;
                    Some(format!("{name}: {text}"))
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|e| !e.is_empty())
        .collect();
    if !examples.is_empty() {
        s.push_str("\nExample conversations:\n");
        s.push_str(&examples.join("\n---\n"));
        s.push('\n');
    }
    s.push_str(&format!(
        "\nYou are {} in a {} chat. Answer the last message as {}, in plain text, without \
         prefixing your name.",
        c.name,
        if prompt.dm { "direct" } else { "group" },
        c.name
    ));
    s
}

#[async_trait]
impl Brain for OpenAiBrain {
    fn describe(&self) -> String {
        format!("openai:{}", self.endpoint.model)
    }

    fn wants_history(&self) -> bool {
        true
    }

    fn accepts_images(&self) -> bool {
        self.endpoint.vision
    }

    async fn reply(
        &self,
        prompt: &Prompt<'_>,
        out: &mut dyn ChunkSink,
    ) -> Result<BrainReply, BrainError> {
        let body = self.request_body(prompt);
        let mut backoff = self.endpoint.backoff;
        let mut attempt = 0;
        loop {
            if let Err(refused) = self.breaker.allow() {
                return Err(BrainError::Unavailable(format!(
                    "the model endpoint failed {} times in a row; not calling it for {} s",
                    refused.failures,
                    refused.retry_after.as_secs().max(1)
                )));
            }
            match self.attempt(&body, out).await {
                Ok(text) => {
                    self.breaker.success();
                    return Ok(BrainReply {
                        text: text.trim().to_owned(),
                        thought: None,
                        actions: vec!["REPLY".into()],
                    });
                }
                Err(AttemptError::Final(e)) => {
                    self.breaker.failure();
                    return Err(e);
                }
                Err(AttemptError::Retryable(e)) => {
                    self.breaker.failure();
                    if attempt >= self.endpoint.retries {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, attempt, "model call failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }
}
