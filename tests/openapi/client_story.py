"""SPEC's story through a client that openapi-python-client generated from the server's own
/openapi.json: alice asks for a role on a site, the site's operations manager approves, and `check`
says alice may now act there. Run by tests/api/openapi.rs, which starts the server, generates the
client as the package `roleledger_client` and passes ROLELEDGER_URL and ROLELEDGER_TOKENS (a JSON
object of login tokens by user). Every answer is parsed into the generated models; an answer the
document does not describe raises (raise_on_unexpected_status)."""

import json
import os

from roleledger_client import AuthenticatedClient
from roleledger_client.api.check import check
from roleledger_client.api.grants import create_grant
from roleledger_client.api.requests import approve_request, create_request, get_request, list_requests
from roleledger_client.api.scopes import create_scope
from roleledger_client.api.users import get_me
from roleledger_client.models import (
    Approval,
    CheckAnswer,
    Grant,
    Me,
    NewGrant,
    NewRequest,
    NewScope,
    Problem,
    Request,
    RequestDetails,
    RequestPage,
    RequestStatus,
    Scope,
)

URL = os.environ["ROLELEDGER_URL"]
TOKENS = json.loads(os.environ["ROLELEDGER_TOKENS"])


def client(user):
    return AuthenticatedClient(base_url=URL, token=TOKENS[user], raise_on_unexpected_status=True)


def answer(response, status, model):
    """The parsed body of a response that must have this status and this model."""
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, model), (type(response.parsed), response.content)
    return response.parsed


root, alice, manager = client("root"), client("alice"), client("manager")

# Signing in registers each user.
for user, user_client in [("root", root), ("alice", alice), ("manager", manager)]:
    me = answer(get_me.sync_detailed(client=user_client), 200, Me)
    assert me.id == user, me
assert answer(get_me.sync_detailed(client=root), 200, Me).admin

# The administrator builds the tree and makes manager the site's operations manager.
for scope_id, kind, parents in [("EGI", "project", []), ("NGI_A", "ngi", ["EGI"]), ("SITE_A", "site", ["NGI_A"])]:
    body = NewScope(id=scope_id, kind=kind, parents=parents, title=scope_id)
    scope = answer(create_scope.sync_detailed(client=root, body=body), 201, Scope)
    assert scope.parents == (parents or ["global"]), scope
body = NewGrant(user="manager", role="site-operations-manager", scope="SITE_A", reason="runs the site")
grant = answer(create_grant.sync_detailed(client=root, body=body), 201, Grant)
assert grant.user == "manager" and grant.status == "active", grant

# alice asks; manager finds the request among those they may decide, and approves it.
body = NewRequest(role="site-administrator", scope="SITE_A", reason="I run the site's storage")
request = answer(create_request.sync_detailed(client=alice, body=body), 201, Request)
assert request.status == RequestStatus.PENDING, request
decidable = answer(list_requests.sync_detailed(client=manager, decidable=True), 200, RequestPage)
assert [r.id for r in decidable.items] == [request.id], decidable
assert decidable.next_ is None, decidable
approved = answer(approve_request.sync_detailed(request.id, client=manager, body=Approval(comment="welcome")), 200, Request)
assert approved.status == RequestStatus.APPROVED and approved.decided_by == "manager", approved
assert approved.grant, approved

# check: alice may now edit the site, through the grant the approval made; not its NGI.
allowed = answer(check.sync_detailed(client=alice, user="alice", permission="scope.edit", scope="SITE_A"), 200, CheckAnswer)
assert allowed.allowed and [via.grant for via in allowed.via] == [approved.grant], allowed
denied = answer(check.sync_detailed(client=alice, user="alice", permission="scope.edit", scope="NGI_A"), 200, CheckAnswer)
assert not denied.allowed and denied.via == [], denied

# Errors come typed as the one Problem schema.
again = answer(approve_request.sync_detailed(request.id, client=manager), 409, Problem)
assert again.code == "not_pending" and again.status == 409, again
nosy = answer(check.sync_detailed(client=manager, user="alice", permission="scope.edit", scope="SITE_A"), 403, Problem)
assert nosy.code == "forbidden", nosy

# alice's view of her request: its history, the grant's included, with who did what.
details = answer(get_request.sync_detailed(request.id, client=alice), 200, RequestDetails)
assert details.status == RequestStatus.APPROVED, details
history = [(entry.type_, entry.actor) for entry in details.history]
assert history[0] == ("RoleRequested", "alice") and ("RoleGranted", "manager") in history, history

print("client story: ok")
