//! The release writers (`tools/release_files.py`, used by `make release`):
//! the same inputs give the same bytes whatever the files' own times, modes
//! and directories, with sorted entries stamped SOURCE_DATE_EPOCH, owner 0,
//! and executables 0755; SHA256SUMS covers every other file and verifies;
//! the SBOM merge is stable. The release build itself is not run here:
//! `make check-release` runs the ignored test at the end on what `make
//! release` wrote (static CLI in an empty root, each zip's ELF architecture,
//! one invocation of the x86_64 `bootstrap` under the Runtime API emulator).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const WRITER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/release_files.py");

/// `release_files.py ARGS` with `SOURCE_DATE_EPOCH=epoch`.
fn run_writer(epoch: &str, args: &[&str]) -> std::process::Output {
    Command::new("python3").arg(WRITER).args(args).env("SOURCE_DATE_EPOCH", epoch).output().unwrap()
}

fn writer(epoch: &str, args: &[&str]) {
    let out = run_writer(epoch, args);
    assert!(out.status.success(), "release_files.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Inputs in `dir`, with this directory's own mtimes and modes: `exec` for
/// the binary (executable to its owner at least), `doc` for the others.
fn inputs(dir: &Path, mtime: &str, (exec, doc): (&str, &str)) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let files = (dir.join("bin"), dir.join("LICENSE"), dir.join("README.md"));
    std::fs::write(&files.0, b"\x7fELF pretend").unwrap();
    std::fs::write(&files.1, "Apache-2.0\n").unwrap();
    std::fs::write(&files.2, "# tf-lock-reaper\n").unwrap();
    for (f, mode) in [(&files.0, exec), (&files.1, doc), (&files.2, doc)] {
        assert!(Command::new("chmod").arg(mode).arg(f).status().unwrap().success());
        assert!(Command::new("touch").arg("-d").arg(mtime).arg(f).status().unwrap().success());
    }
    files
}

/// Each entry of an archive: name, mode, mtime, owner, as Python reads it.
fn entries(archive: &Path) -> serde_json::Value {
    let script = "import json, sys, tarfile, zipfile, calendar
p = sys.argv[1]
if p.endswith('.zip'):
    z = zipfile.ZipFile(p)
    print(json.dumps([[i.filename, oct(i.external_attr >> 16), calendar.timegm(i.date_time + (0, 0, 0))] for i in z.infolist()]))
else:
    t = tarfile.open(p)
    print(json.dumps([[m.name, oct(m.mode), m.mtime, m.uid, m.gid, m.uname, m.gname, m.isfile()] for m in t.getmembers()]))";
    let out = Command::new("python3").args(["-c", script]).arg(archive).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_archive_writer_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let a = inputs(&tmp.path().join("clone-a/target"), "2020-01-02 03:04:05", ("700", "600"));
    let b = inputs(&tmp.path().join("elsewhere/clone-b/target"), "2026-12-05 11:00:00", ("775", "664"));
    let epoch = "1764900000";
    let write = |label: &str, (bin, license, readme): &(PathBuf, PathBuf, PathBuf), epoch: &str| {
        let tar = tmp.path().join(format!("{label}.tar.gz"));
        let zip = tmp.path().join(format!("{label}.zip"));
        let arg = |name: &str, path: &Path| format!("{name}={}", path.display());
        // The entries in another order each time: the writer sorts them.
        writer(
            epoch,
            &[
                "tar",
                tar.to_str().unwrap(),
                &arg("tf-lock-reaper", bin),
                &arg("README.md", readme),
                &arg("LICENSE", license),
            ],
        );
        writer(epoch, &["zip", zip.to_str().unwrap(), &arg("bootstrap", bin)]);
        (std::fs::read(&tar).unwrap(), std::fs::read(&zip).unwrap(), tar, zip)
    };
    let (tar_a, zip_a, tar_path, zip_path) = write("a", &a, epoch);
    let (tar_b, zip_b, _, _) = write("b", &b, epoch);
    assert!(tar_a == tar_b, "tar.gz: same inputs, other directory, times and modes, same bytes");
    assert!(zip_a == zip_b, "zip: same inputs, other directory, times and modes, same bytes");
    let (tar_later, zip_later, _, _) = write("later", &a, "1764903600");
    assert!(tar_later != tar_a && zip_later != zip_a, "SOURCE_DATE_EPOCH is what stamps them");

    let t = 1764900000;
    assert_eq!(
        entries(&tar_path),
        serde_json::json!([
            ["LICENSE", "0o644", t, 0, 0, "", "", true],
            ["README.md", "0o644", t, 0, 0, "", "", true],
            ["tf-lock-reaper", "0o755", t, 0, 0, "", "", true],
        ]),
        "sorted, at the root (where cargo-binstall and install.sh look), stamped, owned by 0"
    );
    // gzip header: no file name (FLG bit 3), MTIME = the epoch.
    assert_eq!(tar_a[3] & 0x08, 0, "no file name in the gzip header");
    assert_eq!(u32::from_le_bytes(tar_a[4..8].try_into().unwrap()), t as u32);
    assert_eq!(
        entries(&zip_path),
        serde_json::json!([["bootstrap", "0o100755", t]]),
        "only bootstrap, executable for Lambda"
    );

    let out = run_writer("0", &["tar", "x.tar.gz", "a/b=README.md"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NAME=PATH with a plain file name"));
    let out = run_writer("yesterday", &["zip", "x.zip", "bootstrap=x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOURCE_DATE_EPOCH='yesterday' is not a number of seconds"));
}

#[test]
fn sha256sums_covers_every_other_file_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in [("b.zip", "zip"), ("a.tar.gz", "tar"), ("install.sh", "#!/bin/sh\n")] {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    std::fs::write(dir.path().join("SHA256SUMS"), "stale\n").unwrap();
    writer("0", &["sums", dir.path().to_str().unwrap()]);
    let sums = std::fs::read_to_string(dir.path().join("SHA256SUMS")).unwrap();
    let names: Vec<&str> = sums.lines().map(|l| l.split_once("  ").unwrap().1).collect();
    assert_eq!(names, ["a.tar.gz", "b.zip", "install.sh"], "sorted, every file but itself");
    assert!(sums.starts_with(&format!("{}  a.tar.gz\n", sha256_hex(b"tar"))));
    let check =
        Command::new("sha256sum").args(["-c", "--strict", "SHA256SUMS"]).current_dir(dir.path()).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}

#[test]
fn the_sbom_is_one_stable_union_of_what_each_binary_contains() {
    let dir = tempfile::tempdir().unwrap();
    // As auditable2cdx writes them: bom-refs are each binary's own indices,
    // so "1" is clap in one and lambda_runtime in the other.
    let bom = |name: &str, serial: &str, comps: &[&str], deps: &[(&str, &[&str])]| {
        let purl = |c: &str| format!("pkg:cargo/{c}");
        let doc = serde_json::json!({
            "bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": serial, "version": 1,
            "metadata": {"component": {"name": "tf-lock-reaper", "bom-ref": "9", "purl": purl("tf-lock-reaper@0.1.0")}},
            "components": comps.iter().enumerate()
                .map(|(i, c)| serde_json::json!({"bom-ref": i.to_string(), "name": c, "purl": purl(c)}))
                .collect::<Vec<_>>(),
            "dependencies": deps.iter().map(|(r, d)| serde_json::json!({"ref": r, "dependsOn": d})).collect::<Vec<_>>(),
        });
        let path = dir.path().join(name);
        std::fs::write(&path, doc.to_string()).unwrap();
        path.display().to_string()
    };
    let cli = bom("cli.json", "urn:uuid:1", &["tokio@1", "clap@4"], &[("9", &["1", "0"])]);
    let lambda = bom("lambda.json", "urn:uuid:2", &["tokio@1", "lambda_runtime@1"], &[("9", &["1"]), ("1", &["0"])]);
    let out = |name: &str, order: [&str; 2]| {
        let path = dir.path().join(name);
        writer("0", &["sbom", path.to_str().unwrap(), order[0], order[1]]);
        std::fs::read_to_string(path).unwrap()
    };
    let (one, two) = (out("one.json", [&cli, &lambda]), out("two.json", [&lambda, &cli]));
    let doc: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert!(doc.get("serialNumber").is_none(), "a random serial number would make every build differ");
    let refs: Vec<&str> =
        doc["components"].as_array().unwrap().iter().map(|c| c["bom-ref"].as_str().unwrap()).collect();
    assert_eq!(refs, ["pkg:cargo/clap@4", "pkg:cargo/lambda_runtime@1", "pkg:cargo/tokio@1"], "keyed by purl");
    assert_eq!(
        doc["dependencies"],
        serde_json::json!([
            {"ref": "pkg:cargo/lambda_runtime@1", "dependsOn": ["pkg:cargo/tokio@1"]},
            {"ref": "pkg:cargo/tf-lock-reaper@0.1.0", "dependsOn": ["pkg:cargo/clap@4", "pkg:cargo/lambda_runtime@1", "pkg:cargo/tokio@1"]},
        ]),
        "each binary's indices rewritten to the components they meant"
    );
    assert_eq!(doc["metadata"]["component"]["bom-ref"], "pkg:cargo/tf-lock-reaper@0.1.0");
    let without_metadata = |text: &str| {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        v.as_object_mut().unwrap().remove("metadata");
        v
    };
    assert_eq!(without_metadata(&one), without_metadata(&two), "the order of the binaries does not matter");
}

/// What `make release` wrote (TF_LOCK_REAPER_RELEASE_DIR, default
/// target/dist): every file, SHA256SUMS verifying, the static CLI running in
/// an empty root, each zip's `bootstrap` an ELF of its architecture with the
/// dependency list cargo-auditable embeds, and the x86_64 one answering an
/// invocation under the Runtime API emulator.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the files of `make release`: run by `make check-release`"]
async fn the_built_release_files_work() {
    let dir = PathBuf::from(
        std::env::var("TF_LOCK_REAPER_RELEASE_DIR")
            .unwrap_or(concat!(env!("CARGO_MANIFEST_DIR"), "/target/dist").into()),
    );
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "SHA256SUMS",
            "install.sh",
            "tf-lock-reaper-aarch64-unknown-linux-musl.tar.gz",
            "tf-lock-reaper-lambda-arm64.zip",
            "tf-lock-reaper-lambda-x86_64.zip",
            "tf-lock-reaper-x86_64-unknown-linux-musl.tar.gz",
            "tf-lock-reaper.cdx.json",
        ]
    );
    let check = Command::new("sha256sum").args(["-c", "--strict", "SHA256SUMS"]).current_dir(&dir).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tf-lock-reaper.cdx.json")).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    let components: Vec<&str> =
        sbom["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for dep in ["aws-sdk-dynamodb", "clap", "lambda_runtime", "rustls", "tokio"] {
        assert!(components.contains(&dep), "the SBOM lists {dep}: {components:?}");
    }

    let tmp = tempfile::tempdir().unwrap();
    // The static CLI in an empty root: no libc, no /etc, nothing but itself.
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(dir.join("tf-lock-reaper-x86_64-unknown-linux-musl.tar.gz"))
        .arg("-C")
        .arg(&root)
        .status();
    assert!(tar.unwrap().success());
    let out = Command::new("unshare")
        .args(["-r", "chroot"])
        .arg(&root)
        .args(["/tf-lock-reaper", "--version"])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin") // for unshare to find chroot; the root itself is empty
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("tf-lock-reaper {}", env!("CARGO_PKG_VERSION")));

    for (arch, machine) in [("x86_64", 0x3e_u16), ("arm64", 0xb7)] {
        let unpacked = tmp.path().join(arch);
        let unzip = Command::new("python3")
            .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.namelist() == ['bootstrap'], z.namelist(); z.extractall(sys.argv[2])"])
            .arg(dir.join(format!("tf-lock-reaper-lambda-{arch}.zip")))
            .arg(&unpacked)
            .output()
            .unwrap();
        assert!(unzip.status.success(), "{}", String::from_utf8_lossy(&unzip.stderr));
        let elf = std::fs::read(unpacked.join("bootstrap")).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF", "{arch}: an ELF");
        assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), machine, "{arch}: e_machine");
        assert!(elf.windows(7).any(|w| w == b".dep-v0"), "{arch}: cargo-auditable's .dep-v0 section");
    }
    let bootstrap = tmp.path().join("x86_64/bootstrap");
    assert!(Command::new("chmod").arg("755").arg(&bootstrap).status().unwrap().success());
    let moto = Moto::start();
    create_lock_table(&moto.dynamo().await, "locks").await;
    let (url, body, _, stderr) = crate::lambda_runtime::invoke_binary(
        &bootstrap,
        &moto,
        &[("LOCK_TABLES", "locks")],
        r#"{"source":"tf-lock-reaper.schedule","dry_run":true}"#,
    );
    assert_eq!(url, "/2018-06-01/runtime/invocation/req-1/response", "{body}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["dry_run"], true, "{body}");
}

