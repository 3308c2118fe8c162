//! `install.sh` under dash against a loopback server laid out as GitHub's
//! releases are (`<base>/download/v<version>/<file>`,
//! `<base>/latest/download/<file>`): it installs the archive for this
//! platform once its SHA256SUMS entry matches, and refuses a tampered file
//! and a version that is not published, installing nothing.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::{release_archive, serve_releases, sha256_hex};

fn install(base: &str, version: Option<&str>, dir: &Path) -> Output {
    let mut cmd = Command::new("dash");
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("TF_LOCK_REAPER_BASE_URL", base)
        .env("TF_LOCK_REAPER_INSTALL_DIR", dir.join("bin"));
    if let Some(v) = version {
        cmd.env("TF_LOCK_REAPER_VERSION", v);
    }
    cmd.output().unwrap()
}

#[test]
fn install_sh_installs_a_checked_release_and_refuses_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (name, good) = release_archive(tmp.path(), "good", "echo 'tf-lock-reaper 9.9.9'");
    let (_, other) = release_archive(tmp.path(), "other", "echo 'tf-lock-reaper 6.6.6'");
    let sums = format!("{}  {name}\n{}  tf-lock-reaper-lambda-arm64.zip\n", sha256_hex(&good), sha256_hex(b"zip"));
    let mut files = HashMap::new();
    for prefix in ["/releases/download/v9.9.9", "/releases/latest/download"] {
        files.insert(format!("{prefix}/{name}"), good.clone());
        files.insert(format!("{prefix}/SHA256SUMS"), sums.clone().into_bytes());
    }
    // 9.9.8: its archive was swapped for another after the sums were written.
    files.insert(format!("/releases/download/v9.9.8/{name}"), other);
    files.insert("/releases/download/v9.9.8/SHA256SUMS".to_string(), sums.into_bytes());
    let base = serve_releases(files);

    for (version, dir) in [(Some("v9.9.9"), "pinned"), (None, "latest")] {
        let dir = tmp.path().join(dir);
        let out = install(&base, version, &dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{version:?}: {err}");
        let v = Command::new(dir.join("bin/tf-lock-reaper")).arg("--version").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "tf-lock-reaper 9.9.9");
        assert!(err.contains("installed tf-lock-reaper 9.9.9 into"), "{err}");
    }

    let refused = |version: &str, why: &str| {
        let dir = tmp.path().join(format!("refused-{version}"));
        let out = install(&base, Some(version), &dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{version}: {err}");
        assert!(err.contains(why), "{version}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(!dir.join("bin/tf-lock-reaper").exists(), "{version}: nothing installed");
    };
    refused("9.9.8", "does not match SHA256SUMS");
    refused("1.2.3", "version 1.2.3 is not published there");

    // A platform no release is built for: said before anything is downloaded.
    let shim = tmp.path().join("freebsd");
    std::fs::create_dir_all(&shim).unwrap();
    std::fs::write(
        shim.join("uname"),
        "#!/bin/sh
[ \"$1\" = -s ] && echo FreeBSD || echo amd64\n",
    )
    .unwrap();
    Command::new("chmod").arg("755").arg(shim.join("uname")).status().unwrap();
    let dir = tmp.path().join("refused-os");
    let out = Command::new("dash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .env("PATH", format!("{}:{}", shim.display(), std::env::var("PATH").unwrap_or_default()))
        .env("TF_LOCK_REAPER_BASE_URL", &base)
        .env("TF_LOCK_REAPER_INSTALL_DIR", dir.join("bin"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("unsupported operating system FreeBSD") && err.contains("cargo install tf-lock-reaper"),
        "{err}"
    );
    assert!(!dir.join("bin").exists(), "nothing installed");
}

/// The repository URL is written once, in Cargo.toml; the installer, the
/// GitLab component, the action, the example and the README follow it.
#[test]
fn the_repository_url_is_the_manifests_everywhere() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let repo = manifest
        .lines()
        .find_map(|l| l.strip_prefix("repository = \"").and_then(|r| r.strip_suffix('"')))
        .expect("Cargo.toml has a repository");
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh")).unwrap();
    assert!(script.contains(&format!("REPOSITORY=\"{repo}\"")), "install.sh follows Cargo.toml's repository");
    let others = ["/README.md", "/templates/terraform.yml", "/action.yml", "/examples/complete/main.tf"]
        .map(|f| std::fs::read_to_string(format!("{}{f}", env!("CARGO_MANIFEST_DIR"))).unwrap())
        .join("\n");
    let slug = repo.strip_prefix("https://github.com/").expect("a GitHub repository");
    let mut actions = 0;
    for line in script.lines().chain(others.lines()) {
        if let Some(at) = line.find("https://github.com/") {
            assert!(line[at..].starts_with(repo), "a GitHub URL other than {repo}: {line}");
        }
        // `uses: <owner>/<name>@<ref>` of this action, in the docs and in action.yml's own comment.
        if let Some(uses) = line.split("uses: ").nth(1).filter(|u| u.contains("tf-lock-reaper@")) {
            assert!(uses.starts_with(&format!("{slug}@")), "the action is {slug}: {line}");
            actions += 1;
        }
    }
    assert!(actions >= 2, "the README and action.yml name the action");
}
