//! Keeps the source tree's layering true. Reads every module under `src/`
//! (not the binaries, not `#[cfg(test)] mod tests` blocks or `tests.rs`
//! files: tests may reach across rooms, e.g. to the fakes), collects the
//! modules each one names through `crate::…` paths, and fails when
//! - the module graph has a cycle,
//! - a room (top-level folder) imports a room it may not (imports run one
//!   way: entrypoints → wiring → adapters / pipeline → ports / config →
//!   domain → support), or
//! - a module of the pure rooms names the AWS SDK, `reqwest`, `tokio` or
//!   `lambda_runtime`;
//! - the pure core's own crate (`core/`, the `domain` room) could name one:
//!   its `Cargo.toml` lists no I/O crate and chrono without its clock, so the
//!   compiler refuses them there (and `make test` builds it for wasm32).
//!
//! The checks are plain functions over (module, source text) pairs, so the
//! tests below also prove they catch a planted cycle and a planted import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which rooms each room may import (besides itself).
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("support", &["domain"]),
    ("config", &["domain", "support"]),
    ("ports", &["domain", "support"]),
    ("pipeline", &["ports", "config", "domain", "support"]),
    ("adapters", &["ports", "domain", "support"]),
    ("fakes", &["ports", "domain", "support"]),
    ("exec", &["ports", "config", "domain", "support"]),
    ("doctor", &["ports", "config", "domain", "support"]),
    ("discovery", &["ports", "config", "domain", "support"]),
    ("wiring", &["adapters", "pipeline", "exec", "discovery", "ports", "config", "domain", "support"]),
    ("entrypoints", &["wiring", "pipeline", "exec", "doctor", "discovery", "ports", "config", "domain", "support"]),
];

/// Rooms that must stay free of I/O crates: only `adapters`, `wiring` and
/// `entrypoints` may name them.
const PURE_ROOMS: &[&str] = &["support", "domain", "config", "ports", "pipeline", "doctor", "discovery", "fakes"];
const IO_CRATES: &[&str] =
    &["aws_sdk_", "aws_config", "aws_smithy_", "aws_types", "reqwest", "tokio", "lambda_runtime"];

/// `src/domain/alert/mod.rs` → `domain::alert`; `src/wiring.rs` → `wiring`.
fn module_name(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("a file name");
    if last != "mod.rs" {
        parts.push(last.trim_end_matches(".rs").to_string());
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "bin") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "lib.rs" && n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// Every module of the crate with its production source text (comments and
/// the trailing `#[cfg(test)] mod tests` block removed). The pure core
/// (`core/src`, its own crate, re-exported as `domain`) is read as the
/// `domain` room: its `crate::x` is the service's `crate::domain::x`.
fn modules() -> BTreeMap<String, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = BTreeMap::new();
    for (src, room) in [(root.join("src"), None), (root.join("core/src"), Some("domain"))] {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read module");
            let code = production_code(&text);
            match room {
                None => out.insert(module_name(&src, &f), code),
                Some(room) => {
                    out.insert(format!("{room}::{}", module_name(&src, &f)), code.replace("crate::", "crate::domain::"))
                }
            };
        }
    }
    out.insert("domain".into(), String::new());
    out
}

fn production_code(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The crate modules a module's code names: for each `crate::a::b::Item`
/// path, the longest prefix that is a module.
fn imports(code: &str, known: &BTreeSet<String>) -> Result<BTreeSet<String>, String> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `my_crate::`
        }
        let rest = &code[i + "crate::".len()..];
        if rest.starts_with('{') {
            return Err("`use crate::{…}` groups hide which modules are imported: write one `use` per module".into());
        }
        let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let longest = (1..=segments.len()).rev().map(|n| segments[..n].join("::")).find(|m| known.contains(m));
        match longest {
            Some(m) => {
                found.insert(m);
            }
            None => return Err(format!("`crate::{path}` names no module")),
        }
    }
    Ok(found)
}

