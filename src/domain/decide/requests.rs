//! Requests: asked, approved (stage by stage), rejected, cancelled, expired, reminded.

use super::*;

impl Decision<'_> {
    pub(super) fn request_role(
        &self,
        role: RoleId,
        scope: ScopeId,
        reason: String,
        duration: Option<Duration>,
        asked: Asked,
    ) -> Decided {
        let Some(actor) = self.registered_actor()? else {
            return Err(DomainError::Forbidden("only users request roles".to_string()));
        };
        let (role, scope) = self.holdable(&role, &scope)?;
        let (user, requested_by) = self.beneficiary(actor, asked.user.as_ref(), role, scope)?;
        if !role.requestable {
            return Err(DomainError::NotRequestable(role.id.clone()));
        }
        if role.locked {
            return Err(DomainError::RoleLocked(role.id.clone()));
        }
        let start = self.later_start(asked.starts_at)?;
        self.grant_end_from(role, duration, start.unwrap_or(self.now))?;
        self.refuse_bad_answers(role, &asked.answers)?;
        let subject = Subject::User(user.clone());
        if self.state.open_request(user, &role.id, &scope.id).is_some() {
            return Err(DomainError::DuplicateRequest {
                subject: subject.to_string(),
                role: role.id.clone(),
                scope: scope.id.to_string(),
            });
        }
        self.refuse_held(&subject, &role.id, &scope.id, start.unwrap_or(self.now))?;
        self.refuse_incompatible(&subject, &role.id)?;
        Ok(vec![Event::RoleRequested {
            request: self.ctx.new_id(),
            user: user.clone(),
            role: role.id.clone(),
            scope: scope.id.clone(),
            reason,
            duration,
            at: self.now,
            expires_at: self.end_after(self.workflow.settings.request_ttl)?,
            extends: None,
            starts_at: start,
            requested_by,
            answers: asked.answers,
            ticket: asked.ticket,
        }])
    }

    pub(super) fn request(&self, id: &RequestId) -> Result<&Request, DomainError> {
        self.state.request(id).ok_or_else(|| DomainError::NotFound(format!("request {id}")))
    }

    /// A request that the actor may take `action` on and that can still be decided: pending and
    /// within its time-to-live. Who may decide is judged first, so that a request's state is told
    /// only to those who may see it.
    /// The authority it is decided with comes back too: a delegate's names the delegator.
    pub(super) fn decidable_request(
        &self,
        id: &RequestId,
        action: Action,
    ) -> Result<(&Request, Authority), DomainError> {
        let request = self.request(id)?;
        if self.ctx.acting_users().any(|acting| request.concerns(acting)) {
            return Err(DomainError::SelfApproval);
        }
        let authority = self
            .state
            .request_authority(self.workflow, self.actor, request, action, self.now)
            .ok_or_else(|| DomainError::NotADecider { role: request.role.clone(), scope: request.scope.to_string() })?;
        if !request.is_pending() {
            return Err(DomainError::NotPending(request.status));
        }
        if self.now >= request.expires_at {
            return Err(DomainError::Expired(request.expires_at));
        }
        Ok((request, authority))
    }

    pub(super) fn stages_for(&self, request: &Request) -> Vec<Stage> {
        self.state.stages_of(self.workflow, request)
    }

    pub(super) fn approve(&self, id: RequestId, comment: String, duration: Option<Duration>) -> Decided {
        let (request, authority) = self.decidable_request(&id, Action::Approve)?;
        self.refuse_without_reason(&comment)?;
        self.refuse_longer_than_asked(request, duration)?;
        let on_behalf_of = authority.on_behalf_of().cloned();
        // A stage's approvers are distinct people, counted by whose authority is used: whoever made
        // the token an approval used, and the delegator a delegate approved for, count too.
        let acting: Vec<&str> = self.ctx.acting_users().chain(on_behalf_of.as_deref()).collect();
        let approved_before = request.approvals.iter().any(|a| {
            &a.by == self.actor
                || a.by
                    .user()
                    .into_iter()
                    .chain(a.token_creator.as_deref())
                    .chain(a.on_behalf_of.as_deref())
                    .any(|counted| acting.contains(&counted))
        });
        if approved_before {
            return Err(DomainError::AlreadyApproved);
        }
        let stages = self.stages_for(request);
        let stage_index = (request.stage as usize).min(stages.len().saturating_sub(1));
        let stage = &stages[stage_index];
        let approvals_in_stage =
            request.approvals.iter().filter(|a| a.stage as usize == stage_index).count() as u32 + 1;
        let completes_stage = approvals_in_stage >= stage.quorum;
        let completes_request = completes_stage && stage_index + 1 == stages.len();
        let mut events = vec![Event::RequestApproved {
            request: id,
            by: self.actor.clone(),
            token_creator: self.ctx.token_creator.clone(),
            on_behalf_of,
            comment,
            stage: stage_index as u32,
            stage_name: stage.name.clone(),
            approvals_in_stage,
            quorum: stage.quorum,
            completes_stage,
            completes_request,
            at: self.now,
            duration,
        }];
        let granted = [request.granted_duration(), duration].into_iter().flatten().min().or(request.duration);
        if completes_request && request.extends.is_some() {
            events.extend(self.extension_approved(request, granted)?);
        } else if completes_request {
            let (role, _) = self.holdable(&request.role, &request.scope)?;
            if role.locked {
                return Err(DomainError::RoleLocked(role.id.clone()));
            }
            let subject = Subject::User(request.user.clone());
            let start = request.starts_at.filter(|start| *start > self.now).unwrap_or(self.now);
            self.refuse_held(&subject, &role.id, &request.scope, start)?;
            self.refuse_incompatible(&subject, &role.id)?;
            let ends_at = self.grant_end_from(role, granted, start)?;
            let origin = GrantOrigin::Request { request: id };
            events.push(self.grant_from(subject, role, &request.scope, origin, start, ends_at));
        }
        Ok(events)
    }

    pub(super) fn reject(&self, id: RequestId, reason: String) -> Decided {
        let (_, authority) = self.decidable_request(&id, Action::Reject)?;
        self.refuse_without_reason(&reason)?;
        let on_behalf_of = authority.on_behalf_of().cloned();
        Ok(vec![Event::RequestRejected { request: id, by: self.actor.clone(), reason, at: self.now, on_behalf_of }])
    }

    pub(super) fn cancel(&self, id: RequestId) -> Decided {
        let request = self.request(&id)?;
        if !self.actor.user().is_some_and(|user| request.concerns(user)) {
            return Err(DomainError::Forbidden("only the requester may cancel a request".to_string()));
        }
        if !request.is_pending() {
            return Err(DomainError::NotPending(request.status));
        }
        Ok(vec![Event::RequestCancelled { request: id, by: self.actor.clone(), at: self.now }])
    }

    pub(super) fn expire_request(&self, id: RequestId) -> Decided {
        let request = self.request(&id)?;
        if !request.is_pending() {
            return Err(DomainError::NotPending(request.status));
        }
        if self.now < request.expires_at {
            return Err(DomainError::NotDue(request.expires_at));
        }
        Ok(vec![Event::RequestExpired { request: id, at: self.now }])
    }

    /// Once per reminder interval while the request stays pending (and unexpired).
    pub(super) fn remind_deciders(&self, id: RequestId) -> Decided {
        let request = self.request(&id)?;
        if !request.is_pending() {
            return Err(DomainError::NotPending(request.status));
        }
        if self.now >= request.expires_at {
            return Err(DomainError::Expired(request.expires_at));
        }
        let due = time::end_after(
            request.reminded_at.unwrap_or(request.created_at),
            self.workflow.settings.reminder_interval,
        )
        .unwrap_or_else(time::latest);
        if self.now < due {
            return Err(DomainError::NotDue(due));
        }
        Ok(vec![Event::DecidersReminded { request: id, at: self.now }])
    }
}

impl Decision<'_> {
    // ----- escalation and delegation -----

    /// Issued by the scheduler, once per stage, when the request has waited its stage's `escalate_after`.
    pub(super) fn escalate_request(&self, id: RequestId) -> Decided {
        if *self.actor != Actor::CommandLine {
            return Err(DomainError::Forbidden("only the scheduler escalates requests".to_string()));
        }
        let request = self.request(&id)?;
        if !request.is_pending() {
            return Err(DomainError::NotPending(request.status));
        }
        if self.now >= request.expires_at {
            return Err(DomainError::Expired(request.expires_at));
        }
        if request.is_escalated() {
            return Err(DomainError::AlreadyExists(format!(
                "the escalation of stage {} of request {id}",
                request.stage
            )));
        }
        let Some(due) = self.state.escalation_due(self.workflow, request) else {
            return Err(DomainError::Invalid(format!("stage {} of request {id} does not escalate", request.stage)));
        };
        if self.now < due {
            return Err(DomainError::NotDue(due));
        }
        Ok(vec![Event::RequestEscalated { request: id, stage: request.stage, at: self.now }])
    }
}
