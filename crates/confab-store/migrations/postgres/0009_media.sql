-- Uploaded and generated media, when confab runs on PostgreSQL: every node of a cluster serves
-- every file. `kind` is the URL family (`channel`: /media/uploads/channels, `agent`:
-- /media/uploads/agents, `generated`: /media/generated), `owner_id` the channel or agent id.
-- Deleting a channel, a message or a server removes its rows (confab-server's media cleanup).

CREATE TABLE media_files (
    kind TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    data BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, owner_id, filename)
);
