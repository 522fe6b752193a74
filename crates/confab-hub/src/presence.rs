//! Who is connected where: channel → entity → connections, and connection → its channels.
//! An entity is "present" in a channel while at least one of its connections is joined.
//! Departed entities are remembered for a grace period so a reconnect can be put back.

use std::collections::{BTreeSet, HashMap, HashSet};
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
    channels: BTreeSet<Uuid>,
}

/// What a disconnected entity was in, and up to which sequence number it had been sent.
#[derive(Debug, Clone)]
pub struct Departure {
    pub channels: Vec<Uuid>,
    pub last_seq: i64,
    at: Instant,
}

impl Presence {
    pub fn connect(&mut self, conn: &ConnId, entity: Uuid) {
        self.conns.insert(
            conn.clone(),
            Membership {
                entity,
                channels: BTreeSet::new(),
            },
        );
    }

    /// Records the join; true if the entity was not present in the channel before.
    pub fn join(&mut self, conn: &ConnId, channel: Uuid) -> bool {
        let Some(m) = self.conns.get_mut(conn) else {
            return false;
        };
        m.channels.insert(channel);
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
        if !m.channels.remove(&channel) {
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
    /// every channel the connection was in.
    pub fn disconnect(&mut self, conn: &ConnId) -> (Vec<Uuid>, Vec<Uuid>) {
        let Some(m) = self.conns.get(conn) else {
            return (Vec::new(), Vec::new());
        };
        let all: Vec<Uuid> = m.channels.iter().copied().collect();
        let left = all
            .iter()
            .copied()
            .filter(|c| self.leave(conn, *c))
            .collect();
        self.conns.remove(conn);
        (left, all)
    }

    pub fn is_member(&self, conn: &ConnId, channel: Uuid) -> bool {
        self.conns
            .get(conn)
            .is_some_and(|m| m.channels.contains(&channel))
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

    pub fn remember_departure(&mut self, entity: Uuid, channels: Vec<Uuid>, last_seq: i64) {
        if channels.is_empty() {
            return;
        }
        let entry = self.departed.entry(entity).or_insert(Departure {
            channels: Vec::new(),
            last_seq,
            at: Instant::now(),
        });
        for c in channels {
            if !entry.channels.contains(&c) {
                entry.channels.push(c);
            }
        }
        entry.last_seq = entry.last_seq.min(last_seq);
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
        assert!(p.join(&a1, ch));
        assert!(!p.join(&a2, ch), "second tab of the same entity");
        assert!(p.join(&b, ch));
        assert_eq!(p.present(ch).len(), 2);
        assert!(!p.leave(&a1, ch), "still present through a2");
        let (left, all) = p.disconnect(&a2);
        assert_eq!(left, vec![ch]);
        assert_eq!(all, vec![ch]);
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
        p.join(&a, ch);
        p.name_channel(ch, "room");
        p.name_channel(ch, "other");
        assert_eq!(p.channel_name(ch).as_deref(), Some("room"));
        p.leave(&a, ch);
        assert_eq!(p.channel_name(ch), None);
    }

    #[test]
    fn departures_expire() {
        let mut p = Presence::default();
        let e = Uuid::new_v4();
        p.remember_departure(e, vec![Uuid::new_v4()], 5);
        assert!(p.take_departure(e, Duration::from_secs(60)).is_some());
        assert!(p.take_departure(e, Duration::from_secs(60)).is_none());
        p.remember_departure(e, vec![Uuid::new_v4()], 5);
        assert!(p.take_departure(e, Duration::ZERO).is_none());
    }
}
