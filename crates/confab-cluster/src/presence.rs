//! Cluster-wide presence in Redis, with a bounded expiry for the members of a dead node.
//!
//! Keys (all of a channel's in one slot, through the `{<channel>}` hash tag):
//! * `<prefix>:presence:{<channel>}`: a hash, field `<node>/<entity>` → that entity's
//!   connection count on that node;
//! * `<prefix>:presence:{<channel>}:nodes`: a sorted set, node → the Redis time (ms) until
//!   which that node's fields count. Each node pushes its deadline to now + TTL every TTL / 3
//!   for every channel it has members in (rewriting its fields on the way), so the fields of a
//!   node that stopped (killed, cut off from Redis) stop counting at most TTL after its last
//!   refresh, and are removed by the next reader. Times are Redis's own (`TIME`), so node
//!   clocks do not matter.
//! * `<prefix>:departed:{<entity>}`: a hash, channel → `<offset>|<lossy>`, where a disconnected
//!   entity stopped; expires after the rejoin grace period. Taken (read and deleted at once) by
//!   the node the entity reconnects to, whichever it is.
//!
//! Every operation is one Lua script on one slot: atomic, one round trip, and valid on a
//! Redis Cluster.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use confab_hub::presence::{Departure, Presence, PresenceError, StopPoint};
use redis::Script;
use uuid::Uuid;

use crate::RedisCluster;

/// Presence of every node, in the cluster's Redis.
pub struct RedisPresence {
    cluster: Arc<RedisCluster>,
    /// How long a departure is kept for the automatic rejoin.
    grace: Duration,
    /// How long a node's members count after its last refresh.
    ttl: Duration,
    /// This node's own entries, written again at each refresh.
    local: Mutex<HashMap<Uuid, HashMap<Uuid, usize>>>,
    set_script: Script,
    refresh_script: Script,
    members_script: Script,
    depart_script: Script,
    take_script: Script,
}

/// KEYS: members, nodes. ARGV: node, entity, count, ttl ms. Returns 1 if the entity is present
/// through another live node.
const SET: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local field = ARGV[1] .. '/' .. ARGV[2]
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[1], field, ARGV[3])
else
  redis.call('HDEL', KEYS[1], field)
end
local ttl = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
redis.call('PEXPIRE', KEYS[2], ttl * 2)
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf')) do
  if n ~= ARGV[1] and redis.call('HEXISTS', KEYS[1], n .. '/' .. ARGV[2]) == 1 then
    return 1
  end
end
return 0
";

/// KEYS: members, nodes. ARGV: node, ttl ms, then entity, count pairs.
const REFRESH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[1] .. '/' .. ARGV[i], ARGV[i + 1])
end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
redis.call('PEXPIRE', KEYS[2], ttl * 2)
return 0
";

/// KEYS: members, nodes. Returns entity, count pairs of live nodes; forgets dead nodes.
const MEMBERS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
local alive = {}
for _, n in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do alive[n] = true end
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local node, entity = string.match(all[i], '^(.*)/([^/]*)$')
  if node and alive[node] then
    table.insert(out, entity)
    table.insert(out, all[i + 1])
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return out
";

/// KEYS: departed. ARGV: grace ms, then channel, `offset|lossy` pairs; keeps the earlier point.
const DEPART: &str = r"
for i = 2, #ARGV, 2 do
  local v = ARGV[i + 1]
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if old then
    local os, ol = string.match(old, '^(-?%d+)|(%d)$')
    local ns, nl = string.match(v, '^(-?%d+)|(%d)$')
    local seq = ns
    if tonumber(os) < tonumber(ns) then seq = os end
    local lossy = '0'
    if ol == '1' or nl == '1' then lossy = '1' end
    v = seq .. '|' .. lossy
  end
  redis.call('HSET', KEYS[1], ARGV[i], v)
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
";

/// KEYS: departed. Returns and deletes it.
const TAKE: &str = r"
local v = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return v
";

