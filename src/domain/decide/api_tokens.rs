//! API tokens: made and revoked.

use super::*;

impl Decision<'_> {
    /// Admins create tokens for anyone; holders of an API role for themselves.
    pub(super) fn create_api_token(
        &self,
        user: UserId,
        name: String,
        secret_hash: String,
        expires_in: Option<Duration>,
    ) -> Decided {
        self.registered_actor()?;
        if self.state.user(&user).is_none() {
            return Err(DomainError::UnknownUser(user.into()));
        }
        let for_themselves_by_an_api_role = self.actor.is_user(&user) && self.state.holds_api_role(&user, self.now);
        if !(self.actor_is_admin() || for_themselves_by_an_api_role) {
            return Err(DomainError::Forbidden(
                "API tokens are created by administrators, or by holders of an API role for themselves".to_string(),
            ));
        }
        if name.trim().is_empty() {
            return Err(DomainError::Invalid("an API token needs a name".to_string()));
        }
        let well_formed = secret_hash.len() == 64 && secret_hash.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed || self.state.api_token_by_hash(&secret_hash).is_some() {
            return Err(DomainError::Invalid("bad token secret hash".to_string()));
        }
        let expires_at = expires_in.map(|d| self.end_after(d)).transpose()?;
        Ok(vec![Event::ApiTokenCreated {
            token: self.ctx.new_id(),
            user,
            name,
            secret_hash,
            expires_at,
            by: self.actor.clone(),
            at: self.now,
        }])
    }

    /// The token's owner or an admin.
    pub(super) fn revoke_api_token(&self, id: TokenId) -> Decided {
        let token = self.state.api_token(&id).ok_or_else(|| DomainError::NotFound(format!("API token {id}")))?;
        if !self.actor.is_user(&token.user) && !self.actor_is_admin() {
            return Err(DomainError::Forbidden("only the token's owner or an administrator may revoke it".to_string()));
        }
        if token.revoked_at.is_some() {
            return Err(DomainError::NotActive);
        }
        Ok(vec![Event::ApiTokenRevoked { token: id, by: self.actor.clone(), at: self.now }])
    }
}
