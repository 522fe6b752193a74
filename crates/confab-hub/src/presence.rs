//! Who is connected where.
//!
//! * [`Connections`]: this node's connections: channel → entity → connections, connection →
//!   its channels and what it has been sent in each.
//! * [`Presence`]: who is present in each channel across the whole cluster, and where departed
//!   entities stopped (kept for the rejoin grace period, so a reconnect, to any node, can be
//!   put back). [`MemoryPresence`] serves one node; a cluster keeps it in Redis
//!   (`confab-cluster`), as Centrifugo separates its PresenceManager from its Broker.
//!
//! An entity is "present" in a channel while at least one of its connections is joined.
//!
//! Each connection also keeps, per channel, its [`Feed`]: the point after which every message
//! of the channel has been handed to it, and, once a delivery to it was refused (its outgoing
//! queue was full), the point before that first refusal. That is what a resume on the same
//! connection skips, and where the automatic rejoin of its successor starts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::fanout::ConnId;

/// Channel membership as the whole cluster sees it, and departures for the automatic rejoin.
/// The hub calls it outside its own locks; calls about one (channel, entity) come in order.
#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// This node now has `connections` connections of `entity` in `channel` (0: none left).
    /// Returns whether the entity is present in the channel through another node, so that
    /// `userJoined` / `userLeft` are announced once cluster-wide.
    async fn set(&self, channel: Uuid, entity: Uuid, connections: usize) -> bool;
    /// Everyone present in the channel on any live node, with their connection counts, sorted
    /// by entity.
    async fn members(&self, channel: Uuid) -> Result<Vec<(Uuid, usize)>, PresenceError>;
    /// Remembers where a departed connection of the entity stopped; for a channel two of its
    /// connections were in, the earlier point (and lossy if either was).
    async fn depart(&self, entity: Uuid, channels: Vec<(Uuid, StopPoint)>);
    /// Takes the departure record of a reconnecting entity, if it is recent enough (within the
    /// rejoin grace period).
    async fn take_departure(&self, entity: Uuid) -> Option<Departure>;
}

/// Presence could not be read (its backing service is unreachable).
#[derive(Debug, Clone, thiserror::Error)]
#[error("presence unavailable: {0}")]
pub struct PresenceError(pub String);

/// Presence for one node, in memory.
pub struct MemoryPresence {
    grace: Duration,
    channels: Mutex<HashMap<Uuid, BTreeMap<Uuid, usize>>>,
    departed: Mutex<HashMap<Uuid, (Departure, Instant)>>,
}

impl MemoryPresence {
    /// Departures are kept for `grace`.
    pub fn new(grace: Duration) -> Self {
        MemoryPresence {
            grace,
            channels: Mutex::default(),
            departed: Mutex::default(),
        }
    }
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn set(&self, channel: Uuid, entity: Uuid, connections: usize) -> bool {
        let mut channels = self.channels.lock().unwrap();
        if connections == 0 {
            if let Some(entities) = channels.get_mut(&channel) {
                entities.remove(&entity);
                if entities.is_empty() {
                    channels.remove(&channel);
                }
            }
        } else {
            channels
                .entry(channel)
                .or_default()
                .insert(entity, connections);
        }
        false
    }

    async fn members(&self, channel: Uuid) -> Result<Vec<(Uuid, usize)>, PresenceError> {
        Ok(self
            .channels
            .lock()
            .unwrap()
            .get(&channel)
            .map(|e| e.iter().map(|(id, n)| (*id, *n)).collect())
            .unwrap_or_default())
    }

    async fn depart(&self, entity: Uuid, channels: Vec<(Uuid, StopPoint)>) {
        if channels.is_empty() {
            return;
        }
        let mut departed = self.departed.lock().unwrap();
        let (entry, at) = departed
            .entry(entity)
            .or_insert_with(|| (Departure::default(), Instant::now()));
        entry.merge(channels);
        *at = Instant::now();
    }

    async fn take_departure(&self, entity: Uuid) -> Option<Departure> {
        let mut departed = self.departed.lock().unwrap();
        departed.retain(|_, (_, at)| at.elapsed() <= self.grace);
        departed.remove(&entity).map(|(d, _)| d)
    }
}

