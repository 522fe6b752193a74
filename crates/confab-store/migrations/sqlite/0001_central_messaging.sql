-- ElizaOS 1.7.2's central messaging tables (compat spec §3.7), with times as epoch milliseconds,
-- JSON as text, and two additions: `channels.alias` (the non-UUID name a channel was first
-- given) and `central_messages.seq` (the order messages were stored in, for replay).

CREATE TABLE message_servers (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source_id   TEXT,
    metadata    TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
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
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX channels_by_server ON channels(message_server_id);

CREATE TABLE channel_participants (
    channel_id TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    entity_id  TEXT NOT NULL,
    PRIMARY KEY (channel_id, entity_id)
);

CREATE TABLE central_messages (
    seq                         INTEGER PRIMARY KEY,
    id                          TEXT NOT NULL UNIQUE,
    channel_id                  TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    author_id                   TEXT NOT NULL,
    content                     TEXT NOT NULL,
    raw_message                 TEXT,
    in_reply_to_root_message_id TEXT,
    source_type                 TEXT,
    source_id                   TEXT,
    metadata                    TEXT,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL
);
CREATE INDEX central_messages_by_channel ON central_messages(channel_id, seq);
CREATE INDEX central_messages_by_channel_time ON central_messages(channel_id, created_at);
