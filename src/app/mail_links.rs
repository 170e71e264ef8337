//! The Approve and Reject links of a decider's mail (SPEC "Deciding from the mail"): a token
//! naming the request, the recipient, the action and the link's expiry (the request's), signed
//! with HMAC-SHA256 under a key kept in the database and shared by every process. A link decides
//! nothing by itself: its page asks the signed-in recipient to confirm, and the decision is then
//! judged like any other, with the authority they have at that moment.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{
    domain::{RequestId, UserId},
    store::{EventStore, StoreError},
};

/// The name of the links' key among the database's shared keys.
const KEY_NAME: &str = "mail_links";
/// The first byte of a token: its layout, so that a later one can be told apart.
const LAYOUT: u8 = 1;
/// Layout, action, request id, expiry (microseconds since 1970, big-endian).
const FIXED: usize = 1 + 1 + 16 + 8;
/// A token longer than this is refused before any decoding (a user id is at most 128 characters).
const LONGEST_TOKEN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    Approve,
    Reject,
}

impl LinkAction {
    fn byte(self) -> u8 {
        match self {
            LinkAction::Approve => b'a',
            LinkAction::Reject => b'r',
        }
    }

    fn from_byte(byte: u8) -> Option<LinkAction> {
        match byte {
            b'a' => Some(LinkAction::Approve),
            b'r' => Some(LinkAction::Reject),
            _ => None,
        }
    }

    /// "approve" or "reject".
    pub fn verb(self) -> &'static str {
        match self {
            LinkAction::Approve => "approve",
            LinkAction::Reject => "reject",
        }
    }
}

/// What a link's token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailLink {
    pub request: RequestId,
    pub recipient: UserId,
    pub action: LinkAction,
    /// The request's expiry: after it the link decides nothing.
    pub expires_at: DateTime<Utc>,
}

/// The links' signing key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct MailLinks {
    key: [u8; 32],
}

impl std::fmt::Debug for MailLinks {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MailLinks { key: <hidden> }")
    }
}

impl MailLinks {
    /// The key of this database, made by the first process that asks.
    pub async fn load(store: &EventStore) -> Result<MailLinks, StoreError> {
        let stored = store.shared_key(KEY_NAME).await?;
        let mut key = [0; 32];
        // A key is 32 bytes as this server stores it; anything else is used as HMAC takes it.
        let mut mac = Hmac::<Sha256>::new_from_slice(&stored).expect("HMAC takes any key length");
        mac.update(b"roleledger mail links");
        key.copy_from_slice(&mac.finalize().into_bytes());
        Ok(MailLinks { key })
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        mac
    }

    /// The token of `link`, fit for a URL path segment.
    pub fn token(&self, link: &MailLink) -> String {
        let mut payload = Vec::with_capacity(FIXED + link.recipient.len());
        payload.push(LAYOUT);
        payload.push(link.action.byte());
        payload.extend_from_slice(link.request.as_bytes());
        payload.extend_from_slice(&link.expires_at.timestamp_micros().to_be_bytes());
        payload.extend_from_slice(link.recipient.as_bytes());
        let signature = self.mac(&payload).finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(signature))
    }

    /// What `token` says, if this key signed it (checked in constant time before anything is read).
    pub fn open(&self, token: &str) -> Option<MailLink> {
        if token.len() > LONGEST_TOKEN {
            return None;
        }
        let (payload, signature) = token.split_once('.')?;
        let (payload, signature) = (URL_SAFE_NO_PAD.decode(payload).ok()?, URL_SAFE_NO_PAD.decode(signature).ok()?);
        self.mac(&payload).verify_slice(&signature).ok()?;
        if payload.len() <= FIXED || payload[0] != LAYOUT {
            return None;
        }
        let action = LinkAction::from_byte(payload[1])?;
        let request = RequestId::from_slice(&payload[2..18]).ok()?;
        let micros = i64::from_be_bytes(payload[18..FIXED].try_into().ok()?);
        let expires_at = DateTime::from_timestamp_micros(micros)?;
        let recipient = UserId::parse(std::str::from_utf8(&payload[FIXED..]).ok()?).ok()?;
        Some(MailLink { request, recipient, action, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(key: u8) -> MailLinks {
        MailLinks { key: [key; 32] }
    }

    fn link() -> MailLink {
        MailLink {
            request: uuid::Uuid::new_v4(),
            recipient: UserId::parse("manager").unwrap(),
            action: LinkAction::Approve,
            expires_at: DateTime::parse_from_rfc3339("2030-01-02T03:04:05.123456Z").unwrap().into(),
        }
    }

    #[test]
    fn a_token_opens_to_what_was_signed_and_only_under_its_key() {
        let (links, link) = (links(7), link());
        let token = links.token(&link);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{token}");
        assert_eq!(links.open(&token), Some(link.clone()));
        assert_eq!(self::links(8).open(&token), None, "another database's key");
        let reject = MailLink { action: LinkAction::Reject, ..link };
        assert_ne!(links.token(&reject), token);
    }

    #[test]
    fn a_changed_token_opens_to_nothing() {
        let links = links(7);
        let token = links.token(&link());
        let (payload, signature) = token.split_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
        bytes[1] = b'r';
        let tampered = format!("{}.{signature}", URL_SAFE_NO_PAD.encode(&bytes));
        for bad in [tampered.as_str(), "", ".", "x.y", &token[1..], &format!("{token}x"), &"a".repeat(5000)] {
            assert_eq!(links.open(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_debug_form_hides_the_key() {
        assert!(!format!("{:?}", links(65)).contains("65"));
    }
}
