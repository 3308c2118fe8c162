//! Follow the private log file Terraform writes (`TF_LOG_PATH`) as it
//! grows. A regular file, never a FIFO: Terraform must never block on a
//! reader that stopped. What was read is released to the filesystem
//! (`FALLOC_FL_PUNCH_HOLE`), so a long apply's log takes no disk space
//! behind the reader; the file's offsets stay as they are.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::domain::tflog::{parse_line, LockEvent};

/// Bytes read before the read part is released.
const RELEASE_EVERY: u64 = 1 << 20;
/// A line longer than this is not one of the lines we look for: dropped.
const MAX_LINE: usize = 64 * 1024;

/// Reads new lines from a growing log file.
pub struct LogFollower {
    file: File,
    offset: u64,
    released: u64,
    /// False once the filesystem said it cannot punch holes.
    can_release: bool,
    partial: Vec<u8>,
}

impl LogFollower {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        // Read and write: punching holes needs a writable descriptor (nothing is written).
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        Ok(LogFollower { file, offset: 0, released: 0, can_release: true, partial: Vec::new() })
    }

    /// The lock events in what was written since the last call.
    pub fn events(&mut self) -> std::io::Result<Vec<LockEvent>> {
        let mut chunk = Vec::new();
        self.file.seek(SeekFrom::Start(self.offset))?;
        self.offset += self.file.read_to_end(&mut chunk)? as u64;
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
        match fallocate(&self.file, flags, 0, len) {
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
    use std::io::Write;

    #[test]
    fn lines_are_read_as_they_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tf.log");
        let mut w = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let mut f = LogFollower::open(&path).unwrap();
        assert!(f.events().unwrap().is_empty());
        write!(w, "x [INFO]  backend-s3: Locked remote state (DynamoDB): tf_backend.lock.id=abc tf_backend.lock")
            .unwrap();
        assert!(f.events().unwrap().is_empty(), "half a line is not a line");
        writeln!(w, ".path=b/k tf_backend.operation=Lock").unwrap();
        assert_eq!(f.events().unwrap(), vec![LockEvent::Locked { id: "abc".into(), path: Some("b/k".into()) }]);
        writeln!(w, "y [INFO]  backend-s3: Unlocked remote state (DynamoDB): tf_backend.lock.id=abc").unwrap();
        assert_eq!(f.events().unwrap(), vec![LockEvent::Unlocked { id: "abc".into() }]);
    }

    #[test]
    fn a_long_log_releases_what_was_read_and_keeps_following() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tf.log");
        let mut w = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let mut f = LogFollower::open(&path).unwrap();
        let filler = format!("{}\n", "z".repeat(1023));
        for _ in 0..1100 {
            w.write_all(filler.as_bytes()).unwrap();
        }
        assert!(f.events().unwrap().is_empty());
        writeln!(w, "t [INFO]  backend-s3: Attempting to unlock remote state (S3 Native): tf_backend.lock.id=q")
            .unwrap();
        assert_eq!(f.events().unwrap(), vec![LockEvent::Unlocking { id: "q".into() }]);
        assert!(std::fs::metadata(&path).unwrap().len() > RELEASE_EVERY, "offsets are kept");
    }
}
