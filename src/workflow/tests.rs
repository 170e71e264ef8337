use super::*;

const BASE: &str = r#"
name = "test"

[settings]
request_ttl = "P7D"
default_roles = ["reader"]

[kinds.org]
title = "Organisation"

[kinds.team]
parents = ["org", "team"]

[roles.reader]
title = "Reader"
kinds = ["global"]
permissions = ["docs.read"]
token_grantable = true

[roles.member]
title = "Member"
kinds = ["team"]
permissions = ["docs.read"]

[roles.lead]
title = "Lead"
kinds = ["team", "org"]
permissions = ["docs.*", "!docs.delete"]
includes = ["member"]

[[rules]]
for_kind = "team"
deciders = ["lead@same", "lead@parent"]
"#;

fn load(text: &str) -> Result<Workflow, WorkflowError> {
    Workflow::from_str(text, "workflows/x.toml")
}

/// 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle} not in text"));
    text[..at].matches('\n').count() + 1
}

/// Loads BASE with `replace` swapped for `with` and asserts the error's line (where `marker`
/// stands) and problem.
fn assert_refused(replace: &str, with: &str, marker: &str, problem: &str) {
    assert!(BASE.contains(replace), "BASE lacks {replace:?}");
    let text = BASE.replacen(replace, with, 1);
    let error = load(&text).expect_err("should be refused");
    assert_eq!(error.file, "workflows/x.toml");
    assert_eq!(error.line, Some(line_of(&text, marker)), "wrong line for {error}");
    assert!(error.problem.contains(problem), "\"{}\" should mention \"{problem}\"", error.problem);
    assert!(error.to_string().starts_with(&format!("workflows/x.toml:{}: ", line_of(&text, marker))));
}

#[test]
fn base_loads_with_builtins() {
    let workflow = load(BASE).unwrap();
    assert_eq!(workflow.name, "test");
    assert!(workflow.roles.contains_key(ADMIN) && workflow.roles.contains_key(AUDITOR));
    assert!(workflow.kinds.contains_key(GLOBAL));
    assert_eq!(workflow.kinds["org"].parents, vec![GLOBAL.to_string()]);
    assert_eq!(workflow.settings.request_ttl.to_string(), "P7D");
    assert_eq!(workflow.settings.reminder_interval.to_string(), "P7D");
    let rule = workflow.rule_for("member", "team").unwrap();
    assert_eq!(rule.id, "kind:team");
    assert_eq!(rule.stages, Stage::single_approval());
    assert!(workflow.rule_for("member", "org").is_none());
}

#[test]
fn the_display_names_file_line_and_problem() {
    let text = BASE.replacen(r#"includes = ["member"]"#, r#"includes = ["foo"]"#, 1);
    let error = load(&text).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("workflows/x.toml:{}: unknown role \"foo\" in include", line_of(&text, "\"foo\""))
    );
}

#[test]
fn unknown_keys_are_refused() {
    assert_refused(
        "[settings]\n",
        "[settings]\nself_approval = true\n",
        "self_approval",
        "unknown field `self_approval`",
    );
    assert_refused("title = \"Lead\"", "title = \"Lead\"\ncolour = \"red\"", "colour", "unknown field `colour`");
    assert_refused("name = \"test\"", "name = \"test\"\nallow_self_approval = true", "allow_self", "unknown field");
    assert_refused(
        "for_kind = \"team\"",
        "for_kind = \"team\"\nself_approval = true",
        "self_approval",
        "unknown field",
    );
}

