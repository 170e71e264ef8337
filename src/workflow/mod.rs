//! Workflow files: one TOML file is one complete role policy.
//!
//! ```toml
//! name = "egi"                       # optional, defaults to the file name
//! description = "GOCDB's rules"
//!
//! [settings]                         # every key optional
//! request_ttl = "P30D"               # pending requests expire after this (default 30 days)
//! reminder_interval = "P7D"          # remind deciders of requests pending this long (default 7 days)
//! default_grant_duration = "P365D"   # grant length when a request names none (default: no end)
//! max_grant_duration = "P730D"       # longest grant, whatever the role says
//! incompatible = [["a", "b"]]        # nobody holds both (anywhere)
//! admin_mailbox = "ops@example.org"  # fallback when a request reaches nobody
//! roles_editable = false             # may admins edit roles at run time
//! role_delete = "refuse"             # or "revoke": deleting a role in use revokes its grants
//! creator_roles = { site = ["site-operations-manager"] }  # given to whoever creates a scope of that kind
//! default_roles = ["user", "scheduler@shared"]            # every new user gets these (no @ means global)
//!
//! [kinds.ngi]                        # scope kinds; `global` is built in
//! title = "NGI"
//! parents = ["project"]              # kinds its scopes may sit under; none means under global.
//!                                    # Name "global" too to allow both; a kind may name itself.
//! [roles.site-operations-manager]
//! title = "Site Operations Manager"
//! description = "…"
//! kinds = ["site"]                   # kinds of scope it may be held on
//! permissions = ["scope.edit", "topics.*", "!topics.delete", "view:incident"]
//! scope_permissions = ["scope.create"]  # on the scope alone, never below it, whatever `applies` says
//! includes = ["site-administrator"]  # additive; never admin or auditor; no cycles
//! applies = "subtree"                # or "scope": the scope alone
//! mailbox = "{scope}-ops@example.org"
//! requestable = true                 # default true
//! max_duration = "P365D"
//! token_grantable = false            # a login token may carry it (never a deciding or API role)
//! api_role = false                   # holders may create API tokens for themselves
//! locked = false                     # no new assignments (creator and default roles still apply)
//!
//! [implications]                     # holding the key gives the listed permissions too
//! "resources.admin" = ["resources.view"]
//!
//! [[rules]]                          # who decides what; exactly one of for_role / for_kind
//! for_kind = "site"                  # every role held on a site, unless a for_role rule names it
//! deciders = ["site-operations-manager@same", "ngi-operations-manager@parent"]
//!                                    # ROLE@same|parent|ancestor|global: where the decider holds ROLE
//! actions = ["approve", "reject", "revoke"]        # default all three
//! stages = [{ name = "review", quorum = 2 }, { quorum = 1 }]  # default one stage of quorum 1
//! ```
//!
//! Built-in: scope kind and scope `global`; roles `admin` and `auditor`, held on `global`, never
//! requestable, token-grantable or includable. Admins decide everything, but nobody decides to their
//! own benefit, and no key can change that. Durations are ISO 8601 (`P30D`, `PT12H`, `P1DT2H`) or
//! short (`30d`, `12h`, `15m`). Unknown keys, dangling references, inclusion cycles, bad durations
//! and unsafe token-grantable roles are refused as `FILE:LINE: PROBLEM`.

mod builtin;
mod catalogue;
mod duration;
pub mod fast_hash;
mod load;
mod model;
pub mod permission;
mod summary;

pub use builtin::{built_in, built_in_names, WorkflowSource, BUILT_IN, DEFAULT_BUILT_IN};
pub use catalogue::{
    check_catalogue, is_valid_id, is_valid_scope_id, mail_address_problem, role_closure, RoleField, RoleProblem,
};
pub use duration::Duration;
pub use load::WorkflowError;
pub use model::*;
pub use summary::Summary;

#[cfg(test)]
mod tests;
