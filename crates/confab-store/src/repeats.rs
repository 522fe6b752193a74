//! Exactly-once publish, the part both backends share: which messages of a batch repeat a
//! message already stored (or an earlier one of the same batch), decided before anything is
//! inserted, so a repeat never fails the batch and channel offsets stay without gaps.

use std::collections::HashMap;

use crate::{Appended, NewMessage, Position, StoredMessage};

/// The (author, key) pairs of a batch to look up, each once.
/// Appends `((author_id = ? AND client_key = ?) OR …)` for a chunk of [`keys`]: the lookup of
/// stored repeats, the same SQL on both backends.
pub(crate) fn push_key_filter<'a, DB>(q: &mut sqlx::QueryBuilder<DB>, chunk: &[(&'a str, &'a str)])
where
    DB: sqlx::Database,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push("(");
    for (i, (author, key)) in chunk.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push("(author_id = ")
            .push_bind(*author)
            .push(" AND client_key = ")
            .push_bind(*key)
            .push(")");
    }
    q.push(")");
}

pub(crate) fn keys(batch: &[NewMessage]) -> Vec<(&str, &str)> {
    let mut seen = std::collections::HashSet::new();
    batch
        .iter()
        .filter_map(|m| Some((m.author_id.as_str(), m.client_key.as_deref()?)))
        .filter(|k| seen.insert(*k))
        .collect()
}

/// How a batch is committed: the messages to insert (in batch order) and, for every message
/// of the batch, what it becomes.
pub(crate) struct Plan {
    /// Indexes into the batch of the messages to insert.
    pub fresh: Vec<usize>,
    slots: Vec<Slot>,
}

enum Slot {
    /// The n-th fresh message.
    Fresh(usize),
    /// A message stored before this batch.
    Stored(Box<StoredMessage>),
}

/// `existing` holds the stored messages found for the batch's keys, with their keys.
pub(crate) fn plan(batch: &[NewMessage], existing: Vec<(StoredMessage, String)>) -> Plan {
    let stored: HashMap<(String, String), StoredMessage> = existing
        .into_iter()
        .map(|(m, key)| ((m.author_id.clone(), key), m))
        .collect();
    let mut first_in_batch: HashMap<(&str, &str), usize> = HashMap::new();
    let mut fresh = Vec::new();
    let mut slots = Vec::with_capacity(batch.len());
    for (i, m) in batch.iter().enumerate() {
        let slot = match m.client_key.as_deref() {
            None => None,
            Some(key) => {
                if let Some(original) = stored.get(&(m.author_id.clone(), key.to_owned())) {
                    Some(Slot::Stored(Box::new(original.clone())))
                } else {
                    // A later copy of a message of this batch repeats it.
                    first_in_batch
                        .get(&(m.author_id.as_str(), key))
                        .map(|&n| Slot::Fresh(n))
                }
            }
        };
        slots.push(slot.unwrap_or_else(|| {
            let n = fresh.len();
            if let Some(key) = m.client_key.as_deref() {
                first_in_batch.insert((m.author_id.as_str(), key), n);
            }
            fresh.push(i);
            Slot::Fresh(n)
        }));
    }
    Plan { fresh, slots }
}

impl Plan {
    /// The messages to insert, in batch order.
    pub(crate) fn fresh<'a>(&self, batch: &'a [NewMessage]) -> Vec<&'a NewMessage> {
        self.fresh.iter().map(|&i| &batch[i]).collect()
    }

    /// The outcome of every message of the batch, once the fresh ones got their `positions`.
    pub(crate) fn outcomes(self, batch: &[NewMessage], positions: &[Position]) -> Vec<Appended> {
        let mut first_use = vec![true; self.fresh.len()];
        self.slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Fresh(n) if std::mem::take(&mut first_use[n]) => Appended::New(positions[n]),
                Slot::Fresh(n) => Appended::Repeat(Box::new(StoredMessage::from_new(
                    batch[self.fresh[n]].clone(),
                    positions[n],
                ))),
                Slot::Stored(m) => Appended::Repeat(m),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn msg(author: &str, key: Option<&str>) -> NewMessage {
        NewMessage {
            id: Uuid::now_v7(),
            author_id: author.into(),
            client_key: key.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn copies_in_one_batch_and_stored_originals_are_repeats() {
        let batch = vec![
            msg("a", Some("1")),
            msg("a", None),
            msg("b", Some("1")),
            msg("a", Some("1")),
            msg("a", None),
            msg("a", Some("old")),
        ];
        assert_eq!(keys(&batch), vec![("a", "1"), ("b", "1"), ("a", "old")]);
        let at = |seq: i64| Position {
            seq,
            offset: seq - 9,
            epoch: 1,
            created_at: 5,
        };
        let old = StoredMessage::from_new(msg("a", Some("old")), at(3));
        let plan = plan(&batch, vec![(old.clone(), "old".into())]);
        assert_eq!(plan.fresh, vec![0, 1, 2, 4]);
        let out = plan.outcomes(&batch, &[at(10), at(11), at(12), at(13)]);
        assert_eq!(out[0], Appended::New(at(10)));
        assert_eq!(out[1], Appended::New(at(11)));
        assert_eq!(out[2], Appended::New(at(12)));
        match &out[3] {
            Appended::Repeat(m) => assert_eq!((m.id, m.seq, m.offset), (batch[0].id, 10, 1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(out[4], Appended::New(at(13)));
        assert_eq!(out[5], Appended::Repeat(Box::new(old)));
    }
}
