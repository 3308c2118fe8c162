//! A mutex guard whatever a panicking holder left behind: the data behind
//! our mutexes (caches, recorded calls) stays valid after a panic.

use std::sync::{Mutex, MutexGuard};

/// Lock `m`, poisoned or not.
pub(crate) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
