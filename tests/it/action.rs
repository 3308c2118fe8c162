//! The GitHub Action under node's test runner (`tests/action/`), the way
//! GitHub's runner calls it, against a loopback server holding a release
//! (install.sh's layout), moto and a real Terraform stack; and action.yml's
//! agreement with its scripts.

use std::collections::HashMap;
use std::process::Command;

use crate::common::terraform::Stack;
use crate::common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// This release (Cargo.toml's version, the action's default) and `latest`,
/// whose archive runs the binary under test.
fn release(dir: &std::path::Path) -> String {
    let body = format!("exec '{}' \"$@\"", env!("CARGO_BIN_EXE_tf-lock-reaper"));
    let (name, archive) = release_archive(dir, "action", &body);
    let sums = format!("{}  {name}\n", sha256_hex(&archive));
    let mut files = HashMap::new();
    for prefix in [format!("/releases/download/v{}", env!("CARGO_PKG_VERSION")), "/releases/latest/download".into()] {
        files.insert(format!("{prefix}/{name}"), archive.clone());
        files.insert(format!("{prefix}/SHA256SUMS"), sums.clone().into_bytes());
    }
    serve_releases(files)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_action_installs_and_its_post_step_releases_a_killed_jobs_lock() {
    let moto = Moto::start();
    let stack = Stack::applied_ci_stack(&moto, "gha/terraform.tfstate").await;
    let base = release(stack.path());
    // node 24 from the test venv: the runtime action.yml names.
    let mut node = Command::new(venv_bin("node"));
    node.args(["--test", "--test-reporter=spec", "tests/action/action.test.js"]).current_dir(ROOT);
    // The job's environment: static credentials, Terraform on PATH, the tests' heartbeats.
    let out = stack
        .with_job_env(&moto, &mut node)
        .env("TF_LOCK_REAPER_BASE_URL", &base)
        .env("TEST_STACK_DIR", stack.path())
        .env("TEST_DYNAMODB_ENDPOINT", &moto.url)
        .env("TEST_LOCK_TABLE", "terraform-state-locks")
        .env("TEST_LOCK_PATH", "tfstate/gha/terraform.tfstate")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("node");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node --test tests/action/action.test.js:\n{said}");
    assert!(said.contains("pass 3") && said.contains("fail 0"), "{said}");
    assert!(get_item(&moto.dynamo().await, "terraform-state-locks", "tfstate/gha/terraform.tfstate").await.is_none());
}

/// action.yml runs the scripts that exist, as a node action with an
/// always-run post step, and declares exactly the inputs the scripts read.
#[test]
fn action_yml_agrees_with_its_scripts() {
    let out = Command::new(venv_bin("python"))
        .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"])
        .arg(format!("{ROOT}/action.yml"))
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let action: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = &action["runs"];
    assert!(runs["using"].as_str().unwrap().starts_with("node"), "only a JavaScript action has a post step");
    let node = Command::new(venv_bin("node")).arg("--version").output().expect("node");
    let major =
        String::from_utf8_lossy(&node.stdout).trim().trim_start_matches('v').split('.').next().unwrap().to_string();
    assert_eq!(runs["using"].as_str().unwrap(), format!("node{major}"), "the tests run the node the action names");
    assert_eq!(runs["post-if"], "always()", "the post step runs after a failed or cancelled job");
    let mut read = std::collections::BTreeSet::new();
    for key in ["main", "post"] {
        let script = std::fs::read_to_string(format!("{ROOT}/{}", runs[key].as_str().unwrap())).unwrap();
        read.extend(
            script.split("runner.input('").skip(1).filter_map(|s| s.split_once('\'')).map(|(n, _)| n.to_string()),
        );
    }
    for entry in std::fs::read_dir(format!("{ROOT}/action")).unwrap() {
        let script = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in script.lines().filter(|l| l.contains("require(")) {
            let module = line.split("require('").nth(1).and_then(|s| s.split('\'').next()).unwrap();
            assert!(module.starts_with("node:") || module.starts_with("./"), "node built-ins only: {line}");
        }
    }
    let declared: std::collections::BTreeSet<String> = action["inputs"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(read, declared, "inputs read by the scripts = inputs declared");
}
