//! The jobs API (compat spec §2.9): plain success bodies, errors `{success:false, error,
//! details}`. Jobs complete with the agent's reply.

use utoipa_axum::{router::OpenApiRouter, routes};

use super::openapi::{self as doc, ApiFailure};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use confab_agents::jobs::JobError;
use confab_protocol::parse_uuid;
use serde_json::json;

use super::AppState;
use super::envelope::{ApiError, ApiResult, Body, JsonBody, QueryMap, bare};
use crate::access::{Action, Resource};
use crate::auth::Principal;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(list, create))
        .routes(routes!(one))
}

fn error(e: JobError) -> ApiError {
    ApiError::with_body(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({ "success": false, "error": e.error, "details": e.details }),
    )
}

/// `POST /jobs` `{agentId?, userId, content, metadata?, timeoutMs?}`: a one-shot agent run.
#[utoipa::path(post, path = "/jobs", tag = "jobs", operation_id = "create_job",
    request_body = doc::JobCreateRequest,
    responses((status = 201, body = doc::JobCreated),
        (status = 400, description = "Missing or malformed fields", body = ApiFailure),
        (status = 404, description = "No such agent", body = ApiFailure)))]
async fn create(
    State(state): State<AppState>,
    caller: Principal,
    JsonBody(body): JsonBody<Body>,
) -> ApiResult {
    // A job is run for oneself (the body is validated by `create`).
    if let Some(user) = body
        .get("userId")
        .and_then(serde_json::Value::as_str)
        .and_then(parse_uuid)
    {
        state
            .security
            .allow(&caller, Resource::OwnedBy(user), Action::Write)
            .await?;
    }
    let job = state.agents.jobs.create(&body).await.map_err(error)?;
    Ok(bare(
        StatusCode::CREATED,
        json!({
            "jobId": job.job_id,
            "status": job.status,
            "createdAt": job.created_at,
            "expiresAt": job.expires_at,
        }),
    ))
}

/// `GET /jobs/:id`: the job and, once done, its result.
#[utoipa::path(get, path = "/jobs/{job_id}", tag = "jobs", operation_id = "get_job",
    params(("job_id" = String, Path, description = "The job's id")),
    responses((status = 200, body = doc::Object),
        (status = 400, description = "Malformed id", body = ApiFailure),
        (status = 404, description = "No such job", body = ApiFailure)))]
async fn one(
    State(state): State<AppState>,
    caller: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    let not_found = || {
        error(JobError {
            status: 404,
            error: "Job not found".into(),
            details: Some(format!("No job with id {id}")),
        })
    };
    let id = parse_uuid(&id).ok_or_else(not_found)?;
    let job = state.agents.jobs.get(id).await.ok_or_else(not_found)?;
    state
        .security
        .allow(&caller, Resource::OwnedBy(job.user_id), Action::Read)
        .await?;
    Ok(bare(StatusCode::OK, json!(job)))
}

/// The caller's own jobs (every job, for an operator or where authentication is off).
/// `GET /jobs?limit=&status=`.
#[utoipa::path(get, path = "/jobs", tag = "jobs", operation_id = "list_jobs",
    params(doc::JobQuery),
    responses((status = 200, body = doc::JobList)))]
async fn list(
    State(state): State<AppState>,
    caller: Principal,
    QueryMap(q): QueryMap,
) -> ApiResult {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 1000);
    let (all, total, filtered) = state
        .agents
        .jobs
        .list(limit, q.get("status").map(String::as_str))
        .await;
    let mut jobs = Vec::with_capacity(all.len());
    for job in all {
        if state
            .security
            .access
            .permits(&caller, Resource::OwnedBy(job.user_id), Action::Read)
            .await
        {
            jobs.push(job);
        }
    }
    Ok(bare(
        StatusCode::OK,
        json!({ "jobs": jobs, "total": total, "filtered": filtered }),
    ))
}

/// `GET /jobs/health`.
#[utoipa::path(get, path = "/jobs/health", tag = "jobs", operation_id = "jobs_health",
    responses((status = 200, body = doc::Object)))]
async fn health(State(state): State<AppState>) -> ApiResult {
    Ok(bare(StatusCode::OK, state.agents.jobs.health().await))
}
