//! The REST API (compat spec §2), on the same port as Socket.IO.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use confab_hub::Hub;

use crate::config::Config;
use crate::logs::LogHub;

/// What every HTTP handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    pub config: Arc<Config>,
    pub logs: LogHub,
    pub started: Instant,
}

pub fn router(state: AppState) -> Router {
    Router::new().with_state(state)
}
