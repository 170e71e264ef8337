//! The five workflows of `workflows/` built into the binary, so that `roleledger serve` runs in an
//! empty directory: `--workflow egi` names one; a value with a `/` or ending in `.toml` is a file.

use super::load::WorkflowError;
use super::model::Workflow;
use std::path::Path;

/// The built-in workflows by name, as shipped in `workflows/NAME.toml`.
pub const BUILT_IN: [(&str, &str); 5] = [
    ("egi", include_str!("../../workflows/egi.toml")),
    ("clustercockpit", include_str!("../../workflows/clustercockpit.toml")),
    ("ucp", include_str!("../../workflows/ucp.toml")),
    ("clarive", include_str!("../../workflows/clarive.toml")),
    ("rancher", include_str!("../../workflows/rancher.toml")),
];

/// The default `--workflow`: the built-in EGI (GOCDB) workflow.
pub const DEFAULT_BUILT_IN: &str = "egi";

/// The TOML of the built-in workflow `name`.
pub fn built_in(name: &str) -> Option<&'static str> {
    BUILT_IN.iter().find(|(known, _)| *known == name).map(|(_, text)| *text)
}

/// The built-in workflows' names, comma-separated, for messages.
pub fn built_in_names() -> String {
    BUILT_IN.map(|(name, _)| name).join(", ")
}

/// What a `--workflow` value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowSource<'a> {
    /// A built-in workflow: its name and TOML.
    BuiltIn { name: &'static str, text: &'static str },
    /// A file: the value has a `/` or ends in `.toml`.
    File(&'a Path),
    /// Neither a file nor a built-in name.
    Unknown(&'a Path),
}

impl<'a> WorkflowSource<'a> {
    pub fn of(value: &'a Path) -> WorkflowSource<'a> {
        let text = value.to_string_lossy();
        if text.contains('/') || text.ends_with(".toml") {
            return WorkflowSource::File(value);
        }
        match BUILT_IN.iter().find(|(name, _)| *name == text) {
            Some((name, text)) => WorkflowSource::BuiltIn { name, text },
            None => WorkflowSource::Unknown(value),
        }
    }
}

impl Workflow {
    /// Loads what a `--workflow` value names: a built-in workflow or a file.
    pub fn load(value: impl AsRef<Path>) -> Result<Workflow, WorkflowError> {
        match WorkflowSource::of(value.as_ref()) {
            WorkflowSource::File(path) => Workflow::from_file(path),
            // Tested for each built-in workflow: a problem here is a bug of this binary, said so.
            WorkflowSource::BuiltIn { name, text } => {
                Workflow::from_str(text, &format!("built-in {name}")).map_err(|error| WorkflowError {
                    problem: format!("{} (a bug in roleledger: please report it)", error.problem),
                    ..error
                })
            }
            WorkflowSource::Unknown(value) => Err(WorkflowError {
                file: value.display().to_string(),
                line: None,
                problem: format!(
                    "no built-in workflow has this name (built in: {}); a file's name has a / or ends in .toml",
                    built_in_names()
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_workflow_loads_under_its_name() {
        for (name, _) in BUILT_IN {
            let workflow = Workflow::load(name).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(workflow.name, name);
        }
        assert!(built_in(DEFAULT_BUILT_IN).is_some());
    }

    #[test]
    fn a_slash_or_toml_makes_a_file_and_anything_else_must_be_a_name() {
        assert!(matches!(WorkflowSource::of(Path::new("egi")), WorkflowSource::BuiltIn { name: "egi", .. }));
        assert!(matches!(WorkflowSource::of(Path::new("./egi")), WorkflowSource::File(_)));
        assert!(matches!(WorkflowSource::of(Path::new("egi.toml")), WorkflowSource::File(_)));
        assert!(matches!(WorkflowSource::of(Path::new("EGI")), WorkflowSource::Unknown(_)));
        let error = Workflow::load("gocdb").unwrap_err();
        assert_eq!(
            error.to_string(),
            "gocdb: no built-in workflow has this name (built in: egi, clustercockpit, ucp, clarive, rancher); \
             a file's name has a / or ends in .toml"
        );
        let error = Workflow::load("no/such").unwrap_err();
        assert!(error.to_string().starts_with("no/such: cannot read"), "{error}");
    }
}
