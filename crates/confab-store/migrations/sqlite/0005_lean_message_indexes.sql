-- Fewer, cheaper index writes per stored message (measured in BENCHMARKS.md, "storage").
--
-- * `(channel_id, seq)` goes: `(channel_id, created_at)` serves every per-channel query, because
--   an index entry ends with the rowid (= `seq`) and the sequencer never lets `created_at` go
--   backwards in `seq` order, so (created_at, seq) order is seq order.
-- * The reply index only holds replies (agents' answers): user messages have no
--   `in_reply_to_root_message_id`, and indexing their NULLs by random author ids cost a random
--   page write per message.
DROP INDEX central_messages_by_channel;
DROP INDEX central_messages_by_reply;
CREATE INDEX central_messages_by_reply ON central_messages(in_reply_to_root_message_id, author_id)
    WHERE in_reply_to_root_message_id IS NOT NULL;