#[test]
fn unknown_references_are_refused() {
    assert_refused(r#"kinds = ["team"]"#, r#"kinds = ["squad"]"#, "\"squad\"", "unknown scope kind \"squad\"");
    assert_refused(
        r#"parents = ["org", "team"]"#,
        r#"parents = ["org", "dept"]"#,
        "\"dept\"",
        "unknown scope kind \"dept\"",
    );
    assert_refused(r#""lead@parent""#, r#""boss@parent""#, "boss@", "unknown role \"boss\"");
    assert_refused(r#"for_kind = "team""#, r#"for_kind = "squad""#, "squad", "unknown scope kind \"squad\"");
    assert_refused(
        r#"default_roles = ["reader"]"#,
        r#"default_roles = ["writer"]"#,
        "writer",
        "unknown role \"writer\"",
    );
    assert_refused(
        "[settings]\n",
        "[settings]\nincompatible = [[\"lead\", \"ghost\"]]\n",
        "ghost",
        "unknown role \"ghost\"",
    );
    assert_refused("[settings]\n", "[settings]\ncreator_roles = { team = [\"nobody\"] }\n", "nobody", "unknown role");
}

#[test]
fn inclusion_cycles_and_builtins_are_refused() {
    let cyclic = "title = \"Member\"\nincludes = [\"lead\"]";
    let text = BASE.replacen("title = \"Member\"", cyclic, 1);
    let error = load(&text).unwrap_err();
    assert!(error.problem.contains("cycle: lead -> member -> lead"), "{error}");
    assert!([line_of(&text, "includes = [\"lead\"]"), line_of(&text, "includes = [\"member\"]")]
        .contains(&error.line.unwrap()));
    assert_refused(
        r#"includes = ["member"]"#,
        r#"includes = ["member", "admin"]"#,
        "\"admin\"",
        "may not include the built-in role \"admin\"",
    );
    assert_refused(r#"includes = ["member"]"#, r#"includes = ["auditor"]"#, "\"auditor\"", "built-in role \"auditor\"");
    assert_refused("[roles.member]", "[roles.admin]", "[roles.admin", "built in");
    assert_refused(r#""lead@same""#, r#""admin@same""#, "admin@", "built-in role \"admin\"");
}

#[test]
fn bad_durations_are_refused() {
    assert_refused(r#"request_ttl = "P7D""#, r#"request_ttl = "a week""#, "a week", "bad duration");
    assert_refused(r#"request_ttl = "P7D""#, r#"request_ttl = "P1Y""#, "P1Y", "bad duration");
    assert_refused("title = \"Lead\"", "title = \"Lead\"\nmax_duration = \"12x\"", "12x", "bad duration");
}

#[test]
fn unsafe_token_grantable_roles_are_refused() {
    assert_refused(
        "title = \"Lead\"",
        "title = \"Lead\"\ntoken_grantable = true # lead",
        "true # lead",
        "decides requests",
    );
    assert_refused(
        "title = \"Reader\"",
        "title = \"Reader\"\napi_role = true",
        "token_grantable = true",
        "is an API role",
    );
    assert_refused(
        "permissions = [\"docs.read\"]\ntoken_grantable = true",
        "permissions = [\"docs.read\"]\nincludes = [\"lead\"]\ntoken_grantable = true",
        "token_grantable = true",
        "includes \"lead\", which decides requests",
    );
}

#[test]
fn malformed_rules_and_settings_are_refused() {
    assert_refused(
        r#"for_kind = "team""#,
        "for_kind = \"team\"\nfor_role = \"member\"",
        "[[rules]]",
        "exactly one of for_role or for_kind",
    );
    assert_refused(r#""lead@parent""#, r#""lead@above""#, "lead@above", "unknown place \"above\"");
    assert_refused(r#""lead@parent""#, r#""reader@parent""#, "reader@parent", "can never apply");
    assert_refused(
        r#"deciders = ["lead@same", "lead@parent"]"#,
        "deciders = [\"lead@same\"]\nstages = [{ quorum = 0 }]",
        "[[rules]]",
        "quorum of 1 or more",
    );
    let twice = "deciders = [\"lead@same\"]\n\n[[rules]]\nfor_kind = \"team\"\ndeciders = [\"lead@parent\"]";
    let text = BASE.replacen(r#"deciders = ["lead@same", "lead@parent"]"#, twice, 1);
    let error = load(&text).unwrap_err();
    assert!(error.problem.contains("second rule"), "{error}");
    assert_refused(
        "[settings]\n",
        "[settings]\ncreator_roles = { org = [\"member\"] }\n",
        "\"member\"] }",
        "cannot be held on a org scope",
    );
    assert_refused(
        r#"permissions = ["docs.*", "!docs.delete"]"#,
        r#"permissions = ["docs.*", "!Docs.Delete"]"#,
        "!Docs",
        "bad permission",
    );
    assert_refused("[settings]\n", "[settings]\nrole_delete = \"shred\"\n", "shred", "unknown variant");
    assert_refused("[kinds.org]", "[kinds.global]", "[kinds.global", "built in");
}

#[test]
fn toml_syntax_errors_name_their_line() {
    let text = BASE.replacen("title = \"Lead\"", "title = \"Lead", 1);
    let error = load(&text).unwrap_err();
    assert_eq!(error.line, Some(line_of(&text, "title = \"Lead")));
}

#[test]
fn egi_workflow_matches_gocdb() {
    let workflow = Workflow::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/egi.toml")).unwrap();
    let by_kind = |kind: &str| -> Vec<&str> {
        workflow.roles.values().filter(|r| r.kinds == [kind]).map(|r| r.id.as_str()).collect()
    };
    assert_eq!(
        by_kind("site"),
        ["site-administrator", "site-operations-deputy-manager", "site-operations-manager", "site-security-officer"]
    );
    assert_eq!(
        by_kind("ngi"),
        [
            "ngi-operations-deputy-manager",
            "ngi-operations-manager",
            "ngi-security-officer",
            "regional-first-line-support",
            "regional-staff-rod"
        ]
    );
    assert_eq!(by_kind("project"), ["chief-operations-officer", "cod-administrator", "cod-staff", "egi-csirt-officer"]);
    assert_eq!(by_kind("service-group"), ["service-group-administrator"]);
    assert_eq!(workflow.roles.len(), 16);
    assert_eq!(workflow.kinds["site"].parents, ["ngi"]);
    assert_eq!(workflow.kinds["ngi"].parents, ["project"]);
    let deciders = |kind: &str| -> Vec<String> {
        let rule = workflow.rule_for("any", kind).unwrap();
        rule.deciders.iter().map(|d| format!("{}@{}", d.role, d.place)).collect()
    };
    assert_eq!(deciders("site").len(), 6);
    assert!(deciders("site")
        .iter()
        .all(|d| d.starts_with("site-s") || d.starts_with("site-operations") || d.starts_with("ngi-")));
    assert!(!deciders("site").iter().any(|d| d.starts_with("site-administrator") || d.starts_with("regional")));
    assert_eq!(deciders("ngi").len(), 7);
    assert_eq!(deciders("project").len(), 4);
    assert_eq!(deciders("service-group"), ["service-group-administrator@same"]);
}

#[test]
fn every_shipped_workflow_loads() {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows");
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .map(|path| match Workflow::from_file(&path) {
            Ok(workflow) => workflow.name,
            Err(error) => panic!("{error}"),
        })
        .collect();
    names.sort();
    assert_eq!(names, ["clarive", "clustercockpit", "egi", "rancher", "ucp"]);
}

#[test]
fn the_summary_lists_kinds_roles_and_rules() {
    let workflow = load(BASE).unwrap();
    let summary = Summary(&workflow).to_string();
    for line in [
        "workflow \"test\" (workflows/x.toml): ",
        "  global (built in)",
        "  team \"team\" under org, team",
        "  admin: on global; built in; not requestable",
        "  lead: on team, org; decides; includes member; gives docs.* !docs.delete",
        "  reader: on global; token-grantable; gives docs.read",
        "  every role on a team: decided by lead@same, lead@parent; stages approval (1)",
        "roles at run time: immutable; deleting one in use is refused",
        "every new user receives: reader@global",
    ] {
        assert!(
            summary.lines().any(|l| l == line || (line.ends_with(' ') && l.starts_with(line))),
            "{line:?} not in\n{summary}"
        );
    }
}

#[test]
fn questions_and_decision_reasons_are_checked_with_their_line() {
    let asking = "title = \"Lead\"\nquestions = [{ id = \"why\", text = \"Why lead?\", required = true }]";
    let workflow = load(&BASE.replacen("title = \"Lead\"", asking, 1)).unwrap();
    let question = &workflow.roles["lead"].questions[0];
    assert_eq!((question.id.as_str(), question.text.as_str(), question.required), ("why", "Why lead?", true));
    assert!(!workflow.settings.decision_reason_required);
    let twice =
        "title = \"Lead\"\nquestions = [\n  { id = \"why\", text = \"a\" },\n  { id = \"why\", text = \"b\" },\n]";
    assert_refused("title = \"Lead\"", twice, "{ id = \"why\", text = \"b\" }", "asked twice");
    let bad_id = "title = \"Lead\"\nquestions = [{ id = \"Why Me\", text = \"a\" }]";
    assert_refused("title = \"Lead\"", bad_id, "questions = [", "not a valid id");
    let no_text = "title = \"Lead\"\nquestions = [{ id = \"why\", text = \" \" }]";
    assert_refused("title = \"Lead\"", no_text, "questions = [", "has no text");
    let unknown_key = "title = \"Lead\"\nquestions = [{ id = \"why\", text = \"a\", optional = true }]";
    assert_refused("title = \"Lead\"", unknown_key, "questions = [", "unknown field");
    let required = load(&BASE.replacen("[settings]\n", "[settings]\ndecision_reason = \"required\"\n", 1)).unwrap();
    assert!(required.settings.decision_reason_required);
    assert_refused(
        "[settings]\n",
        "[settings]\ndecision_reason = \"always\"\n",
        "always",
        "\"required\" or \"optional\"",
    );
}

#[test]
fn scheduled_reviews_load_and_bad_ones_name_their_line() {
    let review = "\n[[reviews]]\nkind = \"team\"\nevery = \"90d\"\ndue = \"14d\"\non_no_answer = \"revoke\"\n";
    let workflow = load(&format!("{BASE}{review}")).unwrap();
    assert_eq!(workflow.reviews.len(), 1);
    let loaded = &workflow.reviews[0];
    assert_eq!((loaded.kind.as_str(), loaded.on_no_answer), ("team", OnNoAnswer::Revoke));
    assert_eq!((loaded.every.seconds(), loaded.due.seconds()), (90 * 86_400, 14 * 86_400));
    let summary = Summary(&workflow).to_string();
    assert!(
        summary.contains("every team is reviewed every P90D, due in P14D; unreviewed grants are revoked"),
        "{summary}"
    );
    for (from, to, marker, problem) in [
        ("kind = \"team\"", "kind = \"galaxy\"", "galaxy", "unknown scope kind \"galaxy\" in reviews"),
        ("kind = \"team\"", "kind = \"global\"", "kind = \"global\"", "unknown scope kind"),
        ("every = \"90d\"", "every = \"often\"", "often", "bad duration"),
        ("every = \"90d\"", "every = \"P100000000D\"", "P100000000D", "every is longer than 100 years"),
        ("due = \"14d\"", "due = \"100d\"", "100d", "due ≤ every"),
        ("on_no_answer = \"revoke\"", "on_no_answer = \"shrug\"", "shrug", "unknown variant"),
        ("due = \"14d\"", "due = \"14d\"\nwhen = \"monday\"", "when", "unknown field"),
    ] {
        let text = format!("{BASE}{}", review.replacen(from, to, 1));
        let error = load(&text).expect_err("should be refused");
        assert_eq!(error.line, Some(line_of(&text, marker)), "wrong line for {error}");
        assert!(error.problem.contains(problem), "\"{}\" should mention \"{problem}\"", error.problem);
    }
    let twice = format!("{BASE}{review}{review}");
    let error = load(&twice).expect_err("two reviews of one kind");
    assert!(error.problem.contains("two scheduled reviews"), "{error}");
}
