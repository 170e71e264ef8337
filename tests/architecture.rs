//! The direction of imports (ARCHITECTURE.md): adapters around an application layer around a pure
//! core. Fails naming the file and the import when a part reaches outward.

use std::{collections::BTreeSet, fs, path::Path};

/// The top-level modules (`crate::X`) a file names, whatever form its `use` takes.
fn crate_modules(source: &str) -> BTreeSet<String> {
    modules_after(source, "crate::")
}

/// The first segments of the paths that follow `prefix` (`prefix{a::b, c}` names `a` and `c`).
fn modules_after(source: &str, prefix: &str) -> BTreeSet<String> {
    let code: String =
        source.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find(prefix) {
        rest = &rest[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c, d::{e, f}}`: the first segment of each item at depth one.
            let (mut depth, mut item) = (1, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        found.extend(first_segment(&item));
                        item.clear();
                    }
                    _ if depth == 1 => item.push(c),
                    _ => {}
                }
            }
            found.extend(first_segment(&item));
        } else {
            found.extend(first_segment(rest));
        }
    }
    found
}

fn first_segment(path: &str) -> Option<String> {
    let segment: String = path.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!segment.is_empty()).then_some(segment)
}

fn rust_files(folder: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Every file of `part` (a folder of src/, or a single file) imports only `allowed` of the crate.
fn part_imports_only(part: &str, allowed: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let folder = src.join(part);
    if folder.is_dir() {
        rust_files(&folder, &mut files);
    }
    let file = src.join(format!("{part}.rs"));
    if file.is_file() {
        files.push(file);
    }
    assert!(!files.is_empty(), "no source for {part}");
    let mut problems = Vec::new();
    for file in files {
        let source = fs::read_to_string(&file).unwrap();
        for module in crate_modules(&source) {
            if module != part && !allowed.contains(&module.as_str()) {
                problems.push(format!("{} imports crate::{module}", file.strip_prefix(&src).unwrap().display()));
            }
        }
    }
    problems
}

#[test]
fn imports_point_inward() {
    let rules: &[(&str, &[&str])] = &[
        // The pure core: the policy model, then the rules.
        ("workflow", &[]),
        ("domain", &["workflow"]),
        // The application names the core, the projections and the log, never an adapter.
        ("app", &["domain", "workflow", "store", "projections", "testing"]),
        // The projections fold the log into the domain's state.
        ("projections", &["domain", "workflow", "store", "testing"]),
        // The log knows nothing of ours: the writer runs commands through the planner port.
        ("store", &[]),
    ];
    let problems: Vec<String> = rules.iter().flat_map(|(part, allowed)| part_imports_only(part, allowed)).collect();
    assert!(problems.is_empty(), "imports pointing the wrong way:\n{}", problems.join("\n"));
}

/// The pages and the JSON API share only what `routes/` holds beside them (the caller, problems,
/// paging, views and `shared.rs`), never each other's handlers.
#[test]
fn the_api_and_the_pages_never_import_each_other() {
    let routes = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut problems = Vec::new();
    for (part, other) in [("api", "ui"), ("ui", "api")] {
        let mut files = Vec::new();
        rust_files(&routes.join(part), &mut files);
        for file in files {
            let source = fs::read_to_string(&file).unwrap();
            for prefix in ["routes::", "super::super::"] {
                if modules_after(&source, prefix).contains(other) {
                    problems.push(format!("{} names {prefix}{other}", file.display()));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scanner_reads_every_form_of_use() {
    let source = "use crate::{a::b, c, d::{e, f}};\nuse crate::g::h;\n// use crate::ignored;\nlet x = crate::i::j();";
    let found: Vec<String> = crate_modules(source).into_iter().collect();
    assert_eq!(found, ["a", "c", "d", "g", "i"]);
}
