-- Agents (ElizaOS's `agents` table, reduced to what confab uses: the character is kept whole as
-- JSON, unknown fields included) and sessions (ElizaOS keeps these in memory; confab stores them
-- so they survive a restart).

CREATE TABLE agents (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    character  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY NOT NULL,
    channel_id     TEXT NOT NULL,
    agent_id       TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    timeout_config TEXT NOT NULL,
    renewal_count  BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    last_activity  BIGINT NOT NULL,
    -- When the timeout last started over (creation, renewal, or activity with auto-renew).
    renewed_at     BIGINT NOT NULL
);

-- "Has this agent already answered that message?" (at most one reply per agent per message).
CREATE INDEX central_messages_by_reply ON central_messages(in_reply_to_root_message_id, author_id);
