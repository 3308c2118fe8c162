//! The act step: carry out a plan's decisions (the conditional writes for
//! each candidate: a TTL, a delete, or both halves of a double lock), record
//! every outcome on the locks, and the safe force-unlock behind
//! `tf-lock-reaper unlock`.

use crate::domain::decision::{Action, ActionTaken, Decision, Plan, Write};
use crate::domain::lock::{Lock, SourceKind};
use crate::domain::report::SourceReport;
use crate::pipeline::pairing::{halves, positions, At, Halves};
use crate::ports::clock::Clock;
use crate::ports::lock_tables::LockTables;
use crate::ports::lockfiles::LockfileBuckets;
use crate::ports::{SourceError, WriteOutcome};
use crate::support::deadline::Deadline;

/// What a lockfile gets in `ACTION=ttl`: S3 objects have no TTL.
pub const TTL_NOT_FOR_LOCKFILES: &str = "ttl does not apply to S3 lockfiles";

/// The detail of a lock found gone by its write.
const GONE: &str = "already gone: released by its holder, or removed by an earlier attempt whose response was lost";

/// Makes the conditional writes.
pub struct Writer<'a> {
    pub tables: &'a dyn LockTables,
    pub lockfiles: &'a dyn LockfileBuckets,
    pub ttl_attribute: &'a str,
    pub clock: &'a dyn Clock,
}

