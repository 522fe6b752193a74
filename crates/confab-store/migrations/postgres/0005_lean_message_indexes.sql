-- The reply index only holds replies (agents' answers): user messages have no
-- `in_reply_to_root_message_id`, and indexing their NULLs by random author ids cost a random
-- page write per message.
DROP INDEX central_messages_by_reply;
CREATE INDEX central_messages_by_reply ON central_messages(in_reply_to_root_message_id, author_id)
    WHERE in_reply_to_root_message_id IS NOT NULL;
