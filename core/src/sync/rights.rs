//! What a connection may do: read or write, on which documents, until when.

/// The right a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Right {
    Read,
    Write,
}

/// Access of one connection. A scope is an exact document id, or a prefix ending in `*`
/// (`"team-a/*"`); `"*"` means every document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rights {
    pub scopes: Vec<String>,
    pub right: Right,
    /// Unix seconds after which nothing is allowed.
    pub expires_at: Option<u64>,
}

impl Rights {
    /// Everything, forever (a server without an auth secret).
    pub fn open() -> Rights {
        Rights {
            scopes: vec!["*".into()],
            right: Right::Write,
            expires_at: None,
        }
    }

    pub fn covers(&self, doc_id: &str) -> bool {
        self.scopes
            .iter()
            .any(|scope| match scope.strip_suffix('*') {
                Some(prefix) => doc_id.starts_with(prefix),
                None => scope == doc_id,
            })
    }

    pub fn can_read(&self, doc_id: &str) -> bool {
        self.covers(doc_id)
    }

    pub fn can_write(&self, doc_id: &str) -> bool {
        self.right == Right::Write && self.covers(doc_id)
    }

    pub fn expired(&self, now_secs: u64) -> bool {
        self.expires_at.is_some_and(|exp| now_secs >= exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_match_ids_and_prefixes() {
        let r = Rights {
            scopes: vec!["a".into(), "team/*".into()],
            right: Right::Read,
            expires_at: Some(10),
        };
        assert!(r.can_read("a") && r.can_read("team/x"));
        assert!(!r.can_read("ab") && !r.can_read("teamx"));
        assert!(!r.can_write("a"));
        assert!(!r.expired(9) && r.expired(10));
        assert!(Rights::open().can_write("anything"));
    }
}
