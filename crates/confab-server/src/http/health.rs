//! Health, ping, status, logs and version (compat spec §2.3). These answer without an envelope.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use confab_protocol::{iso_from_ms, now_ms};
use serde_json::{Value, json};

use super::AppState;
use super::envelope::{QueryMap, bare};
use super::openapi as doc;
use crate::logs::parse_level;
use crate::security::Operator;
use utoipa_axum::{router::OpenApiRouter, routes};

/// ElizaOS's level names, in its order (`levels` of `GET /api/server/logs`).
const LEVEL_NAMES: [&str; 9] = [
    "fatal", "error", "warn", "info", "log", "progress", "success", "debug", "trace",
];

/// `/api/server/*`.
pub fn server_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ping))
        .routes(routes!(hello))
        .routes(routes!(status))
        .routes(routes!(server_health))
        .routes(routes!(logs, clear_logs))
}

/// `/api/system/*`.
pub fn system_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(version))
}

/// `/healthz` and `/health`, outside `/api`.
pub fn root_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(health))
        .routes(routes!(metrics))
}

/// `GET /metrics`: Prometheus text; operators only when authentication is on.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "Authentication required", body = doc::AuthRequired),
        (status = 403, description = "Not an operator", content_type = "text/plain")),
    security((), ("api_key" = []), ("bearer" = [])))]
async fn metrics(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    crate::security::metrics_route(State(state.security.clone()), req).await
}

fn now_iso() -> String {
    iso_from_ms(now_ms())
}

/// `GET /healthz`: liveness only.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = doc::Liveness)))]
async fn healthz() -> Response {
    bare(
        StatusCode::OK,
        json!({ "status": "ok", "timestamp": now_iso() }),
    )
}

/// The longest `/health` spends finding out whether storage answers; it reports the circuit
/// breaker's state at once when storage is known to be down, or proved alive in the last second.
const STORAGE_CHECK: Duration = Duration::from_millis(750);

/// The body of both health routes, and its status code.
///
/// Deviation from ElizaOS, on purpose: ElizaOS answers 503 `DEGRADED` while no agent runs,
/// because it is an agent host. confab is a messaging hub that is fully usable without agents
/// (and has none yet), so it reports `agents: "no_agents"` but stays 200 `OK`; it is degraded
/// (503) only when storage cannot be used: unreachable, timing out, out of disk. Then
/// `failing.storage` says why (`backend`, `error`, `downForMs`).
async fn health_body(state: &AppState) -> (StatusCode, Value) {
    let storage = state.storage.check(STORAGE_CHECK).await;
    let healthy = storage.healthy();
    let running = running_agents(state);
    let mut body = json!({
        "status": if healthy { "OK" } else { "DEGRADED" },
        "version": state.config.version,
        "timestamp": now_iso(),
        "dependencies": {
            "agents": if running > 0 { "healthy" } else { "no_agents" },
            "storage": if healthy { "healthy" } else { "unhealthy" },
        },
    });
    if let Some(error) = &storage.cause {
        body["failing"]["storage"] = json!({
            "backend": storage.backend,
            "error": error,
            "downForMs": storage.down_for.map_or(0, |d| d.as_millis() as u64),
        });
    }
    // A node whose cluster link is down still serves its own clients (and catches up from
    // storage): reported as degraded, but not taken out of a load balancer's rotation.
    if let Some(cluster) = &state.cluster {
        body["dependencies"]["cluster"] = cluster.status();
        body["node"] = json!(cluster.node_id());
        if !cluster.healthy() {
            body["status"] = json!("DEGRADED");
            body["failing"]["cluster"] = cluster.status();
        }
    }
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

/// `GET /health`: 503 while storage cannot be used.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, body = doc::Health), (status = 503, description = "Degraded", body = doc::Health)))]
async fn health(State(state): State<AppState>) -> Response {
    let (code, mut body) = health_body(&state).await;
    body["agentCount"] = json!(running_agents(&state));
    bare(code, body)
}

/// `GET /api/server/health`: like `/health` without `agentCount`.
#[utoipa::path(get, path = "/health", tag = "health", operation_id = "server_health",
    responses((status = 200, body = doc::Health), (status = 503, description = "Degraded", body = doc::Health)))]
async fn server_health(State(state): State<AppState>) -> Response {
    let (code, body) = health_body(&state).await;
    bare(code, body)
}