/// This node's connections and what each has been sent.
#[derive(Default)]
pub struct Connections {
    channels: HashMap<Uuid, HashMap<Uuid, HashSet<ConnId>>>,
    conns: HashMap<ConnId, Membership>,
    /// The name a channel was joined by when it is not a UUID, kept while anyone is present, so
    /// events about a channel not stored yet still echo that name as `roomId`.
    names: HashMap<Uuid, String>,
}

struct Membership {
    entity: Uuid,
    channels: BTreeMap<Uuid, Feed>,
    /// Per channel, the offset before the first delivery this connection refused (outgoing
    /// queue full), taken at that refusal; the transport then drops it from every channel.
    cut: Option<HashMap<Uuid, i64>>,
}

/// What one connection has been sent in one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feed {
    /// Every message of the channel with a larger offset has been handed to the connection
    /// (replayed, or live since it joined).
    pub sent_after: i64,
    /// Joined by the server's automatic rejoin, and the client has not joined it itself yet.
    pub automatic: bool,
}

/// Where a departed connection stopped in one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopPoint {
    /// The offset in this channel of the last message handed to the connection.
    pub offset: i64,
    /// Deliveries to it were refused before it left (a slow consumer).
    pub lossy: bool,
}

/// What a disconnected entity was in, and where each of its channels stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    pub channels: Vec<(Uuid, StopPoint)>,
}

impl Departure {
    /// Adds another connection's stop points: per channel the earlier point, lossy if either.
    pub fn merge(&mut self, channels: Vec<(Uuid, StopPoint)>) {
        for (c, stop) in channels {
            match self.channels.iter_mut().find(|(id, _)| *id == c) {
                Some((_, known)) => {
                    known.offset = known.offset.min(stop.offset);
                    known.lossy |= stop.lossy;
                }
                None => self.channels.push((c, stop)),
            }
        }
    }
}

impl Connections {
    pub fn connect(&mut self, conn: &ConnId, entity: Uuid) {
        self.conns.insert(
            conn.clone(),
            Membership {
                entity,
                channels: BTreeMap::new(),
                cut: None,
            },
        );
    }

    /// Records the join with what the connection has been sent in the channel; true if the
    /// entity was not present in the channel before.
    pub fn join(&mut self, conn: &ConnId, channel: Uuid, feed: Feed) -> bool {
        let Some(m) = self.conns.get_mut(conn) else {
            return false;
        };
        m.channels.insert(channel, feed);
        let entities = self.channels.entry(channel).or_default();
        let conns = entities.entry(m.entity).or_default();
        let first = conns.is_empty();
        conns.insert(conn.clone());
        first
    }

    /// Records the leave; true if the entity has no connection left in the channel.
    pub fn leave(&mut self, conn: &ConnId, channel: Uuid) -> bool {
        let Some(m) = self.conns.get_mut(conn) else {
            return false;
        };
        if m.channels.remove(&channel).is_none() {
            return false;
        }
        let entity = m.entity;
        let Some(entities) = self.channels.get_mut(&channel) else {
            return false;
        };
        let mut gone = false;
        if let Some(conns) = entities.get_mut(&entity) {
            conns.remove(conn);
            if conns.is_empty() {
                entities.remove(&entity);
                gone = true;
            }
        }
        if entities.is_empty() {
            self.channels.remove(&channel);
            self.names.remove(&channel);
        }
        gone
    }

    /// Remembers the name a present channel was joined by (the first one wins).
    pub fn name_channel(&mut self, channel: Uuid, name: &str) {
        if self.channels.contains_key(&channel) {
            self.names.entry(channel).or_insert_with(|| name.to_owned());
        }
    }

    /// The name a channel with someone present was joined by, if it was not a UUID.
    pub fn channel_name(&self, channel: Uuid) -> Option<String> {
        self.names.get(&channel).cloned()
    }

