//! Typed ids: a room's id cannot be passed where a user's is expected. On the wire each is the
//! plain string it always was (`serde(transparent)`), so the JSON does not change.
//!
//! An id is opaque text, not checked here: ids arrive from clients (paths, frames) and an unknown
//! one is a 404 or 403 decided by the services, not a parse error. They read as `&str` (`Deref`,
//! `Borrow<str>`) so the storage layer, which binds text, takes them as they are.

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                $name(id.clone())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

typed_id!(
    /// A person's account.
    UserId
);
typed_id!(
    /// A room, ordinary or direct-message.
    RoomId
);
typed_id!(
    /// A chat message.
    MessageId
);
typed_id!(
    /// One of a person's notifications.
    NotificationId
);
typed_id!(
    /// A background job.
    JobId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_plain_string_on_the_wire() {
        let id = RoomId::from("r-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""r-1""#);
        let back: RoomId = serde_json::from_str(r#""r-1""#).unwrap();
        assert_eq!(back, id);
        assert_eq!(back, "r-1");
        assert_eq!(&*back, "r-1");
    }

    #[test]
    fn ids_key_maps_by_their_text() {
        let mut seen = std::collections::HashSet::new();
        seen.insert(UserId::from("u"));
        assert!(seen.contains("u"));
    }
}
