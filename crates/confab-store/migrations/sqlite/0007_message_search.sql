-- Full-text search over message text (`POST /api/messaging/messages/search`): an FTS5 index
-- that holds no copy of the text (external content, keyed by `seq`), kept in step with
-- `central_messages` by triggers, and filled from the messages already stored.
CREATE VIRTUAL TABLE central_messages_fts USING fts5(
    content,
    content = 'central_messages',
    content_rowid = 'seq'
);
CREATE TRIGGER central_messages_fts_insert AFTER INSERT ON central_messages BEGIN
    INSERT INTO central_messages_fts(rowid, content) VALUES (new.seq, new.content);
END;
CREATE TRIGGER central_messages_fts_delete AFTER DELETE ON central_messages BEGIN
    INSERT INTO central_messages_fts(central_messages_fts, rowid, content)
        VALUES ('delete', old.seq, old.content);
END;
CREATE TRIGGER central_messages_fts_update AFTER UPDATE OF content ON central_messages BEGIN
    INSERT INTO central_messages_fts(central_messages_fts, rowid, content)
        VALUES ('delete', old.seq, old.content);
    INSERT INTO central_messages_fts(rowid, content) VALUES (new.seq, new.content);
END;
INSERT INTO central_messages_fts(central_messages_fts) VALUES ('rebuild');
