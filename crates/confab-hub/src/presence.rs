//! Who is connected where: channel → entity → connections, and connection → its channels.
//! An entity is "present" in a channel while at least one of its connections is joined.
//! Departed entities are remembered for a grace period so a reconnect can be put back.
//!
//! Each connection also keeps, per channel, its [`Feed`]: the point after which every message
//! of the channel has been handed to it, and, once a delivery to it was refused (its outgoing
//! queue was full), the point before that first refusal. That is what a resume on the same
//! connection skips, and where the automatic rejoin of its successor starts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::fanout::ConnId;

#[derive(Default)]
pub struct Presence {
    channels: HashMap<Uuid, HashMap<Uuid, HashSet<ConnId>>>,
    conns: HashMap<ConnId, Membership>,
    departed: HashMap<Uuid, Departure>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopPoint {
    /// The offset in this channel of the last message handed to the connection.
    pub offset: i64,
    /// Deliveries to it were refused before it left (a slow consumer).
    pub lossy: bool,
}

/// What a disconnected entity was in, and where each of its channels stopped.
#[derive(Debug, Clone)]
pub struct Departure {
    pub channels: Vec<(Uuid, StopPoint)>,
    at: Instant,
}

impl Presence {
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

    /// Remembers where a departed connection of the entity stopped; for a channel two of its
    /// connections were in, the earlier point (and lossy if either was).
    pub fn remember_departure(&mut self, entity: Uuid, channels: Vec<(Uuid, StopPoint)>) {
        if channels.is_empty() {
            return;
        }
        let entry = self.departed.entry(entity).or_insert(Departure {
            channels: Vec::new(),
            at: Instant::now(),
        });
        for (c, stop) in channels {
            match entry.channels.iter_mut().find(|(id, _)| *id == c) {
                Some((_, known)) => {
                    known.offset = known.offset.min(stop.offset);
                    known.lossy |= stop.lossy;
                }
                None => entry.channels.push((c, stop)),
            }
        }
        entry.at = Instant::now();
    }

    /// Takes the departure record of a reconnecting entity, if it is recent enough. Expired
    /// records are swept on the way.
    pub fn take_departure(&mut self, entity: Uuid, grace: Duration) -> Option<Departure> {
        self.departed.retain(|_, d| d.at.elapsed() <= grace);
        self.departed.remove(&entity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_presence_counts_connections() {
        let mut p = Presence::default();
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
        let mut p = Presence::default();
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

    #[test]
    fn departures_expire() {
        let mut p = Presence::default();
        let e = Uuid::new_v4();
        let stop = StopPoint {
            offset: 5,
            lossy: false,
        };
        p.remember_departure(e, vec![(Uuid::new_v4(), stop)]);
        assert!(p.take_departure(e, Duration::from_secs(60)).is_some());
        assert!(p.take_departure(e, Duration::from_secs(60)).is_none());
        p.remember_departure(e, vec![(Uuid::new_v4(), stop)]);
        assert!(p.take_departure(e, Duration::ZERO).is_none());
    }

    /// A refused delivery stops the connection's point, in each of its channels, where that
    /// channel stood at the first refusal, however far delivery went on; two connections of one
    /// entity keep the earlier point.
    #[test]
    fn a_refusal_cuts_the_stop_point() {
        let mut p = Presence::default();
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
        p.remember_departure(e, stops);
        let (_, stops) = p.disconnect(&fine, |_| 90);
        p.remember_departure(e, stops);
        let mut d = p.take_departure(e, Duration::from_secs(60)).unwrap();
        d.channels.sort_by_key(|(c, _)| *c);
        assert_eq!(d.channels, expected);
    }

    #[test]
    fn a_resume_on_the_same_connection_moves_the_feed_back() {
        let mut p = Presence::default();
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
