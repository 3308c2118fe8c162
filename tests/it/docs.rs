//! The docs site (`docs/`, mdBook; `make docs` builds it into
//! `target/docs/`) cannot drift from the code:
//!
//! - the configuration page's table matches the variables the code reads
//!   (`config::VARIABLES`): same names, same defaults, nothing missing or extra;
//! - the generated pages (the configuration table from the catalogue, the
//!   CLI's help from clap, the alert kinds, the report's JSON) equal
//!   what the code renders now; `UPDATE_DOCS=1` rewrites them (`make docs`
//!   does), and a stale one fails `make test`;
//! - the runbook has a section for every alert kind the code can send and
//!   every alarm the module creates, at the anchor the links name;
//! - the built site has no broken internal link or anchor;
//! - the README stays a front door (250 lines at most).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tf_lock_reaper::config::{CLI_VARIABLES, VARIABLES};
use tf_lock_reaper::domain::alert::AlertKind;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `| `NAME` | default | meaning |` rows of the configuration page's table.
fn configuration_rows() -> BTreeMap<String, (String, String)> {
    read("docs/src/reference/configuration.md")
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
            let name = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            (cells.len() == 3 && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                .then(|| (name.to_string(), (cells[1].trim_matches('`').to_string(), cells[2].to_string())))
        })
        .collect()
}

#[test]
fn the_configuration_page_matches_the_code() {
    let rows = configuration_rows();
    for v in VARIABLES.iter().chain(CLI_VARIABLES) {
        let (default, meaning) = rows.get(v.name).unwrap_or_else(|| panic!("the configuration page lacks {}", v.name));
        assert_eq!(default, v.default, "documented default of {}", v.name);
        assert_eq!(meaning, v.meaning, "documented meaning of {}", v.name);
    }
    let known: Vec<&str> = VARIABLES.iter().chain(CLI_VARIABLES).map(|v| v.name).collect();
    for name in rows.keys() {
        assert!(known.contains(&name.as_str()), "the docs name {name}, which the code does not read");
    }
}

/// The CLI's help, every command, as clap renders it.
fn cli_help_page() -> String {
    let mut command = <tf_lock_reaper::entrypoints::cli::Cli as clap::CommandFactory>::command();
    command.build();
    let mut out = String::from(
        "# Command-line help\n\nGenerated from the CLI's own definitions (`make docs`; a test fails when this page is \
         stale).\n\n## tf-lock-reaper\n\n```text\n",
    );
    out.push_str(command.render_long_help().to_string().trim_end());
    out.push_str("\n```\n");
    for sub in command.get_subcommands_mut().filter(|s| s.get_name() != "help") {
        out.push_str(&format!("\n## tf-lock-reaper {}\n\n```text\n", sub.get_name()));
        out.push_str(sub.render_long_help().to_string().trim_end());
        out.push_str("\n```\n");
    }
    out
}

/// The alert kinds and their runbook sections.
fn alert_kinds_page() -> String {
    let mut out = String::from(
        "# Alert kinds\n\nEvery kind of alert the code can send, as it names them (PagerDuty `custom_details`, the \
         SNS message attribute `kind`, the chat event type), with its runbook section. Generated from the code \
         (`make docs`).\n\n| Kind | Runbook |\n|---|---|\n",
    );
    for kind in AlertKind::ALL {
        out.push_str(&format!("| `{0}` | [runbook: {0}](../runbook.md#{0}) |\n", kind.as_str()));
    }
    out
}

