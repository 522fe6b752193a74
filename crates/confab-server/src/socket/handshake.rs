//! Who is connecting when no token says so: the entity named in the handshake's
//! `auth.entityId`, or one the server assigns. (A token's `sub` wins: see `guard::admit`.)

use confab_protocol::{parse_uuid, string_to_uuid, texts};
use serde_json::Value;
use uuid::Uuid;

/// The entity behind a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub entity: Uuid,
    /// The client named its entity (so it may be put back into its channels on reconnect).
    pub named: bool,
}

/// Why a handshake is refused; the text reaches the client as `connect_error`'s message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub &'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves the handshake's `auth` object. Strict mode requires a UUID `entityId`, with
/// ElizaOS's refusal text; otherwise a missing id is assigned and a non-UUID string is mapped
/// with `stringToUuid`.
pub fn identify(auth: Option<&Value>, strict: bool) -> Result<Identity, Refused> {
    let given = auth.and_then(|a| a.get("entityId")).and_then(Value::as_str);
    match given {
        Some(s) => match parse_uuid(s) {
            Some(entity) => Ok(Identity {
                entity,
                named: true,
            }),
            None if strict => Err(Refused(texts::AUTH_ENTITY_REQUIRED)),
            None if s.trim().is_empty() => Ok(Identity {
                entity: Uuid::new_v4(),
                named: false,
            }),
            None => Ok(Identity {
                entity: string_to_uuid(s),
                named: true,
            }),
        },
        None if strict => Err(Refused(texts::AUTH_ENTITY_REQUIRED)),
        None => Ok(Identity {
            entity: Uuid::new_v4(),
            named: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identities() {
        let id = Uuid::new_v4();
        let auth = json!({"entityId": id.to_string()});
        assert_eq!(
            identify(Some(&auth), true).unwrap(),
            Identity {
                entity: id,
                named: true
            }
        );
        assert!(!identify(None, false).unwrap().named);
        assert_eq!(
            identify(None, true).unwrap_err().0,
            texts::AUTH_ENTITY_REQUIRED
        );
        let plain = json!({"entityId": "user-123"});
        assert_eq!(
            identify(Some(&plain), false).unwrap().entity,
            string_to_uuid("user-123")
        );
        assert!(identify(Some(&plain), true).is_err());
        assert!(identify(Some(&json!({"entityId": 5})), true).is_err());
    }
}
