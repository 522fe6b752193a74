//! Per-channel order, the part both backends share: given each channel's sequence state (read
//! under the append's lock), the position of every message of a batch and the channels' new
//! states. Each channel counts its own offsets, so appends to different channels never wait
//! for each other; within a channel the commit time never goes backwards.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::sql::ChannelSeqRow;
use crate::{NewMessage, Position, StoreError, StoreResult};

/// The positions of the messages to insert, and what each touched channel's row becomes.
pub(crate) struct Assigned {
    /// One per message, in batch order.
    pub positions: Vec<Position>,
    /// Sorted by channel id.
    pub channels: Vec<(Uuid, ChannelSeqRow)>,
}

/// The distinct channels of a batch, sorted (the order appends lock them in, so two appends
/// that share channels cannot deadlock).
pub(crate) fn channels_of<'a>(batch: impl IntoIterator<Item = &'a NewMessage>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = batch.into_iter().map(|m| m.channel_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Assigns offsets and commit times in batch order: `seq(i)` is the row id of the i-th
/// message, `states` each channel's state before this batch. A channel without a state (it
/// does not exist, or not any more) fails the batch.
pub(crate) fn assign(
    fresh: &[&NewMessage],
    seq: impl Fn(usize) -> i64,
    states: impl IntoIterator<Item = (Uuid, ChannelSeqRow)>,
) -> StoreResult<Assigned> {
    let mut states: BTreeMap<Uuid, ChannelSeqRow> = states.into_iter().collect();
    let mut positions = Vec::with_capacity(fresh.len());
    for (i, m) in fresh.iter().enumerate() {
        let state = states
            .get_mut(&m.channel_id)
            .ok_or(StoreError::NotFound("channel"))?;
        state.last_offset += 1;
        state.last_created_at = state.last_created_at.max(m.created_at);
        positions.push(Position {
            seq: seq(i),
            offset: state.last_offset,
            epoch: state.epoch,
            created_at: state.last_created_at,
        });
    }
    let touched = channels_of(fresh.iter().copied());
    let channels = touched
        .into_iter()
        .filter_map(|id| states.get(&id).map(|s| (id, *s)))
        .collect();
    Ok(Assigned {
        positions,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(channel: Uuid, created_at: i64) -> NewMessage {
        NewMessage {
            id: Uuid::now_v7(),
            channel_id: channel,
            created_at,
            ..Default::default()
        }
    }

    #[test]
    fn offsets_count_per_channel_and_time_never_goes_back() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let batch = [msg(a, 100), msg(b, 100), msg(a, 90), msg(a, 120)];
        let fresh: Vec<&NewMessage> = batch.iter().collect();
        let state = |last_offset, last_created_at| ChannelSeqRow {
            epoch: 7,
            last_offset,
            last_created_at,
        };
        let out = assign(
            &fresh,
            |i| 50 + i as i64,
            [(a, state(3, 110)), (b, state(0, 0))],
        )
        .unwrap();
        let got: Vec<(i64, i64, i64)> = out
            .positions
            .iter()
            .map(|p| (p.seq, p.offset, p.created_at))
            .collect();
        assert_eq!(
            got,
            vec![(50, 4, 110), (51, 1, 100), (52, 5, 110), (53, 6, 120)]
        );
        assert_eq!(out.channels, vec![(a, state(6, 120)), (b, state(1, 100))]);
        assert!(out.positions.iter().all(|p| p.epoch == 7));
    }

    #[test]
    fn a_missing_channel_fails_the_batch() {
        let batch = [msg(Uuid::from_u128(9), 1)];
        let fresh: Vec<&NewMessage> = batch.iter().collect();
        assert!(matches!(
            assign(&fresh, |_| 1, []),
            Err(StoreError::NotFound("channel"))
        ));
    }
}
