//! Follow the log file Terraform writes (`TF_LOG_PATH`) as it grows: the
//! wrapper's private file, or the user's own when they set `TF_LOG` and
//! `TF_LOG_PATH` themselves (read from where it ended when `exec` started,
//! never changed). A regular file, never a FIFO: Terraform must never block
//! on a reader that stopped. What was read of the private file is released
//! to the filesystem (`FALLOC_FL_PUNCH_HOLE`), so a long apply's log takes
//! no disk space behind the reader; the file's offsets stay as they are.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::domain::tflog::{parse_line, LogLine};

/// Bytes read before the read part is released.
const RELEASE_EVERY: u64 = 1 << 20;
/// A line longer than this is not one of the lines we look for: dropped.
const MAX_LINE: usize = 64 * 1024;

/// Reads new lines from a growing log file.
pub(crate) struct LogFollower {
    path: PathBuf,
    /// `None` until the user's file exists.
    file: Option<File>,
    offset: u64,
    released: u64,
    /// The private file, while the filesystem can punch holes in it.
    can_release: bool,
    partial: Vec<u8>,
}

impl LogFollower {
    /// The wrapper's private log file.
    pub(crate) fn private(path: &Path) -> std::io::Result<Self> {
        // Read and write: punching holes needs a writable descriptor (nothing is written).
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        Ok(LogFollower {
            path: path.to_path_buf(),
            file: Some(file),
            offset: 0,
            released: 0,
            can_release: true,
            partial: Vec::new(),
        })
    }

    /// The user's own log file, from its end now (Terraform appends to it).
    pub(crate) fn users(path: &Path) -> Self {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        LogFollower {
            path: path.to_path_buf(),
            file: None,
            offset,
            released: offset,
            can_release: false,
            partial: Vec::new(),
        }
    }

    /// The lines about locks and releases in what was written since the last call.
    pub(crate) fn lines(&mut self) -> std::io::Result<Vec<LogLine>> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        }
        let Some(file) = self.file.as_mut() else { return Ok(Vec::new()) };
        let mut chunk = Vec::new();
        file.seek(SeekFrom::Start(self.offset))?;
        self.offset += file.read_to_end(&mut chunk)? as u64;
        let mut events = Vec::new();
        for byte in chunk {
            if byte == b'\n' {
                if let Some(e) = parse_line(&String::from_utf8_lossy(&self.partial)) {
                    events.push(e);
                }
                self.partial.clear();
            } else if self.partial.len() < MAX_LINE {
                self.partial.push(byte);
            }
        }
        if self.can_release && self.offset.saturating_sub(self.released) >= RELEASE_EVERY {
            self.release_read_part();
        }
        Ok(events)
    }

    /// Give the blocks already read back to the filesystem. Where holes are
    /// not supported the file simply keeps growing.
    fn release_read_part(&mut self) {
        use nix::fcntl::{fallocate, FallocateFlags};
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        let len = i64::try_from(self.offset).unwrap_or(i64::MAX);
        let Some(file) = &self.file else { return };
        match fallocate(file, flags, 0, len) {
            Ok(()) => self.released = self.offset,
            Err(e) => {
                tracing::debug!(error = %e, "cannot punch holes in the log file; it keeps its size");
                self.can_release = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tflog::{LockEvent, LockLine};
    use std::io::Write;

    fn events(f: &mut LogFollower) -> Vec<(LockEvent, String)> {
        f.lines()
            .unwrap()
            .into_iter()
            .filter_map(|l| match l {
                LogLine::Lock(LockLine { event, id, .. }) => Some((event, id)),
                LogLine::Started(_) => None,
            })
            .collect()
    }

    #[test]
    fn lines_are_read_as_they_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tf.log");
        let mut w = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let mut f = LogFollower::private(&path).unwrap();
        assert!(f.lines().unwrap().is_empty());
        write!(w, "x [INFO]  backend-s3: Locked remote state (DynamoDB): tf_backend.lock.id=abc tf_backend.lock")
            .unwrap();
        assert!(f.lines().unwrap().is_empty(), "half a line is not a line");
        writeln!(w, ".path=b/k tf_backend.operation=Lock").unwrap();
        let lines = f.lines().unwrap();
        let LogLine::Lock(locked) = &lines[0] else { panic!("{lines:?}") };
        assert_eq!(
            (locked.event, locked.id.as_str(), locked.lock_path.as_deref()),
            (LockEvent::Locked, "abc", Some("b/k"))
        );
        writeln!(w, "y [INFO]  backend-s3: Unlocked remote state (DynamoDB): tf_backend.lock.id=abc").unwrap();
        assert_eq!(events(&mut f), vec![(LockEvent::Unlocked, "abc".to_string())]);
    }

    #[test]
    fn the_users_file_is_read_from_its_end_and_may_not_exist_yet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.log");
        let mut f = LogFollower::users(&path);
        assert!(f.lines().unwrap().is_empty(), "no file yet");
        let mut w = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        writeln!(w, "y [INFO]  backend-s3: Unlocking remote state: tf_backend.lock.id=new").unwrap();
        assert_eq!(events(&mut f), vec![(LockEvent::Unlocking, "new".to_string())]);
        // A file with an old run in it: only what comes after the start counts.
        let mut g = LogFollower::users(&path);
        writeln!(w, "z [INFO]  backend-s3: Unlocking remote state: tf_backend.lock.id=later").unwrap();
        assert_eq!(events(&mut g), vec![(LockEvent::Unlocking, "later".to_string())]);
    }

    #[test]
    fn a_long_log_releases_what_was_read_and_keeps_following() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tf.log");
        let mut w = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let mut f = LogFollower::private(&path).unwrap();
        let filler = format!("{}\n", "z".repeat(1023));
        for _ in 0..1100 {
            w.write_all(filler.as_bytes()).unwrap();
        }
        assert!(f.lines().unwrap().is_empty());
        writeln!(w, "t [INFO]  backend-s3: Attempting to unlock remote state (S3 Native): tf_backend.lock.id=q")
            .unwrap();
        assert_eq!(events(&mut f), vec![(LockEvent::Unlocking, "q".to_string())]);
        assert!(std::fs::metadata(&path).unwrap().len() > RELEASE_EVERY, "offsets are kept");
    }
}
