//! The jobs API's logic (compat spec §2.9): one prompt, one answer, polled over HTTP. Unlike
//! ElizaOS 1.7.2, where nothing ever completes a job, a job here completes with the agent's
//! reply, fails with its error, or times out. Jobs are stored, so every node of a cluster can
//! report on them; a job whose node died before it finished reads as `timeout` once expired.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use confab_hub::{Delivery, Hub};
use confab_protocol::now_ms;
use confab_store::{Channel, JobRecord, NewMessage, channel_type};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::runtime::Runtime;
use crate::watch::Answer;

pub const MAX_JOBS: usize = 10_000;
pub const MAX_CONTENT_CHARS: usize = 50_000;
pub const MAX_METADATA_BYTES: usize = 10_000;
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    Timeout,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Pending,
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Timeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Timeout => "timeout",
        }
    }

    fn parse(s: &str) -> JobStatus {
        JobStatus::ALL
            .into_iter()
            .find(|j| j.name() == s)
            .unwrap_or(JobStatus::Failed)
    }

    fn finished(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Timeout
        )
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub job_id: Uuid,
    pub status: JobStatus,
    pub agent_id: Uuid,
    pub user_id: Uuid,
    pub prompt: String,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub metadata: Value,
}

impl Job {
    fn from_record(r: JobRecord) -> Job {
        let mut job = Job {
            job_id: r.id,
            status: JobStatus::parse(&r.status),
            agent_id: r.agent_id,
            user_id: r.user_id,
            prompt: r.prompt,
            created_at: r.created_at,
            expires_at: r.expires_at,
            result: r.result,
            error: r.error,
            metadata: r.metadata,
        };
        // Its node went away before it finished (or is about to time it out).
        if !job.status.finished() && now_ms() > job.expires_at {
            job.status = JobStatus::Timeout;
            job.error
                .get_or_insert_with(|| "No answer before the job expired".into());
        }
        job
    }

