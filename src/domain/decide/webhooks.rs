//! Webhook subscriptions: created and deleted by administrators. Whether the target's address may
//! be reached is judged before the command, where its name can be resolved; here, what the log
//! can know.

use strum::VariantNames;

use super::super::event::Event;
use super::super::webhook::WebhookId;
use super::*;

/// The longest URL, description and filter list a subscription may have.
const MAX_URL_CHARS: usize = 2048;
const MAX_DESCRIPTION_CHARS: usize = 500;

impl Decision<'_> {
    pub(super) fn create_webhook(
        &self,
        id: WebhookId,
        url: String,
        events: Vec<String>,
        scope: Option<ScopeId>,
        description: Option<String>,
    ) -> Decided {
        self.require_admin_for_webhooks()?;
        if self.state.webhook(&id).is_some() {
            return Err(DomainError::AlreadyExists(format!("webhook {id}")));
        }
        if let Some(problem) = webhook_url_problem(&url) {
            return Err(DomainError::InvalidUrl(problem));
        }
        if let Some(unknown) = events.iter().find(|wanted| !Event::VARIANTS.contains(&wanted.as_str())) {
            return Err(DomainError::UnknownEventType(unknown.clone()));
        }
        if let Some(scope) = &scope {
            if self.state.scope(scope).is_none() {
                return Err(DomainError::UnknownScope(scope.to_string()));
            }
        }
        let description = description.map(|d| d.trim().to_string()).filter(|d| !d.is_empty());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS || d.contains(char::is_control))
        {
            return Err(DomainError::Invalid(format!(
                "a description is one line of at most {MAX_DESCRIPTION_CHARS} characters"
            )));
        }
        let mut events = events;
        events.sort();
        events.dedup();
        Ok(vec![Event::WebhookCreated {
            webhook: id,
            url,
            events,
            scope,
            description,
            by: self.actor.clone(),
            at: self.now,
        }])
    }

    pub(super) fn delete_webhook(&self, id: WebhookId) -> Decided {
        self.require_admin_for_webhooks()?;
        if self.state.webhook(&id).is_none() {
            return Err(DomainError::NotFound(format!("webhook {id}")));
        }
        Ok(vec![Event::WebhookDeleted { webhook: id, by: self.actor.clone(), at: self.now }])
    }

    fn require_admin_for_webhooks(&self) -> Result<(), DomainError> {
        if self.actor_is_admin() {
            Ok(())
        } else {
            Err(DomainError::Forbidden("webhooks are for administrators".to_string()))
        }
    }
}

/// What is wrong with a target as text: only `http://` and `https://` URLs of reasonable length,
/// without spaces or control characters. (The adapter parses it fully before the command.)
fn webhook_url_problem(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        None => Some("a webhook URL starts with http:// or https://".to_string()),
        Some("") => Some("the URL names no host".to_string()),
        Some(_) if url.chars().count() > MAX_URL_CHARS => Some(format!("a URL has at most {MAX_URL_CHARS} characters")),
        Some(_) if url.contains(|c: char| c.is_whitespace() || c.is_control()) => {
            Some("a URL holds no spaces or control characters".to_string())
        }
        Some(_) => None,
    }
}
