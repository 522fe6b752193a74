//! Error and status texts. Where ElizaOS 1.7.2 has a text, it is copied verbatim, because clients
//! match on it (compat spec §1.9, §2).

pub const CONNECTED: &str = "Connected to Eliza Socket.IO server";
pub const AUTH_ENTITY_REQUIRED: &str = "Valid entityId required";
pub const AUTH_INVALID_API_KEY: &str = "Invalid or missing API Key";
pub const AUTH_FAILED: &str = "Authentication failed";

pub const JOIN_CHANNEL_REQUIRED: &str = "channelId is required for joining.";
pub const SEND_FIELDS_REQUIRED: &str = "For SEND_MESSAGE: channelId, messageServerId (message_server_id), senderId (author_id), and message are required.";
pub const ACCESS_DENIED_JOIN: &str =
    "Access denied: You don't have permission to join this channel";
pub const ACK_STATUS: &str = "received_by_server_and_processing";

pub fn server_missing(id: &impl std::fmt::Display) -> String {
    format!("Server {id} does not exist")
}
pub fn channel_create_failed(reason: &impl std::fmt::Display) -> String {
    format!("Failed to create channel: {reason}")
}
pub fn processing_failed(reason: &impl std::fmt::Display) -> String {
    format!("Error processing your message: {reason}")
}
pub fn joined(socket_id: &str, channel: &impl std::fmt::Display) -> String {
    format!("Socket {socket_id} successfully joined channel {channel}.")
}
