//! Who a room member is: the signed-in user as a room [`Viewer`] (an `id`
//! stable for that user in that room, a `suffix` 0–9999, login and display
//! name), and the viewer's [`Properties`] (what `login` merges). Keys
//! starting with `_` are private: the owner and relaying admins see them,
//! chat shows only the public ones. A viewer's connections share one
//! profile. Pure.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::domain::{ChannelName, User};

use super::frame::RoomError;

/// Largest properties object, as JSON (SPEC §9).
pub const MAX_PROPERTIES_BYTES: usize = 4096;

/// A viewer's id in a room: the same for every connection of the signed-in
/// user to that room, on every instance, across restarts (derived, never
/// stored), and different in another room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ViewerId(Box<str>);

impl ViewerId {
    /// The id as text (UUID-shaped hex).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from the store.
    pub fn from_stored(text: &str) -> Self {
        Self(text.into())
    }
}

impl std::fmt::Display for ViewerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The signed-in user as a member of one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// Stable per user and room.
    pub id: ViewerId,
    /// 0–9999, to tell apart viewers who show the same name.
    pub suffix: u16,
    /// The Twitch (or local) login.
    pub login: String,
    /// The display name.
    pub display_name: String,
}

impl Viewer {
    /// `user` in `room`: `id` and `suffix` come from a SHA-256 of both, so
    /// every instance derives the same ones without asking the store.
    pub fn new(room: &ChannelName, user: &User) -> Self {
        let mut h = Sha256::new();
        h.update(b"eventsub-bridge room viewer\0");
        h.update(room.as_str().as_bytes());
        h.update(b"\0");
        h.update(user.id.as_bytes());
        let d = h.finalize();
        let hex = hex::encode(&d[..16]);
        let id = format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        let suffix = u16::from_be_bytes([d[16], d[17]]) % 10_000;
        Self {
            id: ViewerId(id.into()),
            suffix,
            login: user.login.clone(),
            display_name: user.display_name.clone(),
        }
    }
}

/// A viewer's properties: JSON values kept as the exact text sent.
#[derive(Debug, Clone, Default)]
pub struct Properties(BTreeMap<String, Box<RawValue>>);

impl PartialEq for Properties {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

impl Properties {
    /// A `login` frame's data: an object.
    ///
    /// # Errors
    /// `invalid` for anything but an object.
    pub fn parse_patch(data: Option<&RawValue>) -> Result<Self, RoomError> {
        data.and_then(|d| serde_json::from_str(d.get()).ok())
            .map(Self)
            .ok_or_else(|| RoomError::invalid("login data is an object of properties"))
    }

    /// Properties as the store keeps them (empty text: none).
    ///
    /// # Errors
    /// The JSON error when the stored text is not an object.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        if text.is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(text).map(Self)
    }

    /// The properties as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_owned())
    }

    /// How many properties there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// These properties with `patch` merged in: a `null` removes the key
    /// (SPEC §9: login merges; the Pact server replaces).
    ///
    /// # Errors
    /// `invalid` when the result would be over [`MAX_PROPERTIES_BYTES`] as JSON.
    pub fn merged(&self, patch: &Self) -> Result<Self, RoomError> {
        let mut out = self.0.clone();
        for (k, v) in &patch.0 {
            if v.get() == "null" {
                out.remove(k);
            } else {
                out.insert(k.clone(), v.clone());
            }
        }
        let merged = Self(out);
        let size = merged.to_json().len();
        if size > MAX_PROPERTIES_BYTES {
            return Err(RoomError::invalid(format!(
                "properties are at most {MAX_PROPERTIES_BYTES} bytes as JSON; these would be {size}"
            )));
        }
        Ok(merged)
    }

    /// Every property (for the owner and relaying admins).
    pub fn all(&self) -> PropertiesView<'_> {
        PropertiesView {
            props: self,
            private: true,
        }
    }

    /// Only the public ones (not starting with `_`).
    pub fn public(&self) -> PropertiesView<'_> {
        PropertiesView {
            props: self,
            private: false,
        }
    }
}

