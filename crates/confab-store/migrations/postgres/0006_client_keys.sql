-- Exactly-once publish: a message's client id (`messageId` / `clientMessageId` on sockets, the
-- REST `messageId`) is an idempotency key scoped to its author. The unique index is what makes a
-- resend a repeat on every node and across restarts; rows stored before this migration, and
-- messages sent without an id, have no key. Keys older than the retention window are set back
-- to NULL by a periodic sweep (found through the second index, which grows at its end), so the
-- unique index holds only the window's keys.
ALTER TABLE central_messages ADD COLUMN client_key TEXT;
CREATE UNIQUE INDEX central_messages_by_client_key ON central_messages(author_id, client_key)
    WHERE client_key IS NOT NULL;
CREATE INDEX central_messages_client_key_age ON central_messages(created_at)
    WHERE client_key IS NOT NULL;
