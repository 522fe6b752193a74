//! The chat's state file: per server, this user's entity id (so the same person comes back to
//! the same DMs), the channels opened, and the input history. JSON, written atomically.
//!
//! confab (like ElizaOS 1.7.2) has no route that lists the channels one user belongs to, so
//! the channel list is what this user opened from this machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Input lines kept per server.
const HISTORY: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedChannel {
    pub id: Uuid,
    /// `DM with Eliza`, `#general`.
    pub label: String,
    /// The agent of a DM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Uuid>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerState {
    pub entity_id: Option<Uuid>,
    #[serde(default)]
    pub channels: Vec<SavedChannel>,
    #[serde(default)]
    pub history: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    servers: BTreeMap<String, ServerState>,
}

/// One server's part of the state file, saved on every change.
pub struct Store {
    path: Option<PathBuf>,
    key: String,
    pub server: ServerState,
}

pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))?;
    Some(base.join("confab").join("chat.json"))
}

impl Store {
    /// Loads the server's state (a missing or unreadable file starts empty).
    pub fn load(path: Option<PathBuf>, server_url: &str) -> Store {
        let key = server_url.trim_end_matches('/').to_owned();
        let server = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<File>(&b).ok())
            .and_then(|mut f| f.servers.remove(&key))
            .unwrap_or_default();
        Store { path, key, server }
    }

    /// This user's entity id on the server, created on first use.
    pub fn entity_id(&mut self) -> Uuid {
        match self.server.entity_id {
            Some(id) => id,
            None => {
                let id = Uuid::new_v4();
                self.server.entity_id = Some(id);
                self.save();
                id
            }
        }
    }

    /// Adds (or moves to the end) a channel of the list.
    pub fn remember(&mut self, channel: SavedChannel) {
        self.server.channels.retain(|c| c.id != channel.id);
        self.server.channels.push(channel);
        self.save();
    }

    pub fn forget(&mut self, id: Uuid) {
        self.server.channels.retain(|c| c.id != id);
        self.save();
    }

    pub fn push_history(&mut self, line: &str) {
        if self.server.history.last().map(String::as_str) != Some(line) {
            self.server.history.push(line.to_owned());
            let n = self.server.history.len();
            if n > HISTORY {
                self.server.history.drain(..n - HISTORY);
            }
            self.save();
        }
    }

    /// Writes the file (other servers' parts kept); errors are ignored: the chat works without.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let mut file = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<File>(&b).ok())
            .unwrap_or_default();
        file.servers.insert(self.key.clone(), self.server.clone());
        let Ok(json) = serde_json::to_vec_pretty(&file) else {
            return;
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_server_state_survives_a_reload() {
        let path = std::env::temp_dir().join(format!("confab-chat-state-{}.json", Uuid::new_v4()));
        let mut a = Store::load(Some(path.clone()), "http://a:1/");
        let id = a.entity_id();
        let ch = SavedChannel {
            id: Uuid::new_v4(),
            label: "#x".into(),
            agent: None,
        };
        a.remember(ch.clone());
        a.remember(ch.clone());
        a.push_history("hi");
        a.push_history("hi");
        let mut b = Store::load(Some(path.clone()), "http://b:2");
        assert_ne!(b.entity_id(), id);
        let mut a2 = Store::load(Some(path.clone()), "http://a:1");
        assert_eq!(a2.entity_id(), id);
        assert_eq!(a2.server.channels, vec![ch.clone()]);
        assert_eq!(a2.server.history, vec!["hi".to_owned()]);
        a2.forget(ch.id);
        assert!(
            Store::load(Some(path.clone()), "http://a:1")
                .server
                .channels
                .is_empty()
        );
        std::fs::remove_file(path).unwrap();
    }
}