/// The report `run --json` prints (and the Lambda logs), for one pass over
/// a table with a stale lock, a fresh one and an unreadable item, on a fixed
/// clock with the in-memory fakes.
async fn report_page() -> String {
    use chrono::TimeZone;
    use std::sync::Arc;
    use tf_lock_reaper::fakes::{lock_item, FixedClock, MemoryLockTables, MemoryLockfiles};
    let now = chrono::Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let store = MemoryLockTables::default();
    let info = |id: &str, key: &str, created: &str| {
        format!(
            r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"ci@runner-7","Version":"1.15.5","Created":"{created}","Path":"{key}"}}"#
        )
    };
    for (id, key, created) in [
        ("db4f693e-8b1b-8e4c-d741-a4c77006cd79", "tfstate/prod/terraform.tfstate", "2026-11-26T08:00:00Z"),
        ("acc6180d-b64e-dfb1-0af2-ab82bcc48b40", "tfstate/staging/terraform.tfstate", "2026-11-26T11:50:00Z"),
    ] {
        store.put("terraform-state-locks", lock_item(key, &info(id, key, created)));
    }
    store.put("terraform-state-locks", lock_item("tfstate/broken/terraform.tfstate", "not json"));
    let config = tf_lock_reaper::config::Config::from_vars(
        &crate::common::vars(&[("LOCK_TABLES", "terraform-state-locks"), ("STALE_AFTER", "2h")]),
        tf_lock_reaper::config::EntrypointDefaults { metrics_sink: tf_lock_reaper::config::MetricsSinkKind::None },
    )
    .unwrap();
    let report = tf_lock_reaper::pipeline::Reaper::new(config, Arc::new(store), Arc::new(MemoryLockfiles::default()))
        .with_clock(Arc::new(FixedClock::at(now)))
        .run(tf_lock_reaper::support::deadline::Deadline::none())
        .await;
    format!(
        "# The report's JSON\n\nWhat `tf-lock-reaper run --json` prints and the Lambda logs (its invocation returns a \
         bounded summary of it): one pass with `ACTION=report` over a table holding a stale lock, a fresh one and an \
         item that is not a lock, on a fixed clock. Generated from the code (`make docs`; a test fails when this page \
         is stale).\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(&report).unwrap()
    )
}

/// The configuration page with its table generated from the variable
/// catalogue (the prose around it is written by hand).
fn configuration_page() -> String {
    let page = read("docs/src/reference/configuration.md");
    let lines: Vec<&str> = page.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("| Variable | Default | Meaning |")).expect("the table");
    let end = start + lines[start..].iter().take_while(|l| l.starts_with('|')).count();
    let mut table = vec!["| Variable | Default | Meaning |".to_string(), "|---|---|---|".to_string()];
    for v in VARIABLES.iter().chain(CLI_VARIABLES) {
        let default = if v.default.is_empty() { String::new() } else { format!("`{}`", v.default) };
        table.push(format!("| `{}` | {default} | {} |", v.name, v.meaning));
    }
    let mut out: Vec<String> = lines[..start].iter().map(|l| l.to_string()).collect();
    out.extend(table);
    out.extend(lines[end..].iter().map(|l| l.to_string()));
    out.join("\n") + "\n"
}

#[tokio::test]
async fn the_generated_pages_are_current() {
    for (path, page) in [
        ("docs/src/reference/cli-help.md", cli_help_page()),
        ("docs/src/reference/alert-kinds.md", alert_kinds_page()),
        ("docs/src/reference/report.md", report_page().await),
        ("docs/src/reference/configuration.md", configuration_page()),
    ] {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(repo().join(path), &page).unwrap();
        }
        assert_eq!(read(path), page, "{path} is stale: run `make docs`");
    }
}

/// `{#anchor}` heading ids of a markdown page.
fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| l.split("{#").nth(1).and_then(|a| a.strip_suffix('}')).map(str::to_string))
        .collect()
}

#[test]
fn the_runbook_has_a_section_for_every_alert_kind_and_alarm() {
    let sections = anchors(&read("docs/src/runbook.md"));
    for kind in AlertKind::ALL {
        assert!(sections.contains(kind.as_str()), "the runbook has no section #{}", kind.as_str());
    }
    // The module's alarms link to these (infra/alarms.tf, local.runbook_suffix).
    let alarms = read("infra/alarms.tf");
    let named: Vec<&str> = alarms.split('"').filter(|s| s.starts_with("alarm-")).collect();
    assert!(named.len() >= 4, "{named:?}");
    for section in named {
        assert!(sections.contains(section), "the runbook has no section #{section} (infra/alarms.tf links to it)");
    }
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines: move detail into docs/");
    for link in ["docs/src/runbook.md", "docs/src/guide/ci.md", "docs/src/guide/deploy.md"] {
        assert!(readme.contains(link), "the README links {link}");
    }
}

