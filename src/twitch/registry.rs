//! The broadcaster registry: broadcaster id ↔ login, learned from every
//! accepted notification (and from Helix in Twitch mode), so events and
//! revocations without a login can be routed (SPEC §7.6).

use std::collections::HashMap;

use parking_lot::RwLock;

use crate::domain::ChannelName;

/// Most id ↔ login pairs kept; a full map stops learning new ones.
pub const MAX_BROADCASTERS: usize = 1_000_000;

/// Broadcaster id → login, shared by every handler.
#[derive(Debug, Default)]
pub struct BroadcasterRegistry {
    by_id: RwLock<HashMap<String, ChannelName>>,
}

impl BroadcasterRegistry {
    /// Records that `id` is `login`; invalid or empty values are ignored.
    pub fn learn(&self, id: &str, login: &str) {
        if id.is_empty() {
            return;
        }
        let Ok(name) = ChannelName::parse(login) else {
            return;
        };
        if self.by_id.read().get(id) == Some(&name) {
            return;
        }
        let mut map = self.by_id.write();
        if map.len() < MAX_BROADCASTERS || map.contains_key(id) {
            map.insert(id.to_owned(), name);
        }
    }

    /// The login of a broadcaster id, if known.
    pub fn login_for(&self, id: &str) -> Option<ChannelName> {
        self.by_id.read().get(id).cloned()
    }

    /// The id of a login, if known.
    pub fn id_for(&self, login: &ChannelName) -> Option<String> {
        self.by_id
            .read()
            .iter()
            .find(|(_, l)| *l == login)
            .map(|(id, _)| id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learned_ids_route_to_lower_cased_logins() {
        let r = BroadcasterRegistry::default();
        r.learn("1234", "TestStreamer");
        r.learn("", "ignored");
        r.learn("99", "not a login");
        assert_eq!(r.login_for("1234").unwrap().as_str(), "teststreamer");
        assert!(r.login_for("99").is_none());
        assert_eq!(
            r.id_for(&ChannelName::parse("teststreamer").unwrap()),
            Some("1234".into())
        );
    }
}
