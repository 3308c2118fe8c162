//! The wrapped command's process tree as plain data: which processes are
//! Terraform, where each keeps its data directory, who gets a forwarded
//! signal. Read from `/proc` by `exec::procs`; pure here, so every rule is
//! unit-tested with made-up trees.
//!
//! Why a tree and not one child: scripts `cd` and run Terraform, `make`
//! passes `-chdir`, Terragrunt runs Terraform in `.terragrunt-cache/…`,
//! `run-all` runs several at once, and Terraform ≤ 1.1 re-executes itself
//! (the outer process forwards SIGTERM and ignores SIGINT, expecting the
//! terminal to deliver it to the inner one).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// A process, as far as the wrapper cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub id: ProcId,
    pub ppid: i32,
    /// Still running (a zombie has ended: it holds nothing).
    pub running: bool,
    /// `/proc/<pid>/exe`, when readable.
    pub exe: Option<PathBuf>,
    pub argv: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// `TF_DATA_DIR` from its environment.
    pub data_dir: Option<String>,
    /// `TF_WORKSPACE` from its environment.
    pub workspace: Option<String>,
    /// `TF_CLI_ARGS` and `TF_CLI_ARGS_<command>` from its environment:
    /// arguments Terraform adds to its command line.
    pub cli_args_env: Vec<String>,
}

/// A process's identity: its PID and when it started (clock ticks since
/// boot), so a reused PID is never taken for the process that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

/// `/proc/<pid>/stat`: `(pid, running, ppid, start)`. The command name is in
/// parentheses and may hold anything, so fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Option<(i32, bool, i32, u64)> {
    let (head, tail) = text.rsplit_once(')')?;
    let pid = head.split_once(' ')?.0.trim().parse().ok()?;
    let fields: Vec<&str> = tail.split_whitespace().collect();
    // tail fields: state(0) ppid(1) … starttime(19)
    let running = !matches!(*fields.first()?, "Z" | "X" | "x");
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((pid, running, ppid, start))
}

