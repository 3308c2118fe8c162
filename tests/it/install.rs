//! `install.sh` under dash against a loopback server laid out as GitHub's
//! releases are (`<base>/download/v<version>/<file>`,
//! `<base>/latest/download/<file>`): it installs the archive for this
//! platform once its SHA256SUMS entry matches, and refuses a tampered file
//! and a version that is not published, installing nothing.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

/// The archive install.sh picks on this machine.
fn archive_name() -> String {
    format!("tf-lock-reaper-{}-unknown-linux-musl.tar.gz", std::env::consts::ARCH)
}

/// A release archive holding a `tf-lock-reaper` that prints `version`.
fn archive(dir: &Path, version: &str) -> Vec<u8> {
    let stage = dir.join(format!("stage-{version}"));
    std::fs::create_dir_all(&stage).unwrap();
    let bin = stage.join("tf-lock-reaper");
    std::fs::write(&bin, format!("#!/bin/sh\necho 'tf-lock-reaper {version}'\n")).unwrap();
    Command::new("chmod").arg("755").arg(&bin).status().unwrap();
    let out = dir.join(format!("{version}.tar.gz"));
    let status = Command::new("tar").arg("-czf").arg(&out).arg("-C").arg(&stage).arg("tf-lock-reaper").status();
    assert!(status.unwrap().success());
    std::fs::read(out).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Serve `files` (path → body) on loopback until the test ends; the base URL.
fn serve(files: HashMap<String, Vec<u8>>) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let resp = match files.get(req.url()) {
                Some(body) => tiny_http::Response::from_data(body.clone()).with_status_code(200),
                None => tiny_http::Response::from_data(b"Not Found".to_vec()).with_status_code(404),
            };
            let _ = req.respond(resp);
        }
    });
    format!("http://127.0.0.1:{port}/releases")
}

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
    let good = archive(tmp.path(), "9.9.9");
    let other = archive(tmp.path(), "6.6.6");
    let name = archive_name();
    let sums = format!("{}  {name}\n{}  tf-lock-reaper-lambda-arm64.zip\n", sha256(&good), sha256(b"zip"));
    let mut files = HashMap::new();
    for prefix in ["/releases/download/v9.9.9", "/releases/latest/download"] {
        files.insert(format!("{prefix}/{name}"), good.clone());
        files.insert(format!("{prefix}/SHA256SUMS"), sums.clone().into_bytes());
    }
    // 9.9.8: its archive was swapped for another after the sums were written.
    files.insert(format!("/releases/download/v9.9.8/{name}"), other);
    files.insert("/releases/download/v9.9.8/SHA256SUMS".to_string(), sums.into_bytes());
    let base = serve(files);

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
/// GitLab component and the README follow it.
#[test]
fn the_repository_url_is_the_manifests_everywhere() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let repo = manifest
        .lines()
        .find_map(|l| l.strip_prefix("repository = \"").and_then(|r| r.strip_suffix('"')))
        .expect("Cargo.toml has a repository");
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh")).unwrap();
    assert!(script.contains(&format!("REPOSITORY=\"{repo}\"")), "install.sh follows Cargo.toml's repository");
    let others = ["/README.md", "/templates/terraform.yml"]
        .map(|f| std::fs::read_to_string(format!("{}{f}", env!("CARGO_MANIFEST_DIR"))).unwrap())
        .join("\n");
    for line in script.lines().chain(others.lines()) {
        if let Some(at) = line.find("https://github.com/") {
            assert!(line[at..].starts_with(repo), "a GitHub URL other than {repo}: {line}");
        }
    }
}
