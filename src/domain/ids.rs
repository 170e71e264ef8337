//! The ids of users, scopes and teams: newtypes that parse.
//!
//! Each id is a `String` inside, serialized and deserialized transparently (`serde(transparent)`),
//! so JSON answers and events are byte for byte what they were when the ids were plain strings.
//!
//! **Where the rule is judged.** An id is made in one of two ways:
//! - [`parse`](UserId::parse) (also `FromStr` and `TryFrom<String>`): the rule for a *new* id —
//!   the user-id rule of [`parse_user_id`] for a registration or a sign-in; letters, digits, `-`,
//!   `_` and `.` for a new scope or team. The boundaries (HTTP bodies and forms, CLI arguments,
//!   sign-in claims) parse the id a command creates, so `decide` receives ids that already obey
//!   the rule and does not judge them again. The error is the [`DomainError`] that `decide` gave
//!   before (same code, same message).
//! - [`known`](UserId::known): a name as given, not judged: an id read from the log, or one that
//!   a command only refers to (a path segment, a query, a member to add). A name the rule refuses
//!   was never created, so looking it up finds nothing, exactly as before the ids had a type.
//!
//! Deserializing never judges: events written by any older version read back and verify, and a
//! deserialized `Command` carries its ids as written.

use super::error::DomainError;
use super::user_id::{parse_user_id, BadUserId};
use crate::workflow::is_valid_scope_id;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A name as given, not judged by the rule (read from the log, or referred to).
            pub fn known(text: impl Into<String>) -> $name {
                $name(text.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = DomainError;

            fn from_str(text: &str) -> Result<$name, DomainError> {
                $name::parse(text).map_err(DomainError::from)
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;

            fn try_from(text: String) -> Result<$name, DomainError> {
                text.parse()
            }
        }

        impl TryFrom<&str> for $name {
            type Error = DomainError;

            fn try_from(text: &str) -> Result<$name, DomainError> {
                text.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
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

id_type!(
    /// A user's id: visible and unambiguous, and not one of the server's own names
    /// ([`parse_user_id`]). See the module's documentation for where the rule is judged.
    UserId
);
id_type!(
    /// A scope's id: ASCII letters, digits, `-`, `_` and `.`, starting with a letter or digit, at
    /// most 128 long. See the module's documentation for where the rule is judged.
    ScopeId
);
id_type!(
    /// A team's id: the scope-id rule. See the module's documentation for where the rule is judged.
    TeamId
);

impl UserId {
    /// `text` as the id of a user who registers or signs in, or why it cannot be one.
    pub fn parse(text: &str) -> Result<UserId, BadUserId> {
        parse_user_id(text).map(UserId::known)
    }
}

impl ScopeId {
    /// `text` as the id of a new scope, or why it cannot be one.
    pub fn parse(text: &str) -> Result<ScopeId, DomainError> {
        if is_valid_scope_id(text) {
            Ok(ScopeId::known(text))
        } else {
            Err(DomainError::Invalid(format!("bad scope id \"{text}\" (letters, digits, -, _ and . only)")))
        }
    }

    /// The scope every other scope sits under.
    pub fn global() -> ScopeId {
        ScopeId::known(crate::workflow::GLOBAL)
    }
}

impl TeamId {
    /// `text` as the id of a new team, or why it cannot be one.
    pub fn parse(text: &str) -> Result<TeamId, DomainError> {
        if is_valid_scope_id(text) {
            Ok(TeamId::known(text))
        } else {
            Err(DomainError::Invalid(format!("bad team id \"{text}\" (letters, digits, -, _ and . only)")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_refuses_what_decide_refused_with_the_same_error() {
        assert_eq!("system".parse::<UserId>().unwrap_err(), DomainError::ReservedId("system".into()));
        assert_eq!(
            UserId::try_from("root\u{200B}".to_string()).unwrap_err().to_string(),
            "the user id holds an invisible formatting character (U+200B)"
        );
        let bad_scope = ScopeId::try_from("a b".to_string()).unwrap_err();
        assert_eq!(bad_scope.code(), "invalid");
        assert_eq!(bad_scope.to_string(), "bad scope id \"a b\" (letters, digits, -, _ and . only)");
        assert_eq!(
            "x/y".parse::<TeamId>().unwrap_err().to_string(),
            "bad team id \"x/y\" (letters, digits, -, _ and . only)"
        );
        assert_eq!("NGI_UK".parse::<ScopeId>().unwrap(), "NGI_UK");
        assert_eq!("ops.team".parse::<TeamId>().unwrap().as_str(), "ops.team");
    }

    #[test]
    fn ids_serialize_as_plain_strings_and_read_back_unjudged() {
        let id = UserId::known("alice");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"alice\"");
        // An id that no longer passes the rule still reads back from the log.
        let old: UserId = serde_json::from_str("\"system\"").unwrap();
        assert_eq!(old, "system");
        let old: ScopeId = serde_json::from_str("\"a b\"").unwrap();
        assert_eq!(old.to_string(), "a b");
    }
}
