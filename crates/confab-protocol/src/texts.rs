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

// Identity and access (docs/security.md). Only the API-key text comes from ElizaOS.
pub const AUTH_TOKEN_REQUIRED: &str =
    "Authentication required: send a token (auth.token, ?token= or Authorization: Bearer)";
pub const AUTH_IMPERSONATION: &str = "senderId does not match the authenticated entity";
pub const TOKEN_INVALID: &str = "Invalid token";
pub const TOKEN_EXPIRED: &str = "Token expired";
pub const TOKEN_NOT_YET_VALID: &str = "Token not yet valid";
pub const TOKEN_BAD_SIGNATURE: &str = "Invalid token: bad signature";
pub const TOKEN_WRONG_ISSUER: &str = "Invalid token: wrong issuer";
pub const TOKEN_WRONG_AUDIENCE: &str = "Invalid token: wrong audience";
pub const TOKEN_MISSING_CLAIM: &str = "Invalid token: missing exp or sub claim";
pub const TOKEN_ALGORITHM: &str = "Invalid token: algorithm not accepted";
pub const TOKEN_UNKNOWN_KEY: &str = "Invalid token: unknown key";
pub const TOKEN_BAD_CHANNELS: &str = "Invalid token: channels must be a list";
pub const TOKEN_NOT_ACCEPTED: &str = "Invalid token: this server does not accept tokens";
/// The `reason` of `unauthorized` when a connection's token runs out.
pub const TOKEN_EXPIRED_REASON: &str = "token_expired";
pub const ACCESS_DENIED_SEND: &str =
    "Access denied: You don't have permission to send to this channel";
pub const ACCESS_DENIED_READ: &str =
    "Access denied: You don't have permission to access this channel";
pub const ACCESS_OPERATOR_ONLY: &str =
    "Access denied: this needs operator credentials (an admin token or the operator key)";
pub const ACCESS_NOT_OWNER: &str = "Access denied: this belongs to another entity";
pub const LOGS_NOT_AUTHORISED: &str =
    "Not authorised to stream logs: connect with an admin token or the operator key";
pub const QUEUE_FULL: &str =
    "Too many events waiting to be processed on this connection; slow down.";
