//! Double locks (a lockfile and a table item with the same lock ID and
//! state path): marking the two halves, finding one from the other, and
//! their joint verdict. Positions index the run's sources and locks.

use std::collections::HashMap;

use crate::domain::lock::SourceKind;
use crate::domain::policy::Verdict;
use crate::domain::report::{HalfRef, SourceReport};
use crate::domain::source::SourceAddress;

/// Position of a lock in the sources: (source index, lock index).
pub(crate) type At = (usize, usize);

/// Both halves of every double lock, each pointing at the other.
pub(crate) type Halves = HashMap<At, At>;

/// Every lock position, source by source.
pub(crate) fn positions(sources: &[SourceReport]) -> impl Iterator<Item = At> + '_ {
    sources.iter().enumerate().flat_map(|(s, src)| (0..src.locks.len()).map(move |l| (s, l)))
}

/// Index the halves marked by [`pair_double_locks`].
pub(crate) fn halves(sources: &[SourceReport]) -> Halves {
    let by_location: HashMap<(SourceKind, &SourceAddress, &str), At> = positions(sources)
        .map(|(s, l)| {
            let lock = &sources[s].locks[l].lock;
            ((lock.kind, &lock.source, lock.lock_key.as_str()), (s, l))
        })
        .collect();
    positions(sources)
        .filter_map(|p| {
            let other = sources[p.0].locks[p.1].paired_with.as_ref()?;
            by_location.get(&(other.kind, &other.source, other.lock_key.as_str())).map(|&h| (p, h))
        })
        .collect()
}

/// A double lock is stale, excluded or due only if both halves are.
pub(crate) fn joint_verdict(sources: &[SourceReport], halves: &Halves, p: At) -> Verdict {
    let mut v = sources[p.0].locks[p.1].verdict.clone();
    if let Some(&h) = halves.get(&p) {
        let o = &sources[h.0].locks[h.1].verdict;
        v.stale &= o.stale;
        v.delete_due &= o.delete_due;
        v.excluded |= o.excluded;
        v.age_seconds = v.age_seconds.min(o.age_seconds);
    }
    v
}

/// Mark the two halves of every double lock: a lockfile and a table item
/// with the same lock ID and the same state path.
pub(crate) fn pair_double_locks(sources: &mut [SourceReport]) {
    let mut table_halves: HashMap<(String, String), At> = HashMap::new();
    for (s, l) in positions(sources).collect::<Vec<_>>() {
        let lock = &sources[s].locks[l].lock;
        if lock.kind == SourceKind::Table && !lock.id.is_empty() {
            table_halves.entry((lock.id.clone(), lock.state_path.clone())).or_insert((s, l));
        }
    }
    for (s, l) in positions(sources).collect::<Vec<_>>() {
        let file = sources[s].locks[l].lock.clone();
        if file.kind != SourceKind::Bucket {
            continue;
        }
        let Some(&(ts, tl)) = table_halves.get(&(file.id.clone(), file.state_path.clone())) else { continue };
        let table = sources[ts].locks[tl].lock.clone();
        sources[s].locks[l].paired_with = Some(HalfRef::of(&table));
        sources[ts].locks[tl].paired_with = Some(HalfRef::of(&file));
    }
}
