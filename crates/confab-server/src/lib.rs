//! confab's network side: one port serving Socket.IO (`/socket.io/`) and the ElizaOS REST API.
//!
//! A message's path: [`socket`] (wire in, per-connection ordering) → `confab_protocol` (decode,
//! validate) → `confab_hub` (channels, presence, sequencer: commit then fan out) →
//! `confab_store` (SQLite) → [`socket::fanout`] (wire out).

pub mod access;
pub mod auth;
pub mod config;
pub mod http;
pub mod limits;
pub mod logs;
pub mod metrics;
pub mod options;
pub mod proxy;
pub mod security;
pub mod shutdown;
pub mod socket;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use axum::http::{HeaderName, HeaderValue, Method};
use confab_hub::Hub;
use confab_store::media::{FileMedia, MediaStore, PgMedia};
use confab_store::{
    GuardConfig, GuardedStore, PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store,
    StoreHealth,
};
use socketioxide::SocketIo;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::Config;
pub use logs::LogHub;

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub store_location: String,
    pub hub: Hub,
    pub agents: confab_agents::AgentSystem,
    pub cluster: Option<Arc<confab_cluster::RedisCluster>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Serves until the process is told to stop (Ctrl-C or SIGTERM).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.server.await.context("server task")?.context("serve")
    }
}

/// Opens storage, builds the hub and starts listening. Returns once the port is bound.
pub async fn start(config: Config, logs: LogHub) -> anyhow::Result<Running> {
    let (store, storage, media) = open_store(&config).await?;
    tracing::info!(media = %media.describe(), "media storage");

    let (socket_layer, io) = SocketIo::builder()
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .connect_timeout(config.connect_timeout)
        .max_payload(config.max_socket_payload)
        // `max_payload` bounds polling bodies only; websocket messages have their own limits
        // (64 MB by default). As with socket.io's maxHttpBufferSize, one limit for both.
        .ws_max_message_size(config.max_socket_payload as usize)
        .ws_max_frame_size(config.max_socket_payload as usize)
        .max_buffer_size(config.socket_buffer)
        // And in bytes: what one stalled connection can hold (see `socket::slow`).
        .max_buffer_bytes(config.socket_buffer_bytes)
        // Kept by every websocket for its whole life (4 KiB by default): see `ws_read_buffer`.
        .ws_read_buffer_size(config.ws_read_buffer.max(64))
        .build_layer();
    let local: Arc<dyn confab_hub::FanOut> =
        Arc::new(socket::fanout::SocketIoFanOut::new(io.clone()));
    let cluster = match &config.redis_url {
        None => None,
        Some(url) => {
            if config.database_url.is_none() {
                anyhow::bail!(
                    "REDIS_URL joins nodes into a cluster, which needs a shared PostgreSQL (DATABASE_URL)"
                );
            }
            Some(
                confab_cluster::RedisCluster::new(confab_cluster::ClusterConfig {
                    redis_url: url.clone(),
                    redis_cluster: config.redis_cluster,
                    prefix: config.redis_prefix.clone(),
                    node_id: config.node_id.clone(),
                })
                .context("REDIS_URL")?,
            )
        }
    };
    let hub = match &cluster {
        None => Hub::start(store.clone(), local.clone(), config.hub.clone()).await,
        Some(cluster) => {
            Hub::start_clustered(
                store.clone(),
                local.clone(),
                cluster.fanout(local.clone()),
                config.hub.clone(),
                Some(cluster.clone() as Arc<dyn confab_hub::ClusterLink>),
                confab_cluster::RedisPresence::start(
                    cluster.clone(),
                    config.hub.rejoin_grace,
                    config.presence_ttl,
                ),
            )
            .await
        }
    }
    .context("starting the hub")?;
    if let Some(cluster) = &cluster {
        cluster.start_receiving(hub.clone(), local.clone());
        tracing::info!(node = %config.node_id, prefix = %config.redis_prefix, "cluster node");
    }
    // A deleted channel or message takes its files along.
    hub.on_removal(http::media::removal_hook(media.clone()));
    let mut agents_config = config.agents.clone();
    agents_config.runtime.media = Some(media.clone());
    let leases = cluster.as_ref().map(|c| {
        confab_cluster::RedisRunLeases::new(c.clone(), config.run_lease)
            as Arc<dyn confab_agents::RunLeases>
    });
    let agents = confab_agents::AgentSystem::start(hub.clone(), agents_config, leases)
        .await
        .context("starting the agents")?;
    let security = security::Security::new(config.security.clone(), hub.clone(), Some(io.clone()))
        .await
        .context("security settings")?;
    socket::attach(
        &io,
        hub.clone(),
        logs.clone(),
        config.strict_auth,
        config.inbound_queue,
        security.clone(),
    );
    logs.attach(io.clone());

    let state = http::AppState {
        hub: hub.clone(),
        agents: agents.clone(),
        cluster: cluster.clone(),
        storage,
        config: Arc::new(config.clone()),
        logs,
        started: Instant::now(),
        security: security.clone(),
        media,
    };
    let app = http::router(state)
        // JSON and text responses, compressed as the client accepts (gzip, br, zstd). Not
        // Server-Sent Events (each event leaves as it is written), nor the page's files, which
        // come precompressed (`web`), nor Socket.IO (its layer is outside this one).
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            security.limits.clone(),
            limits::Limits::http_layer,
        ))
        .layer(socket_layer)
        // Before socketioxide keeps a handshake request for the session's life (see `compact`).
        .layer(tower::util::MapRequestLayer::new(
            socket::compact::layer::<axum::body::Body>,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(config.max_http_body))
        .layer(cors(&config));

    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    // Many small frames leave back to back (an agent run: control, chunks, reply, complete);
    // with Nagle's algorithm the later ones wait for the client's delayed ACK (~40 ms).
    let send_buffer = config.socket_send_buffer;
    let listener =
        axum::serve::ListenerExt::tap_io(listener, move |tcp: &mut tokio::net::TcpStream| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY");
            }
            // Bounds what the kernel holds for a client that stops reading (see `socket::slow`).
            if let Some(size) = send_buffer
                && let Err(e) = socket2::SockRef::from(&*tcp).set_send_buffer_size(size)
            {
                tracing::debug!(error = %e, "SO_SNDBUF");
            }
        });
    let closing_io = io.clone();
    let (draining, limit) = (hub.clone(), config.shutdown_timeout);
    let server = tokio::spawn(async move {
        let (signalled, deadline) = tokio::sync::oneshot::channel();
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = signalled.send(Instant::now() + limit);
            // Long-lived sockets would hold the graceful shutdown open: close them.
            shutdown::close_sockets(&closing_io).await;
        })
        .into_future();
        tokio::pin!(serve);
        let deadline = tokio::select! {
            served = &mut serve => return served,
            d = deadline => d.unwrap_or_else(|_| Instant::now() + limit),
        };
        if tokio::time::timeout_at(deadline.into(), &mut serve)
            .await
            .is_err()
        {
            tracing::warn!("shutdown: open HTTP requests did not finish in time");
        }
        shutdown::drain(&draining, deadline).await;
        tracing::info!("stopped");
        Ok(())
    });
    Ok(Running {
        addr,
        store_location: store.location(),
        hub,
        agents,
        cluster,
        server,
    })
}