/// Properties as they are shown to someone: with or without the private ones.
#[derive(Debug, Clone, Copy)]
pub struct PropertiesView<'a> {
    props: &'a Properties,
    private: bool,
}

impl Serialize for PropertiesView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shown = self
            .props
            .0
            .iter()
            .filter(|(k, _)| self.private || !k.starts_with('_'));
        let mut map = s.serialize_map(None)?;
        for (k, v) in shown {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A member as frames show it: `profile` (with `role`, all properties),
/// `chat` (no role, public properties) and `relay:*` (role, all).
#[derive(Debug, Serialize)]
pub struct MemberView<'a> {
    /// Stable id.
    pub id: &'a str,
    /// 0–9999.
    pub suffix: u16,
    /// Login.
    pub login: &'a str,
    /// Display name.
    pub display_name: &'a str,
    /// Properties as shown to the receiver.
    pub properties: PropertiesView<'a>,
    /// `user` or `admin` (not in chat).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
}

impl<'a> MemberView<'a> {
    /// `viewer` with `props` as its owner sees them.
    pub fn private(viewer: &'a Viewer, props: &'a Properties, admin: bool) -> Self {
        Self {
            id: viewer.id.as_str(),
            suffix: viewer.suffix,
            login: &viewer.login,
            display_name: &viewer.display_name,
            properties: props.all(),
            role: Some(if admin { "admin" } else { "user" }),
        }
    }

    /// `viewer` as a chat message shows them to everyone.
    pub fn public(viewer: &'a Viewer, props: &'a Properties) -> Self {
        Self {
            id: viewer.id.as_str(),
            suffix: viewer.suffix,
            login: &viewer.login,
            display_name: &viewer.display_name,
            properties: props.public(),
            role: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn props(v: Value) -> Properties {
        let raw = RawValue::from_string(v.to_string()).unwrap();
        Properties::parse_patch(Some(&raw)).unwrap()
    }

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            login: "viewer".into(),
            display_name: "Viewer".into(),
        }
    }

    #[test]
    fn ids_are_stable_per_user_and_room_and_differ_across_rooms() {
        let a = ChannelName::parse("roomone").unwrap();
        let b = ChannelName::parse("roomtwo").unwrap();
        let v1 = Viewer::new(&a, &user("42"));
        assert_eq!(v1, Viewer::new(&a, &user("42")));
        assert_ne!(v1.id, Viewer::new(&b, &user("42")).id);
        assert_ne!(v1.id, Viewer::new(&a, &user("43")).id);
        assert!(v1.suffix < 10_000);
        assert_eq!(v1.id.as_str().len(), 36);
    }

    #[test]
    fn login_merges_and_null_removes() {
        let base = props(json!({"name": "a", "color": "red", "_token": 1}));
        let merged = base
            .merged(&props(
                json!({"color": null, "score": 12345678901234567890u64}),
            ))
            .unwrap();
        let v: Value = serde_json::from_str(&merged.to_json()).unwrap();
        assert_eq!(
            v,
            json!({"name": "a", "_token": 1, "score": 12345678901234567890u64})
        );
        // Big numbers keep their exact text.
        assert!(merged.to_json().contains("12345678901234567890"));
    }

    #[test]
    fn private_properties_are_shown_only_in_full_views() {
        let p = props(json!({"name": "a", "_secret": "s"}));
        let public: Value = serde_json::to_value(p.public()).unwrap();
        let all: Value = serde_json::to_value(p.all()).unwrap();
        assert_eq!(public, json!({"name": "a"}));
        assert_eq!(all, json!({"name": "a", "_secret": "s"}));
    }

    #[test]
    fn properties_over_4_kib_are_refused() {
        let base = Properties::default();
        // {"k":"…"} is 8 bytes plus the string.
        assert!(
            base.merged(&props(json!({"k": "x".repeat(4096 - 8)})))
                .is_ok()
        );
        assert!(
            base.merged(&props(json!({"k": "x".repeat(4096 - 7)})))
                .is_err()
        );
    }
}