impl Writer<'_> {
    /// Carry out the plan for the candidates at `at` and record every
    /// outcome on the locks. Returns whether the deadline kept a write from
    /// starting (a partial run).
    pub async fn carry_out(
        &self,
        sources: &mut [SourceReport],
        halves: &Halves,
        at: &[At],
        plan: &Plan,
        action: Action,
        deadline: Deadline,
    ) -> bool {
        let mut partial = false;
        for (&p, decision) in at.iter().zip(&plan.decisions) {
            let (taken, detail) = match *decision {
                Decision::Leave(a) => (a, None),
                Decision::Withhold(w, a) => (a, Some(format!("would {}", w.describe()))),
                Decision::Execute(w) if !deadline.leaves_time_for_a_write(self.clock.now()) => {
                    partial = true;
                    (ActionTaken::Deadline, Some(format!("{} not started: deadline near", w.describe())))
                }
                Decision::Execute(w) => {
                    self.execute(sources, p, halves.get(&p).copied(), w).await;
                    continue;
                }
            };
            set_outcome(sources, p, taken, detail.clone());
            // A double lock's lockfile half shares its table half's fate,
            // except for a TTL, which it cannot take (noted below).
            let ttl_write = matches!(
                decision,
                Decision::Withhold(Write::SetTtl { .. }, _) | Decision::Execute(Write::SetTtl { .. })
            );
            if let (Some(&half), false) = (halves.get(&p), ttl_write) {
                set_outcome(sources, half, taken, detail);
            }
        }
        // Lockfiles (alone or as a double lock's half) cannot take a TTL:
        // say so rather than stay silent.
        if action == Action::Ttl {
            for (s, l) in positions(sources).collect::<Vec<_>>() {
                let lr = &mut sources[s].locks[l];
                if lr.lock.kind == SourceKind::Bucket && lr.verdict.stale && lr.action == ActionTaken::NoAction {
                    lr.detail = Some(TTL_NOT_FOR_LOCKFILES.to_string());
                }
            }
        }
        partial
    }

    /// The safe force-unlock: delete every lock whose `Info.ID` is `lock_id`
    /// (both halves of a double lock, table half first), each conditioned
    /// on what was read. Outcomes are recorded on the locks.
    pub async fn unlock(&self, sources: &mut [SourceReport], lock_id: &str) {
        let targets: Vec<At> = positions(sources)
            .filter(|&(s, l)| sources[s].locks[l].lock.id == lock_id && !sources[s].locks[l].is_lockfile_half())
            .collect();
        let halves = halves(sources);
        for &p in &targets {
            self.execute(sources, p, halves.get(&p).copied(), Write::Delete).await;
        }
    }

    /// Make the conditional write(s) for one candidate and record the outcome.
    async fn execute(&self, sources: &mut [SourceReport], p: At, half: Option<At>, write: Write) {
        let lock = sources[p.0].locks[p.1].lock.clone();
        let outcomes: Vec<(At, ActionTaken, Option<String>)> = match (write, half) {
            (Write::SetTtl { expires_at }, _) => {
                let attribute = self.ttl_attribute;
                let result =
                    self.tables.set_ttl(&lock.source, &lock.lock_key, &lock.raw_info, attribute, expires_at).await;
                let (action, detail) = outcome(result, write, || format!("{attribute} = {expires_at}"));
                vec![(p, action, detail)]
            }
            (Write::Delete, None) => {
                let result = match lock.kind {
                    SourceKind::Table => self.tables.delete_lock(&lock.source, &lock.lock_key, &lock.raw_info).await,
                    SourceKind::Bucket => {
                        let etag = lock.etag.as_deref().unwrap_or_default();
                        self.lockfiles.delete_lockfile(&lock.source, &lock.lock_key, etag).await
                    }
                };
                let (action, detail) = outcome(result, write, String::new);
                vec![(p, action, detail)]
            }
            (Write::Delete, Some(h)) => {
                let file = sources[h.0].locks[h.1].lock.clone();
                self.delete_double_lock(&lock, &file)
                    .await
                    .into_iter()
                    .zip([p, h])
                    .map(|((a, d), at)| (at, a, d))
                    .collect()
            }
        };
        for (at, action, detail) in outcomes {
            let l = &sources[at.0].locks[at.1];
            tracing::info!(
                source = %l.lock.source,
                lock_key = %l.lock.lock_key,
                lock_id = %l.lock.id,
                age_seconds = l.verdict.age_seconds,
                action = action.as_str(),
                detail = detail.as_deref().unwrap_or(""),
                "lock action"
            );
            set_outcome(sources, at, action, detail);
        }
    }

    /// Clear both halves of a double lock, or neither if either changed.
    /// The lockfile is checked first; the table half goes first (while the
    /// lockfile still stops any new run), then the lockfile by ETag.
    /// Returns the outcomes of the table half and the lockfile half.
    async fn delete_double_lock(&self, table_half: &Lock, file_half: &Lock) -> [(ActionTaken, Option<String>); 2] {
        let etag = file_half.etag.as_deref().unwrap_or_default();
        let neither = |why: String| [(ActionTaken::Changed, Some(why.clone())), (ActionTaken::Changed, Some(why))];
        let failed = |e: SourceError| {
            let why = format!("double lock not cleared: {e}");
            [(ActionTaken::Error, Some(why.clone())), (ActionTaken::Error, Some(why))]
        };
        match self.lockfiles.current_etag(&file_half.source, &file_half.lock_key).await {
            Ok(Some(now)) if now == etag => {}
            Ok(_) => return neither("lockfile half changed or released since the scan; neither half deleted".into()),
            Err(e) => return failed(e),
        }
        match self.tables.delete_lock(&table_half.source, &table_half.lock_key, &table_half.raw_info).await {
            Ok(WriteOutcome::Done) => {}
            Ok(WriteOutcome::Gone) => {
                // Released (or our lost first attempt): the lockfile stays, to
                // be judged on its own by the next run.
                return [
                    (ActionTaken::Gone, Some(GONE.to_string())),
                    (ActionTaken::NoAction, Some("table half already gone; lockfile left for the next run".into())),
                ];
            }
            Ok(WriteOutcome::Changed) => {
                return neither("table half changed or released since the scan; neither half deleted".into())
            }
            Err(e) => return failed(e),
        }
        let table_done = (ActionTaken::Deleted, Some("double lock: both halves deleted".to_string()));
        match self.lockfiles.delete_lockfile(&file_half.source, &file_half.lock_key, etag).await {
            Ok(WriteOutcome::Done) => [table_done.clone(), table_done],
            Ok(WriteOutcome::Gone) => [table_done, (ActionTaken::Gone, Some(GONE.to_string()))],
            Ok(WriteOutcome::Changed) => [
                (ActionTaken::Deleted, Some("double lock: table half deleted, lockfile changed just after".into())),
                (ActionTaken::Changed, Some("lockfile changed after its check; left alone".into())),
            ],
            Err(e) => [
                (ActionTaken::Deleted, Some("double lock: table half deleted, lockfile delete failed".into())),
                (ActionTaken::Error, Some(format!("delete failed: {e}"))),
            ],
        }
    }
}

/// Record what happened to the lock at `p`.
fn set_outcome(sources: &mut [SourceReport], p: At, action: ActionTaken, detail: Option<String>) {
    let l = &mut sources[p.0].locks[p.1];
    l.action = action;
    l.detail = detail;
}

/// The report's view of one conditional write's result.
fn outcome(
    result: Result<WriteOutcome, SourceError>,
    write: Write,
    done_detail: impl FnOnce() -> String,
) -> (ActionTaken, Option<String>) {
    match (result, write) {
        (Ok(WriteOutcome::Done), Write::Delete) => (ActionTaken::Deleted, None),
        (Ok(WriteOutcome::Done), Write::SetTtl { .. }) => (ActionTaken::Ttl, Some(done_detail())),
        (Ok(WriteOutcome::Gone), _) => (ActionTaken::Gone, Some(GONE.to_string())),
        (Ok(WriteOutcome::Changed), _) => {
            (ActionTaken::Changed, Some("lock changed or released since the scan; left alone".to_string()))
        }
        (Err(e), _) => (ActionTaken::Error, Some(format!("{} failed: {e}", write.describe()))),
    }
}