/// `GET /api/server/ping`.
#[utoipa::path(get, path = "/ping", tag = "health", responses((status = 200, body = doc::Pong)))]
async fn ping() -> Response {
    bare(
        StatusCode::OK,
        json!({ "pong": true, "timestamp": now_ms() }),
    )
}

/// `GET /api/server/hello`.
#[utoipa::path(get, path = "/hello", tag = "health", responses((status = 200, body = doc::Hello)))]
async fn hello() -> Response {
    bare(StatusCode::OK, json!({ "message": "Hello World!" }))
}

/// `GET /api/server/status`.
#[utoipa::path(get, path = "/status", tag = "health", responses((status = 200, body = doc::ServerStatus)))]
async fn status(State(state): State<AppState>) -> Response {
    bare(
        StatusCode::OK,
        json!({ "status": "ok", "agentCount": running_agents(&state), "timestamp": now_iso() }),
    )
}

fn running_agents(state: &AppState) -> usize {
    state
        .agents
        .agents
        .list()
        .iter()
        .filter(|a| a.enabled)
        .count()
}

/// `GET /api/system/version`.
#[utoipa::path(get, path = "/version", tag = "health", responses((status = 200, body = doc::Version)))]
async fn version(State(state): State<AppState>) -> Response {
    let environment = std::env::var("NODE_ENV").unwrap_or_else(|_| {
        if cfg!(debug_assertions) {
            "development".into()
        } else {
            "production".into()
        }
    });
    bare(
        StatusCode::OK,
        json!({
            "version": state.config.version,
            "source": "server",
            "timestamp": now_iso(),
            "environment": environment,
            "uptime": state.started.elapsed().as_secs_f64(),
        }),
    )
}

/// `GET|POST /api/server/logs?level=&limit=&since=&agentName=`: recent log entries, oldest
/// first, in ElizaOS's response shape.
///
/// Deviation: ElizaOS keeps only entries whose level *equals* the requested one; confab keeps
/// those *at or above* it, like its socket log filters (`level=warn` gives warnings and
/// errors). Unknown level names mean `info`, as in ElizaOS. `limit` defaults to 100, at most
/// 1000; `since` (epoch ms) defaults to one hour ago.
#[utoipa::path(method(get, post), path = "/logs", tag = "health", operation_id = "logs",
    params(doc::LogQuery),
    responses((status = 200, body = doc::Logs)))]
async fn logs(State(state): State<AppState>, _operator: Operator, query: QueryMap) -> Response {
    let requested_level = query
        .get("level")
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| "all".into());
    let min_level = match requested_level.as_str() {
        "all" => 0,
        name => match name.parse::<i64>() {
            Ok(n) => n,
            Err(_) if LEVEL_NAMES.contains(&name) => parse_level(name),
            Err(_) => parse_level("info"),
        },
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.trim().parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(100)
        .min(1000);
    let since = query
        .get("since")
        .and_then(confab_protocol::parse_epoch_ms)
        .unwrap_or_else(|| now_ms() - 3_600_000);
    let agent_name = query.get("agentName").unwrap_or("all").to_owned();
    let agent_id = query.get("agentId").unwrap_or("all").to_owned();

    let all = state.logs.recent(0, usize::MAX);
    let total = all.len();
    let matches = |e: &Value, key: &str, wanted: &str| {
        wanted == "all"
            || e.get(key)
                .and_then(Value::as_str)
                .is_none_or(|v| v == wanted)
    };
    let mut kept: Vec<Value> = state
        .logs
        .recent(min_level, usize::MAX)
        .into_iter()
        .filter(|e| e.get("time").and_then(Value::as_i64).unwrap_or(0) >= since)
        .filter(|e| matches(e, "agentName", &agent_name) && matches(e, "agentId", &agent_id))
        .collect();
    let skip = kept.len().saturating_sub(limit);
    kept.drain(..skip);
    bare(
        StatusCode::OK,
        json!({
            "logs": kept,
            "count": kept.len(),
            "total": total,
            "requestedLevel": requested_level,
            "agentName": agent_name,
            "agentId": agent_id,
            "levels": LEVEL_NAMES,
        }),
    )
}

/// `DELETE /api/server/logs`: operators only when authentication is on.
#[utoipa::path(delete, path = "/logs", tag = "health", responses((status = 200, body = doc::LogsCleared)))]
async fn clear_logs(State(state): State<AppState>, _operator: Operator) -> Response {
    state.logs.clear_recent();
    bare(
        StatusCode::OK,
        json!({ "status": "success", "message": "Logs cleared successfully" }),
    )
}
