//! `confab chat [URL]`: a terminal chat on top of `confab-client`.
//!
//! On a terminal it is a full-screen UI ([`tui`]): the messages with scrollback, an input line
//! with editing and history, this user's channels, a status bar for the connection, and agent
//! replies streaming in place. With `--plain`, or when stdin or stdout is not a terminal, it is
//! line-based ([`plain`]). Both share the session logic ([`session`]) and the state file
//! ([`state`]): this user's identity, channels and input history per server.

mod input;
mod plain;
mod session;
mod state;
mod tui;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

#[derive(Args, Clone)]
pub struct ChatArgs {
    /// The server to talk to.
    #[arg(default_value = "http://localhost:3000")]
    url: String,
    /// Your display name.
    #[arg(long, env = "USER", default_value = "User")]
    name: String,
    /// Open this channel (name or id) instead of a DM with the agent.
    #[arg(long)]
    channel: Option<String>,
    /// The agent to open a DM with (name or id); default: Eliza, or the first agent.
    #[arg(long)]
    agent: Option<String>,
    /// The server's API key (`ELIZA_SERVER_AUTH_TOKEN` on the server), when it requires one.
    #[arg(long, env = "CONFAB_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Also trust the certificates in this PEM file for https:// (a private CA or a
    /// self-signed server); the system's root certificates are always trusted.
    #[arg(long, env = "CONFAB_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Line mode instead of the full-screen UI (also when stdin or stdout is not a terminal).
    #[arg(long)]
    plain: bool,
    /// Where this user's identity, channels and input history are kept (per server).
    /// Default: `$XDG_STATE_HOME/confab/chat.json` or `~/.local/state/confab/chat.json`.
    #[arg(long, env = "CONFAB_CHAT_STATE")]
    state: Option<PathBuf>,
}

pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let terminal = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if args.plain || !terminal {
        plain::run(args).await
    } else {
        tui::run(args).await
    }
}
