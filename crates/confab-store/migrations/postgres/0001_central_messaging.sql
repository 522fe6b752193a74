-- ElizaOS 1.7.2's central messaging tables (compat spec §3.7), as in the SQLite schema: times as
-- epoch milliseconds, JSON as text, ids as text, message text as UTF-8 bytes, plus `channels.alias` and
-- `central_messages.seq`. `message_seq` hands out sequence numbers: its row stays locked until
-- the appending transaction commits, so messages commit in `seq` order across every node.

CREATE TABLE message_servers (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source_id   TEXT,
    metadata    TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE message_server_agents (
    message_server_id TEXT NOT NULL REFERENCES message_servers(id) ON DELETE CASCADE,
    agent_id          TEXT NOT NULL,
    PRIMARY KEY (message_server_id, agent_id)
);

CREATE TABLE channels (
    id                TEXT PRIMARY KEY NOT NULL,
    message_server_id TEXT NOT NULL REFERENCES message_servers(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    type              TEXT NOT NULL,
    source_type       TEXT,
    source_id         TEXT,
    topic             TEXT,
    metadata          TEXT,
    alias             TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX channels_by_server ON channels(message_server_id);

CREATE TABLE channel_participants (
    channel_id TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    entity_id  TEXT NOT NULL,
    -- Insertion order (SQLite's rowid), the order participants are listed in.
    position   BIGSERIAL NOT NULL,
    PRIMARY KEY (channel_id, entity_id)
);

CREATE TABLE central_messages (
    seq                         BIGINT PRIMARY KEY,
    id                          TEXT NOT NULL UNIQUE,
    channel_id                  TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    author_id                   TEXT NOT NULL,
    content                     BYTEA NOT NULL, -- UTF-8; text cannot hold NUL
    raw_message                 TEXT,
    in_reply_to_root_message_id TEXT,
    source_type                 TEXT,
    source_id                   TEXT,
    metadata                    TEXT,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL
);
CREATE INDEX central_messages_by_channel ON central_messages(channel_id, seq);
CREATE INDEX central_messages_by_channel_time ON central_messages(channel_id, created_at);

CREATE TABLE message_seq (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO message_seq (id, last) VALUES (1, 0);
