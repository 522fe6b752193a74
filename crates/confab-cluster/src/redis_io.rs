//! One Redis or a Redis Cluster, behind the same few calls: commands (routed by key on a
//! cluster), and a connection that receives sharded pub/sub messages as RESP3 pushes.
//!
//! `redis-rs` routes a command on a cluster by its first key; every key confab uses carries a
//! hash tag (`{…}`) so what belongs together (a channel's pub/sub channel and presence, an
//! entity's departure record, the agent run leases) lives in one slot.

use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo,
    RedisFuture, RedisResult, Value,
};
use tokio::sync::mpsc::UnboundedSender;

/// Where Redis is: one server, or the seed nodes of a cluster.
#[derive(Clone)]
pub(crate) enum Target {
    Single(redis::ConnectionInfo),
    Cluster(Vec<redis::ConnectionInfo>),
}

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

impl Target {
    /// `urls`: one URL, or several separated by commas (a cluster's seed nodes); `cluster`
    /// forces cluster mode with a single seed URL.
    pub fn parse(urls: &str, cluster: bool) -> RedisResult<Target> {
        let infos = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| u.into_connection_info())
            .collect::<RedisResult<Vec<_>>>()?;
        match infos.len() {
            0 => Err((redis::ErrorKind::InvalidClientConfig, "no Redis URL").into()),
            1 if !cluster => Ok(Target::Single(infos.into_iter().next().unwrap())),
            _ => Ok(Target::Cluster(infos)),
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }

    /// A connection for commands and publishing, reconnecting by itself.
    pub async fn commands(&self) -> RedisResult<Conn> {
        match self {
            Target::Single(info) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_number_of_retries(1)
                    .set_max_delay(1000);
                let client = redis::Client::open(info.clone())?;
                Ok(Conn::Single(
                    ConnectionManager::new_with_config(client, config).await?,
                ))
            }
            Target::Cluster(infos) => Ok(Conn::Cluster(
                ClusterClientBuilder::new(infos.clone())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(2)
                    .build()?
                    .get_async_connection()
                    .await?,
            )),
        }
    }

    /// A RESP3 connection whose pub/sub messages (and, for one server, the news that it
    /// closed) go to `pushes`.
    pub async fn subscriber(&self, pushes: UnboundedSender<PushInfo>) -> RedisResult<Subscriber> {
        match self {
            Target::Single(info) => {
                let mut info = info.clone();
                info.redis.protocol = ProtocolVersion::RESP3;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_push_sender(pushes);
                Ok(Subscriber::Single(
                    redis::Client::open(info)?
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                ))
            }
            Target::Cluster(infos) => Ok(Subscriber::Cluster(
                ClusterClientBuilder::new(infos.clone())
                    .use_protocol(ProtocolVersion::RESP3)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .push_sender(pushes)
                    .build()?
                    .get_async_connection()
                    .await?,
            )),
        }
    }
}

/// A command connection to one Redis or to a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The connection that holds this node's sharded subscriptions. On a cluster, each `SSUBSCRIBE`
/// goes to the shard that owns the channel's slot, and the client subscribes again after a
/// reconnect or a slot move; on one server, a closed connection is reported as a
/// [`redis::PushKind::Disconnection`] push and the caller starts over.
pub(crate) enum Subscriber {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Subscriber {
    pub async fn ssubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Subscriber::Single(c) => redis::cmd("SSUBSCRIBE").arg(channel).exec_async(c).await,
            Subscriber::Cluster(c) => c.ssubscribe(channel).await,
        }
    }

    pub async fn sunsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Subscriber::Single(c) => redis::cmd("SUNSUBSCRIBE").arg(channel).exec_async(c).await,
            Subscriber::Cluster(c) => c.sunsubscribe(channel).await,
        }
    }

    pub async fn ping(&mut self) -> RedisResult<()> {
        match self {
            Subscriber::Single(c) => redis::cmd("PING").exec_async(c).await,
            Subscriber::Cluster(c) => redis::cmd("PING").exec_async(c).await,
        }
    }
}
