//! Characters: ElizaOS's character JSON, read as far as confab needs it and kept whole.

use std::path::{Path, PathBuf};

use confab_protocol::ids::string_to_uuid;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The name of the agent that starts when none is configured.
pub const DEFAULT_AGENT_NAME: &str = "Eliza";

/// A character as ElizaOS writes it. Fields confab does not use are kept in `rest` and written
/// back unchanged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Character {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// A string or a list of lines.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub bio: Value,
    /// Conversations: lists of `{name, content: {text}}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_examples: Vec<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub settings: Map<String, Value>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum CharacterError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a character: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("a character needs a non-empty name")]
    NoName,
}

impl Character {
    /// The default agent: ELIZA, the 1966 psychotherapist.
    pub fn default_eliza() -> Character {
        Character {
            id: None,
            name: DEFAULT_AGENT_NAME.into(),
            username: Some("eliza".into()),
            system: Some(
                "You are ELIZA, a Rogerian psychotherapist. Reflect the user's statements back \
                 as questions, briefly and kindly."
                    .into(),
            ),
            bio: Value::Array(vec![
                Value::from("A Rogerian psychotherapist, after Joseph Weizenbaum's 1966 program."),
                Value::from("Answers offline with the original DOCTOR script."),
            ]),
            message_examples: Vec::new(),
            settings: Map::new(),
            rest: Map::new(),
        }
    }

    /// Parses a character from JSON, checking it has a name.
    pub fn from_value(v: Value) -> Result<Character, serde_json::Error> {
        serde_json::from_value(v)
    }

    pub fn load(path: &Path) -> Result<Character, CharacterError> {
        let text = std::fs::read_to_string(path).map_err(|source| CharacterError::Read {
            path: path.to_owned(),
            source,
        })?;
        let c: Character = serde_json::from_str(&text).map_err(|source| CharacterError::Parse {
            path: path.to_owned(),
            source,
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Every `*.json` in a directory, sorted by file name; a missing directory is empty.
    pub fn load_dir(dir: &Path) -> Result<Vec<Character>, CharacterError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(CharacterError::Read {
                    path: dir.to_owned(),
                    source,
                });
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Character::load(p)).collect()
    }

    pub fn validate(&self) -> Result<(), CharacterError> {
        if self.name.trim().is_empty() {
            return Err(CharacterError::NoName);
        }
        Ok(())
    }

    /// The agent id: the character's own, else `stringToUuid(name)` as ElizaOS derives it.
    pub fn agent_id(&self) -> Uuid {
        self.id.unwrap_or_else(|| string_to_uuid(&self.name))
    }

    /// The bio as lines.
    pub fn bio_lines(&self) -> Vec<String> {
        match &self.bio {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A setting, looked up in `settings`, then `settings.secrets`.
    pub fn setting(&self, key: &str) -> Option<String> {
        let plain = self.settings.get(key);
        let secret = self
            .settings
            .get("secrets")
            .and_then(|s| s.get(key))
            .filter(|_| plain.is_none());
        match plain.or(secret)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The names the agent answers to in a group channel: its name and `@username`.
    pub fn handles(&self) -> Vec<String> {
        let mut out = vec![self.name.to_lowercase()];
        if let Some(u) = &self.username {
            let u = u.trim_start_matches('@').to_lowercase();
            if !u.is_empty() && !out.contains(&u) {
                out.push(u);
            }
        }
        out
    }

    /// Applies a partial character (PATCH): top-level keys replace, `settings` merges.
    pub fn patched(&self, patch: &Map<String, Value>) -> Result<Character, serde_json::Error> {
        let mut whole = match serde_json::to_value(self)? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for (k, v) in patch {
            match (k.as_str(), whole.get_mut(k)) {
                ("settings", Some(Value::Object(existing))) if v.is_object() => {
                    for (sk, sv) in v.as_object().into_iter().flatten() {
                        existing.insert(sk.clone(), sv.clone());
                    }
                }
                _ => {
                    whole.insert(k.clone(), v.clone());
                }
            }
        }
        // The id never changes through a patch.
        match self.id {
            Some(id) => whole.insert("id".into(), Value::from(id.to_string())),
            None => whole.remove("id"),
        };
        serde_json::from_value(Value::Object(whole))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_eliza_has_the_id_seed_001_hard_codes() {
        assert_eq!(
            Character::default_eliza().agent_id().to_string(),
            "b850bc30-45f8-0041-a00a-83df46d8555d"
        );
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let v = json!({
            "name": "Ada", "bio": "Counts.", "plugins": ["@elizaos/plugin-sql"],
            "style": {"all": ["terse"]}, "settings": {"secrets": {"OPENAI_API_KEY": "k"}}
        });
        let c = Character::from_value(v.clone()).unwrap();
        assert_eq!(c.bio_lines(), vec!["Counts."]);
        assert_eq!(c.setting("OPENAI_API_KEY").as_deref(), Some("k"));
        assert_eq!(serde_json::to_value(&c).unwrap(), v);
    }

    #[test]
    fn patch_merges_settings_and_keeps_id() {
        let id = Uuid::new_v4();
        let c = Character::from_value(
            json!({"id": id, "name": "Ada", "settings": {"a": 1, "b": 2}}),
        )
        .unwrap();
        let p = c
            .patched(
                json!({"id": Uuid::nil(), "bio": ["new"], "settings": {"b": 3}})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(p.id, Some(id));
        assert_eq!(p.settings["a"], json!(1));
        assert_eq!(p.settings["b"], json!(3));
        assert_eq!(p.bio_lines(), vec!["new"]);
    }

    #[test]
    fn handles_are_name_and_username() {
        let c = Character::from_value(json!({"name": "Ada Bot", "username": "@ada"})).unwrap();
        assert_eq!(c.handles(), vec!["ada bot", "ada"]);
    }
}
