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
    /// Lock order: `by_id` before `by_login`.
    by_id: RwLock<HashMap<String, ChannelName>>,
    /// The reverse map, so `id_for` is not a scan.
    by_login: RwLock<HashMap<ChannelName, String>>,
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
            let old = map.insert(id.to_owned(), name.clone());
            let mut rev = self.by_login.write();
            if let Some(old) = old {
                if rev.get(&old).map(String::as_str) == Some(id) {
                    rev.remove(&old);
                }
            }
            rev.insert(name, id.to_owned());
        }
    }

    /// The login of a broadcaster id, if known.
    pub fn login_for(&self, id: &str) -> Option<ChannelName> {
        self.by_id.read().get(id).cloned()
    }

    /// The id of a login, if known.
    pub fn id_for(&self, login: &ChannelName) -> Option<String> {
        self.by_login.read().get(login).cloned()
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
        // A renamed broadcaster: the old login no longer maps to the id.
        r.learn("1234", "renamed");
        assert!(
            r.id_for(&ChannelName::parse("teststreamer").unwrap())
                .is_none()
        );
        assert_eq!(r.login_for("1234").unwrap().as_str(), "renamed");
    }
}
