-- Full-text search over message text (`POST /api/messaging/messages/search`): a tsvector column
-- kept by a trigger, and a GIN index over it. The `simple` configuration lowercases words and
-- does not stem, as SQLite's FTS5 index does not. `content` is UTF-8 bytes (BYTEA, because text
-- cannot hold NUL); a message that holds a NUL is indexed from its escaped form, so its ASCII
-- words are still found.
ALTER TABLE central_messages ADD COLUMN search tsvector;

CREATE FUNCTION central_messages_search_text(content BYTEA) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN position('\x00'::bytea IN content) = 0
        THEN convert_from(content, 'UTF8') ELSE encode(content, 'escape') END
$$;

CREATE FUNCTION central_messages_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := to_tsvector('simple', central_messages_search_text(NEW.content));
    RETURN NEW;
END
$$;

CREATE TRIGGER central_messages_search BEFORE INSERT OR UPDATE OF content ON central_messages
    FOR EACH ROW EXECUTE FUNCTION central_messages_search_update();

UPDATE central_messages SET search = to_tsvector('simple', central_messages_search_text(content));
CREATE INDEX central_messages_search ON central_messages USING GIN (search);