/// Every `href` and `id` of the built site's pages.
fn site_pages(dir: &Path) -> BTreeMap<PathBuf, (Vec<String>, BTreeSet<String>)> {
    let href = regex_lite::Regex::new(r#"href="([^"]*)""#).unwrap();
    let mut pages = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "html") {
                let html = std::fs::read_to_string(&path).unwrap();
                let hrefs = href.captures_iter(&html).map(|c| c[1].to_string()).collect();
                let ids = crate::common::html_ids(&html);
                pages.insert(path, (hrefs, ids));
            }
        }
    }
    pages
}

/// The broken internal links of the site built in `dir`.
fn broken_links(dir: &Path) -> Vec<String> {
    let pages = site_pages(dir);
    let mut broken = Vec::new();
    for (page, (hrefs, ids)) in &pages {
        for href in hrefs {
            if href.contains("://") || href.starts_with("mailto:") || href.starts_with("javascript:") {
                continue;
            }
            let (file, anchor) = href.split_once('#').unwrap_or((href.as_str(), ""));
            let target = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            let target = std::path::absolute(&target).unwrap_or(target);
            let normal: PathBuf = target.components().fold(PathBuf::new(), |mut p, c| {
                match c {
                    std::path::Component::ParentDir => {
                        p.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => p.push(other),
                }
                p
            });
            let exists = normal.exists();
            let anchored = anchor.is_empty()
                || pages.get(&normal).is_some_and(|(_, ids)| ids.contains(anchor))
                || (file.is_empty() && ids.contains(anchor));
            if !exists || !anchored {
                broken.push(format!("{}: {href}", page.strip_prefix(dir).unwrap_or(page).display()));
            }
        }
    }
    broken
}

#[test]
fn the_built_site_has_no_broken_internal_link_or_anchor() {
    let site = repo().join("target/docs");
    assert!(site.join("index.html").exists(), "target/docs is not built: run `make docs` (make test does)");
    assert!(site.join("runbook.html").exists());
    let broken = broken_links(&site);
    assert!(broken.is_empty(), "broken internal links:\n{}", broken.join("\n"));
    // The checker sees a planted broken link and anchor.
    let planted = tempfile::tempdir().unwrap();
    std::fs::write(planted.path().join("a.html"), r##"<a href="b.html#nowhere">x</a><a href="c.html">y</a>"##).unwrap();
    std::fs::write(planted.path().join("b.html"), r#"<h2 id="here">b</h2>"#).unwrap();
    assert_eq!(broken_links(planted.path()), ["a.html: b.html#nowhere", "a.html: c.html"]);
}

/// Every IAM action the module grants (and so, by the IAM tests, every one
/// the code calls) is named in the module's documentation, which the site
/// includes.
#[test]
fn every_iam_action_the_module_grants_is_documented() {
    let action = regex_lite::Regex::new(
        r#""((?:dynamodb|s3|sns|sqs|secretsmanager|cloudwatch|organizations|sts|kms|logs|xray):[A-Za-z]+)""#,
    )
    .unwrap();
    let mut granted = BTreeSet::new();
    for dir in ["infra", "infra/modules/member-access", "infra/modules/member-access-stackset"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "tf") {
                let text = std::fs::read_to_string(&path).unwrap();
                granted.extend(action.captures_iter(&text).map(|c| c[1].to_string()));
            }
        }
    }
    assert!(granted.len() > 20, "{granted:?}");
    // An action is named in full (`s3:GetObject`), or by its name in a list of its service's (`GetItem`).
    let docs = read("infra/README.md") + &read("docs/src/guide/deploy.md");
    let missing: Vec<&String> = granted
        .iter()
        .filter(|a| {
            let name = a.split(':').nth(1).unwrap_or_default();
            !docs.contains(a.as_str()) && !docs.contains(&format!("`{name}`"))
        })
        .collect();
    assert!(missing.is_empty(), "granted but not documented: {missing:?}");
}
