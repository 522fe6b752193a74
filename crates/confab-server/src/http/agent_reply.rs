//! Answering a REST-submitted message with the agent's reply: the `http` transport (the reply
//! in the response) and the `sse` transport (`user_message`, `chunk`…, then `done` or `error`).
//! Both subscribe to agent runs before the message is stored, so nothing is missed.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use confab_agents::{AgentEventKind, Answer, Watch};
use confab_hub::Committed;
use futures::Stream;
use serde_json::{Value, json};
use uuid::Uuid;

/// How long a request waits for an agent.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// How the caller wants the answer (`transport`, or the legacy `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    Http,
    Sse,
}

/// The agent's reply as the `agentResponse` / `done` payload: its content (`text`, `thought`,
/// `actions`) with the message and agent ids.
pub fn response_content(c: &Committed) -> Value {
    let m = &c.message;
    let raw = m.raw_message.clone().unwrap_or_else(|| json!({}));
    json!({
        "id": m.id,
        "messageId": m.id,
        "agentId": m.author_id,
        "agentName": m.meta_str("agentName"),
        "text": m.content,
        "thought": raw.get("thought").cloned().unwrap_or(Value::Null),
        "actions": raw.get("actions").cloned().unwrap_or(json!([])),
        "channelId": m.channel_id,
        "createdAt": m.created_at,
    })
}

/// Waits for the reply; `Ok(None)` when no agent answered, `Err` when the run failed.
pub async fn wait(watch: Watch, message: Uuid) -> Result<Option<Value>, String> {
    match watch.answer(message).await {
        Answer::Replied(c) => Ok(Some(response_content(&c))),
        Answer::NoAgent | Answer::Declined => Ok(None),
        Answer::Failed(e) => Err(e),
        Answer::TimedOut => Err(format!(
            "no agent answered within {} s",
            REPLY_TIMEOUT.as_secs()
        )),
    }
}

/// The `sse` response.
pub fn event_stream(user_message: Value, watch: Watch, message: Uuid) -> Response {
    Sse::new(events(user_message, watch, message))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn events(
    user_message: Value,
    watch: Watch,
    message: Uuid,
) -> impl Stream<Item = Result<Event, Infallible>> {
    enum Step {
        Start(Value, Watch),
        Follow(Watch, Option<String>),
        End,
    }
    futures::stream::unfold(Step::Start(user_message, watch), move |step| async move {
        match step {
            Step::Start(user, watch) => {
                Some((Ok(named("user_message", &user)), Step::Follow(watch, None)))
            }
            Step::Follow(mut watch, failure) => {
                let mut failure = failure;
                loop {
                    let Some(event) = watch.next(message).await else {
                        let last = match failure {
                            Some(e) => named("error", &json!({ "error": e })),
                            None if watch.timed_out() => named(
                                "error",
                                &json!({ "error": format!("no agent answered within {} s", REPLY_TIMEOUT.as_secs()) }),
                            ),
                            None => named("done", &Value::Null),
                        };
                        return Some((Ok(last), Step::End));
                    };
                    match event.kind {
                        AgentEventKind::Chunk {
                            message_id,
                            index,
                            text,
                        } => {
                            let data =
                                json!({ "messageId": message_id, "chunk": text, "index": index });
                            return Some((Ok(named("chunk", &data)), Step::Follow(watch, failure)));
                        }
                        AgentEventKind::Replied(c) => {
                            return Some((Ok(named("done", &response_content(&c))), Step::End));
                        }
                        AgentEventKind::Failed { error, .. } => failure = Some(error),
                        _ => {}
                    }
                }
            }
            Step::End => None,
        }
    })
}

fn named(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}