impl RedisPresence {
    /// Starts refreshing this node's entries every `ttl / 3`.
    pub fn start(cluster: Arc<RedisCluster>, grace: Duration, ttl: Duration) -> Arc<Self> {
        let ttl = ttl.max(Duration::from_millis(300));
        let me = Arc::new(RedisPresence {
            cluster,
            grace,
            ttl,
            local: Mutex::default(),
            set_script: Script::new(SET),
            refresh_script: Script::new(REFRESH),
            members_script: Script::new(MEMBERS),
            depart_script: Script::new(DEPART),
            take_script: Script::new(TAKE),
        });
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ttl / 3);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(me) = weak.upgrade() else {
                    return;
                };
                me.refresh().await;
            }
        });
        me
    }

    fn keys(&self, channel: Uuid) -> (String, String) {
        let members = format!("{}:presence:{{{}}}", self.cluster.prefix(), channel);
        let nodes = format!("{members}:nodes");
        (members, nodes)
    }

    fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis() as u64
    }

    /// Pushes this node's deadline on in every channel it has members in.
    async fn refresh(&self) {
        let snapshot: Vec<(Uuid, Vec<(Uuid, usize)>)> = self
            .local
            .lock()
            .unwrap()
            .iter()
            .map(|(c, e)| (*c, e.iter().map(|(id, n)| (*id, *n)).collect()))
            .collect();
        if snapshot.is_empty() {
            return;
        }
        let Ok(mut conn) = self.cluster.conn().await else {
            return;
        };
        for (channel, entities) in snapshot {
            let (members, nodes) = self.keys(channel);
            let mut inv = self.refresh_script.key(members);
            inv.key(nodes)
                .arg(self.cluster.node_id())
                .arg(self.ttl_ms());
            for (entity, n) in entities {
                inv.arg(entity.to_string()).arg(n);
            }
            if let Err(e) = inv.invoke_async::<()>(&mut conn).await {
                tracing::warn!(error = %e, %channel, "cannot refresh presence");
                return;
            }
        }
    }

    fn departed_key(&self, entity: Uuid) -> String {
        format!("{}:departed:{{{}}}", self.cluster.prefix(), entity)
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn set(&self, channel: Uuid, entity: Uuid, connections: usize) -> bool {
        {
            let mut local = self.local.lock().unwrap();
            if connections == 0 {
                if let Some(e) = local.get_mut(&channel) {
                    e.remove(&entity);
                    if e.is_empty() {
                        local.remove(&channel);
                    }
                }
            } else {
                local
                    .entry(channel)
                    .or_default()
                    .insert(entity, connections);
            }
        }
        let (members, nodes) = self.keys(channel);
        let outcome = match self.cluster.conn().await {
            Ok(mut conn) => {
                self.set_script
                    .key(members)
                    .key(nodes)
                    .arg(self.cluster.node_id())
                    .arg(entity.to_string())
                    .arg(connections)
                    .arg(self.ttl_ms())
                    .invoke_async::<i64>(&mut conn)
                    .await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(elsewhere) => elsewhere == 1,
            Err(e) => {
                // The next refresh writes this node's entries again.
                tracing::warn!(error = %e, %channel, "cannot record presence");
                false
            }
        }
    }

    async fn members(&self, channel: Uuid) -> Result<Vec<(Uuid, usize)>, PresenceError> {
        let (members, nodes) = self.keys(channel);
        let mut conn = self
            .cluster
            .conn()
            .await
            .map_err(|e| PresenceError(e.to_string()))?;
        let pairs: Vec<(String, usize)> = self
            .members_script
            .key(members)
            .key(nodes)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| PresenceError(e.to_string()))?;
        let mut out: BTreeMap<Uuid, usize> = BTreeMap::new();
        for (entity, n) in pairs {
            if let Ok(id) = Uuid::parse_str(&entity) {
                *out.entry(id).or_default() += n;
            }
        }
        Ok(out.into_iter().collect())
    }

    async fn depart(&self, entity: Uuid, channels: Vec<(Uuid, StopPoint)>) {
        if channels.is_empty() || self.grace.is_zero() {
            return;
        }
        let mut inv = self.depart_script.key(self.departed_key(entity));
        inv.arg(self.grace.as_millis() as u64);
        for (channel, stop) in channels {
            inv.arg(channel.to_string())
                .arg(format!("{}|{}", stop.offset, u8::from(stop.lossy)));
        }
        let outcome = match self.cluster.conn().await {
            Ok(mut conn) => inv.invoke_async::<()>(&mut conn).await,
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, %entity, "cannot record a departure; no automatic rejoin for it");
        }
    }

    async fn take_departure(&self, entity: Uuid) -> Option<Departure> {
        let mut conn = self.cluster.conn().await.ok()?;
        let pairs: Vec<(String, String)> = match self
            .take_script
            .key(self.departed_key(entity))
            .invoke_async(&mut conn)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, %entity, "cannot read a departure");
                return None;
            }
        };
        let channels: Vec<(Uuid, StopPoint)> = pairs
            .into_iter()
            .filter_map(|(channel, stop)| {
                let (offset, lossy) = stop.split_once('|')?;
                Some((
                    Uuid::parse_str(&channel).ok()?,
                    StopPoint {
                        offset: offset.parse().ok()?,
                        lossy: lossy == "1",
                    },
                ))
            })
            .collect();
        (!channels.is_empty()).then_some(Departure { channels })
    }
}