fn room(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// Every violation of the layering rules, one line each.
fn violations(modules: &BTreeMap<String, String>) -> Vec<String> {
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut problems = Vec::new();
    let mut graph: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in modules {
        let from = room(module);
        let Some(may) = allowed.get(from) else {
            problems.push(format!("{module}: the room `{from}` has no layering rule (add it to ALLOWED)"));
            continue;
        };
        match imports(code, &known) {
            Err(e) => problems.push(format!("{module}: {e}")),
            Ok(targets) => {
                for t in &targets {
                    let to = room(t);
                    if to != from && !may.contains(&to) {
                        problems.push(format!("{module} imports {t}: `{from}` may not import `{to}`"));
                    }
                }
                graph.insert(module, targets.into_iter().filter(|t| t != module).collect());
            }
        }
        if PURE_ROOMS.contains(&from) {
            for krate in IO_CRATES {
                let named = code.match_indices(krate).any(|(i, _)| {
                    let before = code[..i].chars().next_back();
                    !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                        && code[i + krate.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if named {
                    problems.push(format!("{module} names `{krate}`: `{from}` must stay free of I/O crates"));
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        problems.push(format!("import cycle: {}", cycle.join(" → ")));
    }
    problems
}

/// A cycle in the module graph, as the list of modules around it.
fn find_cycle(graph: &BTreeMap<&str, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<&str, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Visiting);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_source_tree_is_layered_without_cycles() {
    let modules = modules();
    assert!(modules.len() > 20, "found only {} modules", modules.len());
    let problems = violations(&modules);
    assert!(problems.is_empty(), "layering broken:\n  {}", problems.join("\n  "));
}

#[test]
fn every_module_is_in_a_room_with_a_rule() {
    let rooms: BTreeSet<&str> = ALLOWED.iter().map(|(r, _)| *r).collect();
    for module in modules().keys() {
        assert!(rooms.contains(room(module)), "{module} is in no known room");
    }
}

#[test]
fn a_planted_cycle_is_caught() {
    let mut modules = modules();
    // domain::lock naming domain::report closes a loop: report → lock → report.
    modules.get_mut("domain::lock").expect("domain::lock").push_str("\nuse crate::domain::report::LockReport;\n");
    let problems = violations(&modules);
    assert!(problems.iter().any(|p| p.starts_with("import cycle:")), "{problems:?}");
}

#[test]
fn a_planted_upward_import_and_an_sdk_type_in_the_domain_are_caught() {
    let mut modules = modules();
    let policy = modules.get_mut("domain::policy").expect("domain::policy");
    policy.push_str("\nuse crate::adapters::dynamodb_locks::DynamoLockTables;\nfn f(_: aws_sdk_dynamodb::Client) {}\n");
    let problems = violations(&modules);
    assert!(problems.iter().any(|p| p.contains("`domain` may not import `adapters`")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("names `aws_sdk_`")), "{problems:?}");
}

#[test]
fn grouped_and_nested_paths_resolve_to_their_module() {
    let known: BTreeSet<String> =
        ["domain", "domain::alert", "domain::alert::text", "ports"].iter().map(|s| s.to_string()).collect();
    let code = "use crate::domain::alert::{AlertKind, Event};\nlet x = crate::domain::alert::text::clean(s, \
        3);\nuse crate::ports::SourceError;";
    let got = imports(code, &known).unwrap();
    let want: BTreeSet<String> =
        ["domain::alert", "domain::alert::text", "ports"].iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want);
    assert!(imports("use crate::{a, b};", &known).is_err());
}

/// The core crate's dependencies are what keeps it pure: none of them does
/// I/O, and chrono comes without `clock` (no `Utc::now()`).
#[test]
fn the_core_crate_cannot_name_an_io_crate_or_a_clock() {
    let manifest = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("core/Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).and_then(|d| d.split("\n[").next()).expect("[dependencies]");
    let names: Vec<&str> =
        deps.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k.trim())).filter(|k| !k.is_empty()).collect();
    assert!(names.len() >= 5, "{names:?}");
    for name in &names {
        for banned in ["aws", "tokio", "reqwest", "hyper", "lambda_runtime", "lambda-runtime", "nix", "tracing"] {
            assert!(!name.starts_with(banned), "the core crate names {name}");
        }
    }
    let chrono = deps.lines().find(|l| l.starts_with("chrono")).expect("chrono");
    assert!(
        chrono.contains("default-features = false") && !chrono.contains("clock"),
        "chrono without its clock: {chrono}"
    );
    let service = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    assert!(service.contains("tf-lock-reaper-core = { path = \"core\""), "the service depends on the core crate");
}
