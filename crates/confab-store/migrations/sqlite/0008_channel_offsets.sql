-- Order per channel (issue 15): each channel counts its own messages. `channels.last_offset` is
-- the offset of its last message, `channels.epoch` changes when its history is cleared (and a
-- channel created again under a deleted one's id starts a new epoch), `channels.last_created_at`
-- is its last message's commit time: a new message is stamped no earlier, so creation times
-- never go backwards within a channel. `central_messages.channel_offset` is a message's place
-- in its channel (commit order, the order every member sees) and `epoch` its channel's epoch.
--
-- Existing history keeps its order: offsets are numbered per channel in `seq` order (the commit
-- order until now), and a creation time stamped before an earlier-committed one's (the inversions
-- a cluster could store) is raised to it.
ALTER TABLE channels ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN last_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN last_created_at INTEGER NOT NULL DEFAULT 0;
UPDATE channels SET epoch = created_at;

ALTER TABLE central_messages ADD COLUMN channel_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE central_messages ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
UPDATE central_messages SET channel_offset = ordered.n, created_at = ordered.t,
    epoch = (SELECT epoch FROM channels WHERE channels.id = central_messages.channel_id)
FROM (
    SELECT seq, ROW_NUMBER() OVER w AS n, MAX(created_at) OVER w AS t
    FROM central_messages
    WINDOW w AS (PARTITION BY channel_id ORDER BY seq)
) AS ordered
WHERE central_messages.seq = ordered.seq;

UPDATE channels SET
    last_offset = COALESCE((SELECT MAX(channel_offset) FROM central_messages
        WHERE central_messages.channel_id = channels.id), 0),
    last_created_at = COALESCE((SELECT MAX(created_at) FROM central_messages
        WHERE central_messages.channel_id = channels.id), 0);

CREATE UNIQUE INDEX central_messages_by_channel_offset
    ON central_messages(channel_id, channel_offset);