    fn record(&self) -> JobRecord {
        JobRecord {
            id: self.job_id,
            agent_id: self.agent_id,
            user_id: self.user_id,
            prompt: self.prompt.clone(),
            status: self.status.name().into(),
            result: self.result.clone(),
            error: self.error.clone(),
            metadata: self.metadata.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

/// A refused request: HTTP status and message (`{success:false, error, details}`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    pub status: u16,
    pub error: String,
    pub details: Option<String>,
}

impl JobError {
    fn bad(error: impl Into<String>) -> Self {
        JobError {
            status: 400,
            error: error.into(),
            details: None,
        }
    }
}

pub struct Jobs {
    hub: Hub,
    runtime: Runtime,
    /// This node's completed jobs and their total processing time, for `/jobs/health`.
    completed: AtomicU64,
    completed_ms_total: AtomicU64,
}

impl Jobs {
    pub fn new(hub: Hub, runtime: Runtime) -> Arc<Jobs> {
        Arc::new(Jobs {
            hub,
            runtime,
            completed: AtomicU64::new(0),
            completed_ms_total: AtomicU64::new(0),
        })
    }

    pub async fn create(self: &Arc<Self>, body: &Map<String, Value>) -> Result<Job, JobError> {
        let user_id = body
            .get("userId")
            .and_then(Value::as_str)
            .and_then(confab_protocol::ids::parse_uuid)
            .ok_or_else(|| JobError::bad("Invalid or missing userId (must be a UUID)"))?;
        let content = match body.get("content") {
            Some(Value::String(c))
                if !c.trim().is_empty() && c.chars().count() <= MAX_CONTENT_CHARS =>
            {
                c.clone()
            }
            _ => {
                return Err(JobError::bad(format!(
                    "Invalid content: must be a non-empty string of at most {MAX_CONTENT_CHARS} characters"
                )));
            }
        };
        let metadata = match body.get("metadata") {
            None | Some(Value::Null) => json!({}),
            Some(m @ Value::Object(_)) if m.to_string().len() <= MAX_METADATA_BYTES => m.clone(),
            Some(_) => {
                return Err(JobError::bad(format!(
                    "Invalid metadata: must be an object of at most {MAX_METADATA_BYTES} bytes"
                )));
            }
        };
        let timeout_ms = match body.get("timeoutMs") {
            None | Some(Value::Null) => DEFAULT_TIMEOUT_MS,
            Some(v) => v
                .as_u64()
                .filter(|t| (1000..=300_000).contains(t))
                .ok_or_else(|| {
                    JobError::bad("Invalid timeoutMs: must be between 1000 and 300000")
                })?,
        };
        let agents = self.runtime.agents();
        let agent = match body.get("agentId").filter(|v| !v.is_null()) {
            Some(v) => {
                let id = v
                    .as_str()
                    .and_then(confab_protocol::ids::parse_uuid)
                    .ok_or_else(|| JobError::bad("Invalid agentId (must be a UUID)"))?;
                agents.running(id).ok_or(JobError {
                    status: 404,
                    error: "Agent not found".into(),
                    details: Some(format!("No running agent with id {id}")),
                })?
            }
            None => agents.default_agent().ok_or(JobError {
                status: 404,
                error: "No agents available".into(),
                details: None,
            })?,
        };

        let job_id = Uuid::new_v4();
        let now = now_ms();
        let job = Job {
            job_id,
            status: JobStatus::Pending,
            agent_id: agent.id,
            user_id,
            prompt: content.clone(),
            created_at: now,
            expires_at: now + timeout_ms as i64,
            result: None,
            error: None,
            metadata: metadata.clone(),
        };
        self.save(&job).await.map_err(|e| JobError {
            status: 500,
            error: "Failed to create job".into(),
            details: Some(e),
        })?;

        let internal = |e: String| JobError {
            status: 500,
            error: "Failed to create job".into(),
            details: Some(e),
        };
        let channel = self
            .hub
            .create_channel(
                Channel {
                    id: Uuid::new_v4(),
                    message_server_id: self.hub.default_server(),
                    name: format!("job-{job_id}"),
                    kind: channel_type::DM.into(),
                    source_type: None,
                    source_id: None,
                    topic: None,
                    metadata: Some(
                        json!({"jobId": job_id, "agentId": agent.id, "userId": user_id}),
                    ),
                    alias: None,
                    created_at: now,
                    updated_at: now,
                },
                &[agent.id.to_string()],
            )
            .await
            .map_err(|e| internal(e.to_string()))?;
        let info = self.hub.directory().remember(&channel);
        let mut message_meta = metadata.as_object().cloned().unwrap_or_default();
        message_meta.insert("jobId".into(), json!(job_id));
        let watch = self.runtime.watch(Duration::from_millis(timeout_ms));
        let committed = self
            .hub
            .append(
                NewMessage {
                    id: confab_store::new_message_id(),
                    channel_id: channel.id,
                    author_id: user_id.to_string(),
                    content,
                    raw_message: None,
                    in_reply_to: None,
                    source_type: Some("job_request".into()),
                    source_id: None,
                    metadata: Some(Value::Object(message_meta)),
                    created_at: 0,
                    client_key: None,
                },
                info,
                Delivery::Quiet,
            )
            .await
            .map_err(|e| internal(e.to_string()))?;
        self.set_status(job_id, JobStatus::Processing, None, None)
            .await;
        let me = self.clone();
        tokio::spawn(async move {
            let started = now_ms();
            let (status, result, error) = match watch.answer(committed.message.id).await {
                Answer::Replied(reply) => {
                    let m = &reply.message;
                    let elapsed = (now_ms() - started).max(0);
                    let result = json!({
                        "message": {
                            "id": m.id,
                            "content": m.content,
                            "authorId": m.author_id,
                            "createdAt": m.created_at,
                            "metadata": m.metadata,
                        },
                        "processingTimeMs": elapsed,
                    });
                    (JobStatus::Completed, Some(result), None)
                }
                Answer::Failed(e) => (JobStatus::Failed, None, Some(e)),
                Answer::NoAgent | Answer::Declined => (
                    JobStatus::Failed,
                    None,
                    Some("The agent did not answer".into()),
                ),
                Answer::TimedOut => (
                    JobStatus::Timeout,
                    None,
                    Some(format!("No answer within {timeout_ms} ms")),
                ),
            };
            me.set_status(job_id, status, result, error).await;
        });
        Ok(self.get(job_id).await.unwrap_or(job))
    }

    async fn save(&self, job: &Job) -> Result<(), String> {
        let store = self.hub.store();
        store
            .put_job(&job.record())
            .await
            .map_err(|e| e.to_string())?;
        store
            .trim_jobs(MAX_JOBS as u32)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn set_status(
        &self,
        id: Uuid,
        status: JobStatus,
        result: Option<Value>,
        error: Option<String>,
    ) {
        let Some(mut job) = self.get(id).await else {
            return;
        };
        job.status = status;
        if result.is_some() {
            job.result = result;
        }
        if error.is_some() {
            job.error = error;
        }
        if status == JobStatus::Completed {
            let ms = (now_ms() - job.created_at).max(0) as u64;
            self.completed.fetch_add(1, Ordering::Relaxed);
            self.completed_ms_total.fetch_add(ms, Ordering::Relaxed);
        }
        if let Err(e) = self.hub.store().put_job(&job.record()).await {
            tracing::warn!(job = %id, error = %e, "cannot store the job's outcome");
        }
        if status.finished() {
            tracing::info!(job = %id, status = status.name(), "job finished");
        }
    }

    pub async fn get(&self, id: Uuid) -> Option<Job> {
        match self.hub.store().get_job(id).await {
            Ok(found) => found.map(Job::from_record),
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "cannot read a job");
                None
            }
        }
    }

    /// Newest first, optionally one status; `(jobs, total, filtered)`.
    pub async fn list(&self, limit: usize, status: Option<&str>) -> (Vec<Job>, usize, usize) {
        let all: Vec<Job> = self
            .hub
            .store()
            .list_jobs()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(Job::from_record)
            .collect();
        let total = all.len();
        let matching: Vec<Job> = all
            .into_iter()
            .filter(|j| status.is_none_or(|s| j.status.name() == s))
            .collect();
        let filtered = matching.len();
        (matching.into_iter().take(limit).collect(), total, filtered)
    }

    pub async fn health(&self) -> Value {
        let (jobs, total, _) = self.list(MAX_JOBS, None).await;
        let mut counts = Map::new();
        for s in JobStatus::ALL {
            counts.insert(
                s.name().into(),
                json!(jobs.iter().filter(|j| j.status == s).count()),
            );
        }
        let completed = self.completed.load(Ordering::Relaxed);
        let total_ms = self.completed_ms_total.load(Ordering::Relaxed);
        json!({
            "healthy": true,
            "timestamp": now_ms(),
            "totalJobs": total,
            "statusCounts": counts,
            "metrics": {
                "completedJobs": completed,
                "averageProcessingTimeMs": total_ms.checked_div(completed).unwrap_or(0),
            },
            "maxJobs": MAX_JOBS,
        })
    }
}