/// cargo-binstall's metadata names the archives `make dist` writes, at the
/// URL `install.sh` downloads them from, with the binary at the root.
#[test]
fn binstall_finds_the_archives_make_release_writes() {
    let root = env!("CARGO_MANIFEST_DIR");
    let manifest = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let value = |key: &str| {
        let section = manifest.split("[package.metadata.binstall]").nth(1).expect("binstall metadata");
        let line = section.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("{key}"));
        line.split_once(" = ").unwrap().1.trim_matches('"').to_string()
    };
    let target = "x86_64-unknown-linux-musl";
    let url = value("pkg-url")
        .replace("{ repo }", "https://github.com/tf-lock-reaper/tf-lock-reaper")
        .replace("{ version }", "1.2.3")
        .replace("{ name }", "tf-lock-reaper")
        .replace("{ target }", target)
        .replace("{ archive-suffix }", ".tar.gz");
    assert_eq!(
        url,
        format!(
            "https://github.com/tf-lock-reaper/tf-lock-reaper/releases/download/v1.2.3/tf-lock-reaper-{target}.tar.gz"
        ),
        "GitHub's layout, as install.sh reads it"
    );
    assert!(manifest.contains("repository = \"https://github.com/tf-lock-reaper/tf-lock-reaper\""));
    assert_eq!(value("pkg-fmt"), "tgz");
    assert_eq!(value("bin-dir"), "{ bin }{ binary-ext }", "the binary at the archive's root");
    let makefile = std::fs::read_to_string(format!("{root}/Makefile")).unwrap();
    assert!(makefile.contains("tools/release_files.py tar $(DIST)/tf-lock-reaper-$$t.tar.gz"), "make dist's names");
    assert!(makefile.contains("tf-lock-reaper=$(RELEASE_BUILD)/$$t/release/tf-lock-reaper"), "at the root");
    let installer = std::fs::read_to_string(format!("{root}/install.sh")).unwrap();
    assert!(
        installer.contains("archive=\"tf-lock-reaper-$arch-$os.tar.gz\"")
            && installer.contains("$base/download/v$version")
    );
}