/// PostgreSQL when a URL is configured, else SQLite in the data directory; either behind the
/// guard that bounds every call and fails fast while the database is down. Media go with
/// them: into PostgreSQL (every node serves every file), else under the data directory.
async fn open_store(
    config: &Config,
) -> anyhow::Result<(Arc<dyn Store>, StoreHealth, Arc<dyn MediaStore>)> {
    let (store, media): (Arc<dyn Store>, Arc<dyn MediaStore>) = match config.database_url.as_deref()
    {
        Some(url) => {
            let pg = PostgresStore::open(
                url,
                PostgresOptions {
                    schema: config.database_schema.clone(),
                    // A dead server, or a lock held by a stalled node, fails an append within
                    // the same bound as every other call.
                    wait_timeout: config.store_timeout,
                    ..PostgresOptions::default()
                },
            )
            .await
            .context("connecting to PostgreSQL")?;
            let media = Arc::new(PgMedia::new(pg.pool().clone()));
            (Arc::new(pg), media)
        }
        None => {
            let db_path = config.data_dir.join("confab.db");
            let store = SqliteStore::open(
                &db_path,
                SqliteOptions {
                    fsync_every_commit: config.fsync,
                    ..SqliteOptions::default()
                },
            )
            .await
            .with_context(|| format!("opening {}", db_path.display()))?;
            let media = Arc::new(FileMedia::new(config.data_dir.join("media")));
            (Arc::new(store), media)
        }
    };
    let guarded = GuardedStore::new(
        store,
        GuardConfig {
            timeout: config.store_timeout,
            ..GuardConfig::default()
        },
    );
    let health = guarded.health();
    Ok((Arc::new(guarded), health, media))
}

/// CORS as ElizaOS sets it: the configured origin or the request's own, with credentials.
fn cors(config: &Config) -> CorsLayer {
    let origin = match config.cors_origin.as_deref() {
        Some("*") | None => AllowOrigin::mirror_request(),
        Some(list) => AllowOrigin::list(
            list.split(',')
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
                .collect::<Vec<_>>(),
        ),
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ])
        .allow_headers([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("authorization"),
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("x-entity-id"),
        ])
        .expose_headers([HeaderName::from_static("x-total-count")])
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
