-- Order per channel (issue 15): each channel counts its own messages, so appends to different
-- channels never wait for each other. Until now every append in the cluster locked the one row
-- of `message_seq`. Now an append locks only its channels' rows: `channels.last_offset` is the
-- offset of a channel's last message, `channels.epoch` changes when its history is cleared (and
-- a channel created again under a deleted one's id starts a new epoch), `channels.last_created_at`
-- is its last message's commit time: a new message is stamped no earlier, so creation times
-- never go backwards within a channel. `central_messages.channel_offset` is a message's place in
-- its channel (commit order, the order every member sees) and `epoch` its channel's epoch.
-- `seq` stays the row id, from a sequence (no lock); taken under the channel's lock, it still
-- grows with the offset within a channel.
--
-- Existing history keeps its order: offsets are numbered per channel in `seq` order (the commit
-- order until now), and a creation time stamped before an earlier-committed one's (the inversions
-- nodes could store, each stamping before the global lock) is raised to it.
ALTER TABLE channels
    ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_offset BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_created_at BIGINT NOT NULL DEFAULT 0;
UPDATE channels SET epoch = created_at;

ALTER TABLE central_messages
    ADD COLUMN channel_offset BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
UPDATE central_messages AS m SET channel_offset = ordered.n, created_at = ordered.t,
    epoch = c.epoch
FROM (
    SELECT seq, ROW_NUMBER() OVER w AS n, MAX(created_at) OVER w AS t
    FROM central_messages
    WINDOW w AS (PARTITION BY channel_id ORDER BY seq)
) AS ordered, channels AS c
WHERE m.seq = ordered.seq AND c.id = m.channel_id;

UPDATE channels AS c SET last_offset = per.last_offset, last_created_at = per.last_created_at
FROM (
    SELECT channel_id, MAX(channel_offset) AS last_offset, MAX(created_at) AS last_created_at
    FROM central_messages GROUP BY channel_id
) AS per
WHERE c.id = per.channel_id;

CREATE UNIQUE INDEX central_messages_by_channel_offset
    ON central_messages(channel_id, channel_offset);

CREATE SEQUENCE central_messages_seq OWNED BY central_messages.seq;
SELECT setval('central_messages_seq',
    GREATEST((SELECT last FROM message_seq WHERE id = 1),
             (SELECT COALESCE(MAX(seq), 0) FROM central_messages), 1),
    GREATEST((SELECT last FROM message_seq WHERE id = 1),
             (SELECT COALESCE(MAX(seq), 0) FROM central_messages)) > 0);
ALTER TABLE central_messages ALTER COLUMN seq SET DEFAULT nextval('central_messages_seq');
DROP TABLE message_seq;

-- The storage breaker's recovery probe: a real write that locks nothing appends need.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at BIGINT NOT NULL
);
INSERT INTO store_probe (id, at) VALUES (1, 0);