/// `terraform`, `tofu`, and versioned names (`terraform-1.9.8`, `terraform1.6`).
pub fn is_terraform_name(name: &str) -> bool {
    ["terraform", "tofu"].iter().any(|p| match name.strip_prefix(p) {
        Some("") => true,
        Some(rest) => {
            let rest = rest.strip_prefix(['-', '_', '.']).unwrap_or(rest);
            rest.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    })
}

fn file_name(arg: &str) -> &str {
    Path::new(arg).file_name().and_then(|n| n.to_str()).unwrap_or(arg)
}

/// The arguments Terraform got, when the process is Terraform: the program
/// itself is named like Terraform, or it is an interpreter running a script
/// at a path named like Terraform (a `python …/terraform` shim, a
/// `bash …/terraform` version manager).
pub fn terraform_args(argv: &[String]) -> Option<&[String]> {
    let first = argv.first()?;
    if is_terraform_name(file_name(first)) {
        return Some(&argv[1..]);
    }
    let second = argv.get(1)?;
    (second.contains('/') && is_terraform_name(file_name(second))).then(|| &argv[2..])
}

/// The directory of a `-chdir=DIR` (or `--chdir=DIR`) argument.
fn chdir_of(arg: &str) -> Option<&str> {
    arg.strip_prefix("-chdir=").or_else(|| arg.strip_prefix("--chdir="))
}

/// Whether an argument is Terraform's `-chdir=DIR`.
pub fn is_chdir_arg(arg: &str) -> bool {
    chdir_of(arg).is_some()
}

/// The `-chdir=DIR` (or `--chdir=DIR`) among Terraform's arguments.
pub fn chdir_arg(args: &[String]) -> Option<&str> {
    args.iter().find_map(|a| chdir_of(a))
}

/// The name of Terraform's data directory: `TF_DATA_DIR`, else `.terraform`.
pub fn data_dir_name(tf_data_dir: Option<&str>) -> &str {
    tf_data_dir.filter(|d| !d.is_empty()).unwrap_or(".terraform")
}

impl Process {
    pub fn is_terraform(&self) -> bool {
        terraform_args(&self.argv).is_some()
    }

    /// This Terraform waits for a lock held by another run: `-lock-timeout`
    /// above zero, on its command line or in `TF_CLI_ARGS*`. Without it,
    /// Terraform gives up at the first refusal.
    pub fn waits_for_lock(&self) -> bool {
        let args = terraform_args(&self.argv).unwrap_or_default().iter().map(String::as_str);
        let env = self.cli_args_env.iter().flat_map(|v| v.split_whitespace());
        let timeout =
            args.chain(env).filter_map(|a| a.trim_start_matches('-').strip_prefix("lock-timeout=")).next_back();
        timeout.is_some_and(|t| humantime::parse_duration(t).is_ok_and(|d| !d.is_zero()))
    }

    /// Where this Terraform keeps its data directory, most likely first.
    /// Terraform changes into `-chdir` itself, so the working directory is
    /// tried as it is and with `-chdir` applied; `TF_DATA_DIR` is relative
    /// to the directory Terraform works in.
    pub fn data_dirs(&self) -> Vec<PathBuf> {
        let data = data_dir_name(self.data_dir.as_deref());
        if Path::new(data).is_absolute() {
            return vec![PathBuf::from(data)];
        }
        let Some(cwd) = &self.cwd else { return Vec::new() };
        let chdir = chdir_arg(terraform_args(&self.argv).unwrap_or_default());
        let mut dirs = vec![cwd.join(data)];
        if let Some(chdir) = chdir {
            dirs.push(cwd.join(chdir).join(data));
        }
        dirs
    }
}

/// The process tree below `root` (not `root` itself), parents before children.
pub fn descendants(all: &[Process], root: i32) -> Vec<&Process> {
    let mut children: HashMap<i32, Vec<&Process>> = HashMap::new();
    for p in all {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut next = vec![root];
    let mut seen = BTreeSet::from([root]);
    while let Some(parent) = next.pop() {
        for child in children.get(&parent).into_iter().flatten() {
            if seen.insert(child.id.pid) {
                out.push(*child);
                next.push(child.id.pid);
            }
        }
    }
    out
}

/// Who gets a SIGINT or SIGQUIT the wrapper forwards (one that did not come
/// from the keyboard), besides the command itself: every Terraform process
/// below it, once each, as a terminal delivers Ctrl-C to its foreground
/// group. Terraform expects that: a shell or `make` does not pass SIGINT
/// on, and Terraform ≤ 1.1's outer process ignores it.
pub fn keyboard_signal_targets(tree: &[&Process], child: i32) -> Vec<ProcId> {
    tree.iter().filter(|p| p.running && p.is_terraform() && p.id.pid != child).map(|p| p.id).collect()
}

/// Of a lock's holders, the innermost: the one with no other holder below
/// it (Terraform ≤ 1.1's re-executed process, which handles SIGINT).
pub fn innermost(tree: &[&Process], holders: &[ProcId]) -> Option<ProcId> {
    let parent: HashMap<i32, i32> = tree.iter().map(|p| (p.id.pid, p.ppid)).collect();
    let is_ancestor_of_another = |candidate: &ProcId| {
        holders.iter().any(|h| {
            let mut pid = h.pid;
            while let Some(&pp) = parent.get(&pid) {
                if pp == candidate.pid {
                    return true;
                }
                pid = pp;
            }
            false
        })
    };
    holders.iter().find(|h| !is_ancestor_of_another(h)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: i32, ppid: i32, argv: &[&str], cwd: &str) -> Process {
        Process {
            id: ProcId { pid, start: 100 + pid as u64 },
            ppid,
            running: true,
            exe: None,
            argv: argv.iter().map(|a| a.to_string()).collect(),
            cwd: Some(PathBuf::from(cwd)),
            data_dir: None,
            workspace: None,
            cli_args_env: Vec::new(),
        }
    }

    #[test]
    fn a_terraform_waits_for_a_lock_only_with_a_lock_timeout_above_zero() {
        let waits = |argv: &[&str], env: &[&str]| {
            Process { cli_args_env: env.iter().map(|e| e.to_string()).collect(), ..proc(5, 1, argv, "/w") }
                .waits_for_lock()
        };
        assert!(waits(&["terraform", "apply", "-lock-timeout=3m"], &[]));
        assert!(waits(&["python3", "/x/terraform", "-chdir=a", "apply", "--lock-timeout=90s", "tfplan"], &[]));
        assert!(!waits(&["terraform", "apply", "-auto-approve"], &[]));
        assert!(!waits(&["terraform", "apply", "-lock-timeout=0s"], &[]));
        // Terragrunt's extra_arguments and TF_CLI_ARGS_apply reach Terraform too.
        assert!(waits(&["terraform", "apply"], &["-input=false -lock-timeout=20m"]));
        assert!(!waits(&["make", "apply", "-lock-timeout=3m"], &[]), "not Terraform");
    }

    #[test]
    fn stat_lines_with_odd_command_names() {
        let stat = "4242 (terraform (x) y) S 4200 4242 4200 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 9 0 778899 1 2";
        assert_eq!(parse_stat(stat), Some((4242, true, 4200, 778899)));
        let zombie = "7 (sh) Z 1 7 7 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        assert_eq!(parse_stat(zombie), Some((7, false, 1, 55)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn what_counts_as_terraform() {
        for yes in ["terraform", "tofu", "terraform-1.9.8", "terraform1.6", "terraform_1.5"] {
            assert!(is_terraform_name(yes), "{yes}");
        }
        for no in ["terragrunt", "terraform-docs", "tflint", "make", "terraforming"] {
            assert!(!is_terraform_name(no), "{no}");
        }
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(terraform_args(&argv(&["/usr/bin/terraform", "apply"])).map(|a| a.len()), Some(1));
        assert_eq!(
            terraform_args(&argv(&["python3", "/repo/tools/terraform", "-chdir=x", "apply"])).unwrap()[0],
            "-chdir=x"
        );
        assert_eq!(terraform_args(&argv(&["make", "terraform"])), None, "a make target is not a program");
        assert_eq!(terraform_args(&argv(&["sh", "-c", "terraform apply"])), None, "the shell, not Terraform");
    }

    #[test]
    fn data_dirs_follow_chdir_and_tf_data_dir() {
        let p = proc(1, 0, &["terraform", "-chdir=stack", "apply"], "/work");
        assert_eq!(p.data_dirs(), vec![PathBuf::from("/work/.terraform"), PathBuf::from("/work/stack/.terraform")]);
        let q = Process { data_dir: Some("/cache/tf".into()), ..p.clone() };
        assert_eq!(q.data_dirs(), vec![PathBuf::from("/cache/tf")]);
        let r = Process { data_dir: Some("data".into()), ..p };
        assert_eq!(r.data_dirs()[1], PathBuf::from("/work/stack/data"));
    }

    #[test]
    fn the_tree_below_the_wrapper_only() {
        let all = vec![
            proc(10, 1, &["tf-lock-reaper"], "/"),
            proc(11, 10, &["sh", "deploy.sh"], "/w"),
            proc(12, 11, &["terraform", "apply"], "/w/a"),
            proc(13, 12, &["terraform", "apply"], "/w/a"),
            proc(20, 1, &["terraform", "apply"], "/elsewhere"),
        ];
        let tree = descendants(&all, 10);
        let pids: Vec<i32> = tree.iter().map(|p| p.id.pid).collect();
        assert_eq!(pids, vec![11, 12, 13], "another job's Terraform is not ours");
        assert_eq!(keyboard_signal_targets(&tree, 11), vec![tree[1].id, tree[2].id], "besides the command");
        let holders = [tree[1].id, tree[2].id];
        assert_eq!(innermost(&tree, &holders), Some(tree[2].id), "the re-executed Terraform");
        assert_eq!(innermost(&tree, &holders[..1]), Some(tree[1].id));
    }
}
