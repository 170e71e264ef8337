//! The one rule for user ids (a login token's `sub`, a registered user), judged by
//! [`UserId::parse`](super::UserId::parse) where an id enters (the authenticator, the command
//! line): an id is shown in pages, mail and logs, and compared byte for byte, so it must be
//! visible and unambiguous (`root\u{200B}` is not a second `root`).

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::error::DomainError;

/// The longest user id accepted, in characters.
pub const MAX_USER_ID_CHARS: usize = 255;

/// Names the server acts under itself (SPEC.md part two): nobody signs in or registers as these.
const RESERVED_USER_IDS: &[&str] = &["command-line", "expiry", "scheduler", "system"];
const RESERVED_USER_ID_PREFIX: &str = "system:";

/// Why a text is not a user id, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadUserId {
    #[error("the user id is empty")]
    Empty,
    #[error("the user id is longer than {MAX_USER_ID_CHARS} characters")]
    TooLong,
    #[error("the user id holds whitespace ({0})")]
    Whitespace(String),
    #[error("the user id holds a control character ({0})")]
    Control(String),
    #[error("the user id holds an invisible formatting character ({0})")]
    Format(String),
    #[error("the user id \"{0}\" is reserved for the server itself")]
    Reserved(String),
}

/// `text` as a user id, or why it cannot be one.
pub fn parse_user_id(text: &str) -> Result<&str, BadUserId> {
    if text.is_empty() {
        return Err(BadUserId::Empty);
    }
    if text.chars().count() > MAX_USER_ID_CHARS {
        return Err(BadUserId::TooLong);
    }
    for c in text.chars() {
        let code = || format!("U+{:04X}", u32::from(c));
        if c.is_whitespace() {
            return Err(BadUserId::Whitespace(code()));
        }
        if c.is_control() {
            return Err(BadUserId::Control(code()));
        }
        // Unicode general category Cf (U+200B, U+FEFF, U+202E, …), from the unicode-properties
        // crate that PostgreSQL's driver already brings in.
        if c.general_category() == GeneralCategory::Format {
            return Err(BadUserId::Format(code()));
        }
    }
    if RESERVED_USER_IDS.contains(&text) || text.starts_with(RESERVED_USER_ID_PREFIX) {
        return Err(BadUserId::Reserved(text.to_string()));
    }
    Ok(text)
}

impl From<BadUserId> for DomainError {
    fn from(bad: BadUserId) -> Self {
        match bad {
            BadUserId::Reserved(id) => DomainError::ReservedId(id),
            other => DomainError::Invalid(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_pass() {
        for id in ["alice", "a.b@example.org", "0000-0002-1825-0097", "ütf8-ñame", "system-admin", "systems:x"] {
            assert_eq!(parse_user_id(id), Ok(id));
        }
        assert!(parse_user_id(&"x".repeat(MAX_USER_ID_CHARS)).is_ok());
    }

    #[test]
    fn empty_long_blank_control_and_format_characters_are_refused() {
        assert_eq!(parse_user_id(""), Err(BadUserId::Empty));
        assert_eq!(parse_user_id(&"x".repeat(MAX_USER_ID_CHARS + 1)), Err(BadUserId::TooLong));
        for id in ["a b", "a\tb", "a\u{00A0}b", "a\u{3000}b", "root\n"] {
            assert!(matches!(parse_user_id(id), Err(BadUserId::Whitespace(_))), "{id:?}");
        }
        for id in ["a\u{0}b", "a\u{7F}", "a\u{9B}b"] {
            assert!(matches!(parse_user_id(id), Err(BadUserId::Control(_))), "{id:?}");
        }
        for id in ["root\u{200B}", "\u{FEFF}root", "ad\u{202E}nim", "a\u{00AD}b", "a\u{2060}b", "a\u{E0001}"] {
            assert!(matches!(parse_user_id(id), Err(BadUserId::Format(_))), "{id:?}");
        }
        assert_eq!(
            parse_user_id("root\u{200B}").unwrap_err().to_string(),
            "the user id holds an invisible formatting character (U+200B)"
        );
    }

    #[test]
    fn the_servers_own_names_are_reserved() {
        for id in ["command-line", "expiry", "scheduler", "system", "system:", "system:mail"] {
            assert_eq!(parse_user_id(id), Err(BadUserId::Reserved(id.to_string())), "{id}");
            assert_eq!(DomainError::from(parse_user_id(id).unwrap_err()).code(), "reserved_id");
        }
        assert_eq!(DomainError::from(BadUserId::Empty).code(), "invalid");
    }
}