    /// Forgets the connection; returns the channels the entity is no longer present in, and
    /// where the connection stopped in every channel it was in, given that each channel has
    /// been delivered up to offset `delivered(channel)`.
    pub fn disconnect(
        &mut self,
        conn: &ConnId,
        delivered: impl Fn(Uuid) -> i64,
    ) -> (Vec<Uuid>, Vec<(Uuid, StopPoint)>) {
        let Some(m) = self.conns.get(conn) else {
            return (Vec::new(), Vec::new());
        };
        let all: Vec<(Uuid, StopPoint)> = m
            .channels
            .keys()
            .map(|c| {
                let cut = m.cut.as_ref().map(|cut| cut.get(c).copied());
                let stop = StopPoint {
                    offset: cut.flatten().unwrap_or_else(|| delivered(*c)),
                    lossy: cut.is_some(),
                };
                (*c, stop)
            })
            .collect();
        let left = all
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| self.leave(conn, *c))
            .collect();
        self.conns.remove(conn);
        (left, all)
    }

    pub fn is_member(&self, conn: &ConnId, channel: Uuid) -> bool {
        self.feed(conn, channel).is_some()
    }

    /// What the connection has been sent in the channel, if it is a member.
    pub fn feed(&self, conn: &ConnId, channel: Uuid) -> Option<Feed> {
        self.conns.get(conn)?.channels.get(&channel).copied()
    }

    /// Records that the connection has now been sent everything of the channel after
    /// `sent_after`, and that the client joined it itself.
    pub fn confirm(&mut self, conn: &ConnId, channel: Uuid, sent_after: i64) {
        if let Some(feed) = self
            .conns
            .get_mut(conn)
            .and_then(|m| m.channels.get_mut(&channel))
        {
            feed.sent_after = feed.sent_after.min(sent_after);
            feed.automatic = false;
        }
    }

    /// A delivery to the connection was refused: in each of its channels it has been sent
    /// nothing after offset `sent_upto(channel)` (the first refusal counts).
    pub fn refused(&mut self, conn: &ConnId, sent_upto: impl Fn(Uuid) -> i64) {
        if let Some(m) = self.conns.get_mut(conn)
            && m.cut.is_none()
        {
            m.cut = Some(m.channels.keys().map(|c| (*c, sent_upto(*c))).collect());
        }
    }

    /// Whether any connection of this node is in the channel.
    pub fn has_members(&self, channel: Uuid) -> bool {
        self.channels.contains_key(&channel)
    }

    /// The channels with a connection of this node in them.
    pub fn channels(&self) -> Vec<Uuid> {
        self.channels.keys().copied().collect()
    }

    /// Entities present in a channel with their connection counts, sorted by entity.
    pub fn present(&self, channel: Uuid) -> Vec<(Uuid, usize)> {
        let mut v: Vec<_> = self
            .channels
            .get(&channel)
            .map(|e| e.iter().map(|(id, c)| (*id, c.len())).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// How many of the entity's connections on this node are in the channel.
    pub fn count(&self, channel: Uuid, entity: Uuid) -> usize {
        self.channels
            .get(&channel)
            .and_then(|e| e.get(&entity))
            .map_or(0, HashSet::len)
    }

    /// Whether anyone on this node is in the channel.
    pub fn occupied(&self, channel: Uuid) -> bool {
        self.channels.contains_key(&channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_presence_counts_connections() {
        let mut p = Connections::default();
        let (a1, a2, b) = (ConnId("a1".into()), ConnId("a2".into()), ConnId("b".into()));
        let (ea, eb, ch) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        p.connect(&a1, ea);
        p.connect(&a2, ea);
        p.connect(&b, eb);
        assert!(p.join(&a1, ch, FEED));
        assert!(!p.join(&a2, ch, FEED), "second tab of the same entity");
        assert!(p.join(&b, ch, FEED));
        assert_eq!(p.present(ch).len(), 2);
        assert!(!p.leave(&a1, ch), "still present through a2");
        let (left, all) = p.disconnect(&a2, |c| if c == ch { 7 } else { 0 });
        assert_eq!(left, vec![ch]);
        assert_eq!(
            all,
            vec![(
                ch,
                StopPoint {
                    offset: 7,
                    lossy: false
                }
            )]
        );
        assert_eq!(p.present(ch), vec![(eb, 1)]);
        assert!(!p.leave(&a2, ch));
    }

    #[test]
    fn channel_names_live_while_someone_is_present() {
        let mut p = Connections::default();
        let (a, ch) = (ConnId("a".into()), Uuid::new_v4());
        p.connect(&a, Uuid::new_v4());
        p.name_channel(ch, "ignored: nobody present");
        assert_eq!(p.channel_name(ch), None);
        p.join(&a, ch, FEED);
        p.name_channel(ch, "room");
        p.name_channel(ch, "other");
        assert_eq!(p.channel_name(ch).as_deref(), Some("room"));
        p.leave(&a, ch);
        assert_eq!(p.channel_name(ch), None);
    }

    const FEED: Feed = Feed {
        sent_after: 0,
        automatic: false,
    };

    #[tokio::test]
    async fn departures_expire() {
        let p = MemoryPresence::new(Duration::from_secs(60));
        let e = Uuid::new_v4();
        let stop = StopPoint {
            offset: 5,
            lossy: false,
        };
        p.depart(e, vec![(Uuid::new_v4(), stop)]).await;
        assert!(p.take_departure(e).await.is_some());
        assert!(p.take_departure(e).await.is_none());
        let p = MemoryPresence::new(Duration::ZERO);
        p.depart(e, vec![(Uuid::new_v4(), stop)]).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(p.take_departure(e).await.is_none());
    }

    #[tokio::test]
    async fn memory_presence_counts_and_forgets() {
        let p = MemoryPresence::new(Duration::from_secs(60));
        let (ch, a, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert!(!p.set(ch, a, 2).await, "one node: never elsewhere");
        p.set(ch, b, 1).await;
        let mut want = vec![(a, 2), (b, 1)];
        want.sort();
        assert_eq!(p.members(ch).await.unwrap(), want);
        p.set(ch, a, 0).await;
        assert_eq!(p.members(ch).await.unwrap(), vec![(b, 1)]);
        p.set(ch, b, 0).await;
        assert!(p.members(ch).await.unwrap().is_empty());
    }

    /// A refused delivery stops the connection's point before it, for every channel, however
    /// far delivery went on; two connections of one entity keep the earlier point.
    #[tokio::test]
    async fn a_refusal_cuts_the_stop_point() {
        let departures = MemoryPresence::new(Duration::from_secs(60));
        let mut p = Connections::default();
        let (slow, fine) = (ConnId("slow".into()), ConnId("fine".into()));
        let (e, ch1, ch2) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        p.connect(&slow, e);
        p.connect(&fine, e);
        p.join(&slow, ch1, FEED);
        p.join(&slow, ch2, FEED);
        p.join(&fine, ch1, FEED);
        // Refused offset 40 of ch1 while ch2 stood at 7.
        p.refused(&slow, |c| if c == ch1 { 39 } else { 7 });
        p.refused(&slow, |_| 45);
        let (_, stops) = p.disconnect(&slow, |_| 90);
        let cut = |offset| StopPoint {
            offset,
            lossy: true,
        };
        let mut expected = vec![(ch1, cut(39)), (ch2, cut(7))];
        expected.sort_by_key(|(c, _)| *c);
        assert_eq!(stops, expected);
        departures.depart(e, stops).await;
        let (_, stops) = p.disconnect(&fine, |_| 90);
        departures.depart(e, stops).await;
        let mut d = departures.take_departure(e).await.unwrap();
        d.channels.sort_by_key(|(c, _)| *c);
        assert_eq!(d.channels, expected);
    }

    #[test]
    fn a_resume_on_the_same_connection_moves_the_feed_back() {
        let mut p = Connections::default();
        let (a, ch) = (ConnId("a".into()), Uuid::new_v4());
        p.connect(&a, Uuid::new_v4());
        p.join(
            &a,
            ch,
            Feed {
                sent_after: 20,
                automatic: true,
            },
        );
        p.confirm(&a, ch, 12);
        assert_eq!(
            p.feed(&a, ch),
            Some(Feed {
                sent_after: 12,
                automatic: false
            })
        );
        p.confirm(&a, ch, 30);
        assert_eq!(p.feed(&a, ch).unwrap().sent_after, 12);
    }
}
