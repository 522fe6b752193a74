//! API keys (`ELIZA_SERVER_AUTH_TOKEN`, `SERVER_API_KEY`), compared in constant time.

use subtle::ConstantTimeEq;

/// The configured keys; any one of them is accepted.
#[derive(Clone, Default)]
pub struct ApiKeys(Vec<Vec<u8>>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} configured)", self.0.len())
    }
}

impl ApiKeys {
    pub fn new<I: IntoIterator<Item = String>>(keys: I) -> Self {
        let mut v: Vec<Vec<u8>> = keys
            .into_iter()
            .filter(|k| !k.is_empty())
            .map(String::into_bytes)
            .collect();
        v.dedup();
        ApiKeys(v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True if `given` equals one of the keys. Every key is compared, each in constant time, so
    /// the time taken says nothing about which key or how much of it matched.
    pub fn matches(&self, given: &str) -> bool {
        let given = given.as_bytes();
        let mut ok = subtle::Choice::from(0u8);
        for key in &self.0 {
            // `ct_eq` on slices of different lengths is false without looking at the bytes.
            ok |= key.as_slice().ct_eq(given);
        }
        bool::from(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let keys = ApiKeys::new(["secret".to_string(), "other".to_string(), String::new()]);
        assert!(keys.matches("secret"));
        assert!(keys.matches("other"));
        assert!(!keys.matches("secre"));
        assert!(!keys.matches("secret "));
        assert!(!keys.matches(""));
        assert!(ApiKeys::new([String::new()]).is_empty());
        assert!(!ApiKeys::default().matches(""));
    }
}
