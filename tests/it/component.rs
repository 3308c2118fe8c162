//! The GitLab CI/CD component `templates/terraform.yml`, offline: its
//! `spec: inputs` header and job body agree (every input used is declared,
//! every declared input is used, the command has no default), and its
//! commands run as GitLab runs them: `before_script` installs the release
//! from a loopback server with `install.sh` and checks it, `script` runs
//! real Terraform under `exec` against moto, and `after_script`, in a shell
//! of its own, releases what was recorded.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use crate::common::terraform::Stack;
use crate::common::*;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/terraform.yml");

/// The template's two YAML documents, as JSON (PyYAML from the test venv).
fn documents() -> (serde_json::Value, serde_json::Value) {
    let out = Command::new(venv_bin("python"))
        .args(["-c", "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))"])
        .arg(TEMPLATE)
        .output()
        .expect("python");
    assert!(out.status.success(), "the template is YAML: {}", String::from_utf8_lossy(&out.stderr));
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(docs.len(), 2, "a spec header and the job");
    (docs[0].clone(), docs[1].clone())
}

/// `$[[ inputs.NAME ]]` references in `text`.
fn references(text: &str) -> BTreeSet<String> {
    text.split("$[[ inputs.").skip(1).filter_map(|rest| rest.split_once(" ]]").map(|(n, _)| n.to_string())).collect()
}

fn lines(job: &serde_json::Value, key: &str) -> Vec<String> {
    job[key]
        .as_array()
        .unwrap_or_else(|| panic!("the job has {key}"))
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_components_header_and_body_agree() {
    let (header, body) = documents();
    let inputs = header["spec"]["inputs"].as_object().expect("spec: inputs");
    let declared: BTreeSet<String> = inputs.keys().cloned().collect();
    for name in ["command", "working_directory", "version", "job_name", "init"] {
        assert!(declared.contains(name), "input {name}");
    }
    // Its own release by default, as the action pins its own: the crate's version.
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let version = manifest.lines().find_map(|l| l.strip_prefix("version = \"")).and_then(|v| v.strip_suffix('"'));
    assert_eq!(inputs["version"]["default"].as_str(), version, "the component's version default is the crate's");
    // The job's name is an input, so the component can be included twice (plan and apply).
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["$[[ inputs.job_name ]]"]);
    assert!(
        lines(body.as_object().unwrap().values().next().unwrap(), "script")
            .iter()
            .any(|l| l.contains("terraform init -input=false")),
        "it runs init"
    );
    assert!(inputs["command"].get("default").is_none(), "the command is required");
    assert!(inputs.values().all(|i| i["description"].is_string()), "every input is described");
    let text = std::fs::read_to_string(TEMPLATE).unwrap();
    let body_text = text.split("\n---\n").nth(1).unwrap();
    assert_eq!(references(body_text), declared, "every input used is declared and every declared one is used");
    let job = body.as_object().unwrap().values().next().unwrap();
    assert!(lines(job, "script").iter().any(|l| l.contains("tf-lock-reaper exec -- $[[ inputs.command ]]")));
    assert!(lines(job, "after_script").iter().any(|l| l.ends_with("tf-lock-reaper release")));
    assert!(lines(job, "before_script").iter().any(|l| l.ends_with("tf-lock-reaper --version")), "checked");
}

/// A release as the installer finds it: install.sh, this platform's
/// archive (whose `tf-lock-reaper` runs the binary under test) and SHA256SUMS.
fn release(dir: &std::path::Path) -> String {
    let body = format!("exec '{}' \"$@\"", env!("CARGO_BIN_EXE_tf-lock-reaper"));
    let (name, archive) = release_archive(dir, "release", &body);
    let sum = sha256_hex(&archive);
    let installer = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh")).unwrap();
    let prefix = "/releases/latest/download";
    serve_releases(HashMap::from([
        (format!("{prefix}/install.sh"), installer),
        (format!("{prefix}/{name}"), archive),
        (format!("{prefix}/SHA256SUMS"), format!("{sum}  {name}\n").into_bytes()),
    ]))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_components_commands_install_run_terraform_under_exec_and_release() {
    let moto = Moto::start();
    let stack = Stack::applied_ci_stack(&moto, "ci/terraform.tfstate").await;
    let base = release(stack.path());
    let (_, body) = documents();
    let job = body.as_object().unwrap().values().next().unwrap().clone();
    let inputs = [
        ("command", "terraform apply -auto-approve -input=false -no-color -var=hang_seconds=2"),
        ("working_directory", "."),
        ("version", "latest"),
        ("stage", "deploy"),
        ("job_name", "apply"),
        ("init", "true"),
    ];
    let fill =
        |line: &str| inputs.iter().fold(line.to_string(), |l, (k, v)| l.replace(&format!("$[[ inputs.{k} ]]"), v));
    let variables: String = job["variables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("export {k}=\"{}\"\n", fill(v.as_str().unwrap())))
        .collect();
    // As a runner does: the job's variables, then each section in a shell of its own, stopping at a failure.
    let shell = |section: &[&str]| {
        let commands: Vec<String> = section.iter().flat_map(|k| lines(&job, k)).map(|l| fill(&l)).collect();
        let script = format!("set -e\n{variables}{}\n", commands.join("\n"));
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).current_dir(stack.path());
        stack
            .with_job_env(&moto, &mut cmd)
            .env("CI_PROJECT_DIR", stack.path())
            .env("TF_LOCK_REAPER_BASE_URL", &base)
            .output()
            .unwrap()
    };
    let job_run = shell(&["before_script", "script"]);
    let said = format!("{}{}", String::from_utf8_lossy(&job_run.stdout), String::from_utf8_lossy(&job_run.stderr));
    assert!(job_run.status.success(), "{said}");
    assert!(said.contains("installed tf-lock-reaper") && said.contains("Apply complete!"), "{said}");
    assert!(said.contains("tf-lock-reaper exec: following lock"), "the apply ran under exec: {said}");
    let after = shell(&["after_script"]);
    let said = format!("{}{}", String::from_utf8_lossy(&after.stdout), String::from_utf8_lossy(&after.stderr));
    assert!(after.status.success(), "{said}");
    assert!(said.contains("nothing to release"), "{said}");
    assert!(get_item(&moto.dynamo().await, "terraform-state-locks", "tfstate/ci/terraform.tfstate").await.is_none());
}
