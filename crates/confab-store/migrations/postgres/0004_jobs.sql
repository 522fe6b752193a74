-- Jobs (one prompt, one answer), stored so any node of a cluster can report on them.
CREATE TABLE jobs (
    id         TEXT PRIMARY KEY NOT NULL,
    agent_id   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    prompt     TEXT NOT NULL,
    status     TEXT NOT NULL,
    result     TEXT,
    error      TEXT,
    metadata   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX jobs_by_time ON jobs(created_at);
