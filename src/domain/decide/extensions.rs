//! SPEC part two, "Extending, shortening, starting later, asking on someone's behalf": extension
//! requests and their approval, approvals granting less time than asked, grants starting later,
//! requests made for someone else, the role's questions and the workflow's `decision_reason`.

use super::*;

/// How far ahead a grant may be asked to start.
pub const LATEST_START: chrono::Duration = chrono::Duration::days(365);

impl Decision<'_> {
    /// Who a request is for, and who asked when that is someone else: asking for another person
    /// needs authority to approve the role on the scope (admins always have it).
    pub(super) fn beneficiary<'u>(
        &self,
        actor: &'u UserId,
        user: Option<&'u UserId>,
        role: &Role,
        scope: &Scope,
    ) -> Result<(&'u UserId, Option<UserId>), DomainError> {
        match user {
            Some(user) if user != actor => {
                if self.state.user(user).is_none() {
                    return Err(DomainError::UnknownUser(user.to_string()));
                }
                self.require_authority(&role.id, &scope.id, &Subject::User(user.clone()), Action::Approve)?;
                Ok((user, Some(actor.clone())))
            }
            _ => Ok((actor, None)),
        }
    }

    /// A later start: in the future and within [`LATEST_START`]. `None` when none was asked.
    pub(super) fn later_start(&self, starts_at: Option<DateTime<Utc>>) -> Result<Option<DateTime<Utc>>, DomainError> {
        match starts_at {
            Some(start) if start <= self.now => {
                Err(DomainError::InvalidStartsAt(format!("starts_at {start} is not in the future")))
            }
            Some(start) if start > self.now + LATEST_START => {
                Err(DomainError::InvalidStartsAt(format!("starts_at {start} is more than a year ahead")))
            }
            start => Ok(start),
        }
    }

    /// Every answer names one of the role's questions, and every required question is answered.
    pub(super) fn refuse_bad_answers(
        &self,
        role: &Role,
        answers: &BTreeMap<String, String>,
    ) -> Result<(), DomainError> {
        if let Some(unknown) = answers.keys().find(|id| !role.questions.iter().any(|q| &q.id == *id)) {
            return Err(DomainError::UnknownQuestion { role: role.id.clone(), question: unknown.clone() });
        }
        let unanswered = role
            .questions
            .iter()
            .find(|q| q.required && answers.get(&q.id).is_none_or(|answer| answer.trim().is_empty()));
        match unanswered {
            Some(question) => Err(DomainError::MissingAnswer(question.id.clone())),
            None => Ok(()),
        }
    }

    /// Under `decision_reason = "required"`, every approval and rejection says why.
    pub(super) fn refuse_without_reason(&self, why: &str) -> Result<(), DomainError> {
        if self.workflow.settings.decision_reason_required && why.trim().is_empty() {
            Err(DomainError::ReasonRequired)
        } else {
            Ok(())
        }
    }

    /// An approval may shorten a request, never lengthen it: `duration` is at most what the grant
    /// (or the extension) would otherwise get, and within 100 years.
    pub(super) fn refuse_longer_than_asked(
        &self,
        request: &Request,
        duration: Option<Duration>,
    ) -> Result<(), DomainError> {
        let Some(duration) = duration else {
            return Ok(());
        };
        self.end_after(duration)?;
        let role = self.state.role(&request.role).ok_or_else(|| DomainError::UnknownRole(request.role.clone()))?;
        let ceiling = match request.extends {
            Some(_) => request.duration,
            None => self.granted_duration(role, request.duration)?,
        };
        match ceiling {
            Some(ceiling) if duration > ceiling => {
                Err(DomainError::DurationTooLong { wanted: duration.to_string(), max: ceiling.to_string() })
            }
            _ => Ok(()),
        }
    }

    /// `POST /grants/{id}/extend`: the holder of a user grant with an end asks for more time.
    pub(super) fn extend_grant(&self, id: GrantId, duration: Duration, reason: String) -> Decided {
        let Some(actor) = self.registered_actor()? else {
            return Err(DomainError::Forbidden("only a grant's holder asks to extend it".to_string()));
        };
        let grant = self.state.grant(&id).ok_or_else(|| DomainError::NotFound(format!("grant {id}")))?;
        let holder = match &grant.subject {
            Subject::User(user) if user == actor => user,
            Subject::User(_) => {
                return Err(DomainError::Forbidden("only the grant's holder asks to extend it".to_string()))
            }
            Subject::Team(_) => {
                return Err(DomainError::Forbidden(
                    "team grants are extended by a decider's direct assignment, not by members".to_string(),
                ))
            }
        };
        if !grant.gives_now_or_later(self.now) {
            return Err(DomainError::NotActive);
        }
        if grant.ends_at.is_none() {
            return Err(DomainError::NoEnd);
        }
        if self.state.open_extension(&id).is_some() {
            return Err(DomainError::DuplicateRequest {
                subject: grant.subject.to_string(),
                role: grant.role.clone(),
                scope: grant.scope.to_string(),
            });
        }
        let (role, scope) = self.holdable(&grant.role, &grant.scope)?;
        self.granted_duration(role, Some(duration))?;
        Ok(vec![Event::RoleRequested {
            request: self.ctx.new_id(),
            user: holder.clone(),
            role: role.id.clone(),
            scope: scope.id.clone(),
            reason,
            duration: Some(duration),
            at: self.now,
            expires_at: self.end_after(self.workflow.settings.request_ttl)?,
            extends: Some(id),
            starts_at: None,
            requested_by: None,
            answers: BTreeMap::new(),
            ticket: None,
        }])
    }

    /// The last approval of an extension request: the grant's end moves by the granted duration,
    /// never past the role's longest duration counted from now.
    pub(super) fn extension_approved(&self, request: &Request, granted: Option<Duration>) -> Decided {
        let Some(grant) = request.extends.and_then(|id| self.state.grant(&id)) else {
            return Err(DomainError::NotActive);
        };
        let (Some(old_end), Some(granted)) = (grant.ends_at, granted) else {
            return Err(DomainError::NoEnd);
        };
        if !grant.gives_now_or_later(self.now) || grant.subject != Subject::User(request.user.clone()) {
            return Err(DomainError::NotActive);
        }
        let role = self.state.role(&grant.role).ok_or_else(|| DomainError::UnknownRole(grant.role.clone()))?;
        let mut ends_at = self.end_from(old_end, granted)?;
        if let Some(longest) = self.max_duration(role) {
            ends_at = ends_at.min(self.end_after(longest)?).max(old_end);
        }
        Ok(vec![Event::GrantExtended {
            grant: grant.id,
            request: request.id,
            ends_at,
            by: self.actor.clone(),
            at: self.now,
        }])
    }
}
