-- Private channels (confab extension): only participants may join, post, read history, list
-- participants or see presence. Deleting the channel forgets it.

CREATE TABLE private_channels (
    channel_id TEXT PRIMARY KEY NOT NULL REFERENCES channels(id) ON DELETE CASCADE
);
