//! Agent run leases in Redis ([`confab_agents::RunLeases`]).
//!
//! Keys (one slot, through the `{<prefix>:runs}` hash tag; runs are few next to messages):
//! * `{<prefix>:runs}:until`: a sorted set, run (`<agent>/<message>/<channel>`) → the Redis time
//!   (ms) its lease lasts until;
//! * `{<prefix>:runs}:owner`: a hash, run → the node holding it;
//! * `{<prefix>:runs}:tries`: a hash, run → how many times it was taken over; after
//!   [`MAX_TAKEOVERS`] it is given up (logged), so a run that kills its node is not retried
//!   for ever.
//!
//! A run's lease lasts [`RedisRunLeases::new`]'s `lease` after its last renewal; the node
//! running it renews every third of that. Times are Redis's own (`TIME`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_agents::{RunKey, RunLeases};
use redis::Script;
use uuid::Uuid;

use crate::RedisCluster;

/// Takeovers of one run before it is given up.
pub const MAX_TAKEOVERS: u32 = 3;

/// KEYS: until, owner. ARGV: node, run, lease ms.
const CLAIM: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local owner = redis.call('HGET', KEYS[2], ARGV[2])
local till = redis.call('ZSCORE', KEYS[1], ARGV[2])
if owner and owner ~= ARGV[1] and till and tonumber(till) >= now then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1
";

/// KEYS: until, owner. ARGV: node, run, lease ms.
const RENEW: &str = r"
if redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[1] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
return 1
";

/// KEYS: until, owner, tries. ARGV: node, run.
const RELEASE: &str = r"
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
end
return 0
";

/// KEYS: until, owner, tries. ARGV: node, lease ms, limit, max takeovers. Returns the runs
/// claimed.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[3]))
local taken = {}
for _, run in ipairs(due) do
  if redis.call('HINCRBY', KEYS[3], run, 1) > tonumber(ARGV[4]) then
    redis.call('ZREM', KEYS[1], run)
    redis.call('HDEL', KEYS[2], run)
    redis.call('HDEL', KEYS[3], run)
  else
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), run)
    redis.call('HSET', KEYS[2], run, ARGV[1])
    table.insert(taken, run)
  end
end
return taken
";

/// Run leases in the cluster's Redis.
pub struct RedisRunLeases {
    cluster: Arc<RedisCluster>,
    lease: Duration,
    claim: Script,
    renew: Script,
    release: Script,
    take: Script,
}

impl RedisRunLeases {
    /// Leases last `lease` past their last renewal.
    pub fn new(cluster: Arc<RedisCluster>, lease: Duration) -> Arc<Self> {
        Arc::new(RedisRunLeases {
            cluster,
            lease: lease.max(Duration::from_millis(300)),
            claim: Script::new(CLAIM),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
            take: Script::new(TAKE),
        })
    }

    fn key(&self, which: &str) -> String {
        format!("{{{}:runs}}:{which}", self.cluster.prefix())
    }

    fn lease_ms(&self) -> u64 {
        self.lease.as_millis() as u64
    }

    async fn call<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[String],
    ) -> redis::RedisResult<T> {
        let mut conn = self.cluster.conn().await?;
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(self.key(k));
        }
        for a in args {
            inv.arg(a);
        }
        inv.invoke_async(&mut conn).await
    }
}

fn member(run: RunKey) -> String {
    format!("{}/{}/{}", run.agent, run.message, run.channel)
}

fn parse(member: &str) -> Option<RunKey> {
    let mut parts = member.split('/').map(Uuid::parse_str);
    let key = RunKey {
        agent: parts.next()?.ok()?,
        message: parts.next()?.ok()?,
        channel: parts.next()?.ok()?,
    };
    parts.next().is_none().then_some(key)
}

#[async_trait]
impl RunLeases for RedisRunLeases {
    async fn claim(&self, run: RunKey) -> bool {
        let node = self.cluster.node_id().to_owned();
        match self
            .call::<i64>(
                &self.claim,
                &["until", "owner"],
                &[node, member(run), self.lease_ms().to_string()],
            )
            .await
        {
            Ok(n) => n == 1,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim a run's lease; running it here");
                true
            }
        }
    }

    async fn renew(&self, run: RunKey) -> bool {
        let node = self.cluster.node_id().to_owned();
        match self
            .call::<i64>(
                &self.renew,
                &["until", "owner"],
                &[node, member(run), self.lease_ms().to_string()],
            )
            .await
        {
            Ok(n) => n == 1,
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew a run's lease");
                true
            }
        }
    }

    async fn release(&self, run: RunKey) {
        let node = self.cluster.node_id().to_owned();
        if let Err(e) = self
            .call::<()>(
                &self.release,
                &["until", "owner", "tries"],
                &[node, member(run)],
            )
            .await
        {
            tracing::warn!(error = %e, "cannot release a run's lease");
        }
    }

    async fn take_expired(&self) -> Vec<RunKey> {
        let node = self.cluster.node_id().to_owned();
        match self
            .call::<Vec<String>>(
                &self.take,
                &["until", "owner", "tries"],
                &[
                    node,
                    self.lease_ms().to_string(),
                    "32".into(),
                    MAX_TAKEOVERS.to_string(),
                ],
            )
            .await
        {
            Ok(runs) => runs.iter().filter_map(|m| parse(m)).collect(),
            Err(e) => {
                tracing::debug!(error = %e, "cannot look for runs to take over");
                Vec::new()
            }
        }
    }

    fn period(&self) -> Duration {
        self.lease / 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_members_round_trip() {
        let run = RunKey {
            agent: Uuid::new_v4(),
            message: Uuid::new_v4(),
            channel: Uuid::new_v4(),
        };
        assert_eq!(parse(&member(run)), Some(run));
        assert_eq!(parse("a/b/c"), None);
        assert_eq!(parse(&format!("{}/x", member(run))), None);
    }
}
