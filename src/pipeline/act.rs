//! The act step: carry out a plan's decisions (the conditional writes for
//! each candidate: a TTL, a delete, or both halves of a double lock), record
//! every outcome on the locks, and the safe force-unlock behind
//! `tf-lock-reaper unlock`.

use crate::domain::decision::{Action, ActionTaken, Decision, Plan, Write};
use crate::domain::failure::ErrorKind;
use crate::domain::lock::{Lock, SourceKind};
use crate::domain::report::SourceReport;
use crate::pipeline::pairing::{halves, positions, At, Halves};
use crate::ports::clock::Clock;
use crate::ports::lock_tables::{HeartbeatGuard, LockTables};
use crate::ports::lockfiles::LockfileBuckets;
use crate::ports::{SourceError, WriteOutcome};
use crate::support::deadline::Deadline;

/// What a lockfile gets in `ACTION=ttl`: S3 objects have no TTL.
pub const TTL_NOT_FOR_LOCKFILES: &str = "ttl does not apply to S3 lockfiles";

/// The detail of a lock found gone by its write.
const GONE: &str = "already gone: released by its holder, or removed by an earlier attempt whose response was lost";

/// Makes the conditional writes.
pub(crate) struct Writer<'a> {
    pub tables: &'a dyn LockTables,
    pub lockfiles: &'a dyn LockfileBuckets,
    pub ttl_attribute: &'a str,
    pub heartbeat_attribute: &'a str,
    pub clock: &'a dyn Clock,
}

/// Whether a delete also requires the heartbeat to be what the scan read.
/// The reaper's own deletes do: a heartbeat that lands between its scan and
/// its delete proves the holder alive. A person's `unlock` of a named lock
/// ID does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    Heartbeat,
    InfoOnly,
}

/// What a lockfile delete gets when the heartbeat moved since the scan.
const HEARTBEAT_ARRIVED: &str = "a heartbeat arrived since the scan: the holder is alive; left alone";

impl Writer<'_> {
    /// Carry out the plan for the candidates at `at` and record every
    /// outcome on the locks. Returns whether the deadline kept a write from
    /// starting (a partial run).
    pub(crate) async fn carry_out(
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
            let outcome = match *decision {
                Decision::Leave(a) => Outcome::without_detail(a),
                Decision::Withhold(w, a) => Outcome::of(a, &format!("would {}", w.describe())),
                Decision::Execute(w) if !deadline.leaves_time_for_a_write(self.clock.now()) => {
                    partial = true;
                    Outcome::of(ActionTaken::Deadline, &format!("{} not started: deadline near", w.describe()))
                }
                Decision::Execute(w) => {
                    self.execute(sources, p, halves.get(&p).copied(), w, Guard::Heartbeat).await;
                    continue;
                }
            };
            // A double lock's lockfile half shares its table half's fate,
            // except for a TTL, which it cannot take (noted below).
            let ttl_write = matches!(
                decision,
                Decision::Withhold(Write::SetTtl { .. }, _) | Decision::Execute(Write::SetTtl { .. })
            );
            if let (Some(&half), false) = (halves.get(&p), ttl_write) {
                record(sources, half, outcome.clone());
            }
            record(sources, p, outcome);
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
    pub(crate) async fn unlock(&self, sources: &mut [SourceReport], lock_id: &str) {
        let targets: Vec<At> = positions(sources)
            .filter(|&(s, l)| sources[s].locks[l].lock.id == lock_id && !sources[s].locks[l].is_lockfile_half())
            .collect();
        let halves = halves(sources);
        for &p in &targets {
            self.execute(sources, p, halves.get(&p).copied(), Write::Delete, Guard::InfoOnly).await;
        }
    }

    /// Make the conditional write(s) for one candidate and record the outcome.
    async fn execute(&self, sources: &mut [SourceReport], p: At, half: Option<At>, write: Write, guard: Guard) {
        let lock = sources[p.0].locks[p.1].lock.clone();
        let outcomes: Vec<(At, Outcome)> = match (write, half) {
            (Write::SetTtl { expires_at }, _) => {
                let attribute = self.ttl_attribute;
                let result =
                    self.tables.set_ttl(&lock.source, &lock.lock_key, &lock.raw_info, attribute, expires_at).await;
                vec![(p, outcome(result, write, || format!("{attribute} = {expires_at}")))]
            }
            (Write::Delete, None) => {
                let o = match lock.kind {
                    SourceKind::Table => outcome(self.delete_item(&lock, guard).await, write, String::new),
                    SourceKind::Bucket => match self.heartbeat_moved(&lock, guard).await {
                        Ok(true) => Outcome::of(ActionTaken::Changed, HEARTBEAT_ARRIVED),
                        Ok(false) => {
                            let etag = lock.etag.as_deref().unwrap_or_default();
                            let result = self.lockfiles.delete_lockfile(&lock.source, &lock.lock_key, etag).await;
                            outcome(result, write, String::new)
                        }
                        Err(e) => outcome(Err(e), write, String::new),
                    },
                };
                vec![(p, o)]
            }
            (Write::Delete, Some(h)) => {
                let file = sources[h.0].locks[h.1].lock.clone();
                let [table_half, file_half] = self.delete_double_lock(&lock, &file, guard).await;
                vec![(p, table_half), (h, file_half)]
            }
        };
        for (at, o) in outcomes {
            let l = &sources[at.0].locks[at.1];
            tracing::info!(
                source = %l.lock.source,
                lock_key = %l.lock.lock_key,
                lock_id = %l.lock.id,
                age_seconds = l.verdict.age_seconds,
                action = o.action.as_str(),
                detail = o.detail.as_deref().unwrap_or(""),
                error_kind = o.error_kind.map(|k| k.as_str()).unwrap_or(""),
                "lock action"
            );
            record(sources, at, o);
        }
    }

    /// Clear both halves of a double lock, or neither if either changed.
    /// The lockfile is checked first; the table half goes first (while the
    /// lockfile still stops any new run), then the lockfile by ETag.
    /// Returns the outcomes of the table half and the lockfile half.
    async fn delete_double_lock(&self, table_half: &Lock, file_half: &Lock, guard: Guard) -> [Outcome; 2] {
        let etag = file_half.etag.as_deref().unwrap_or_default();
        let neither = |why: &str| [Outcome::of(ActionTaken::Changed, why), Outcome::of(ActionTaken::Changed, why)];
        let failed = |e: SourceError| {
            let why = format!("double lock not cleared: {e}");
            [Outcome::failed(&why, e.kind), Outcome::failed(&why, e.kind)]
        };
        match self.lockfiles.current_etag(&file_half.source, &file_half.lock_key).await {
            Ok(Some(now)) if now == etag => {}
            Ok(_) => return neither("lockfile half changed or released since the scan; neither half deleted"),
            Err(e) => return failed(e),
        }
        match self.heartbeat_moved(file_half, guard).await {
            Ok(false) => {}
            Ok(true) => return neither(HEARTBEAT_ARRIVED),
            Err(e) => return failed(e),
        }
        match self.delete_item(table_half, guard).await {
            Ok(WriteOutcome::Done) => {}
            Ok(WriteOutcome::Gone) => {
                // Released (or our lost first attempt): the lockfile stays, to
                // be judged on its own by the next run.
                return [
                    Outcome::of(ActionTaken::Gone, GONE),
                    Outcome::of(ActionTaken::NoAction, "table half already gone; lockfile left for the next run"),
                ];
            }
            Ok(WriteOutcome::Changed) => {
                return neither("table half changed or released since the scan; neither half deleted")
            }
            Err(e) => return failed(e),
        }
        let table_done = Outcome::of(ActionTaken::Deleted, "double lock: both halves deleted");
        match self.lockfiles.delete_lockfile(&file_half.source, &file_half.lock_key, etag).await {
            Ok(WriteOutcome::Done) => [table_done.clone(), table_done],
            Ok(WriteOutcome::Gone) => [table_done, Outcome::of(ActionTaken::Gone, GONE)],
            Ok(WriteOutcome::Changed) => [
                Outcome::of(ActionTaken::Deleted, "double lock: table half deleted, lockfile changed just after"),
                Outcome::of(ActionTaken::Changed, "lockfile changed after its check; left alone"),
            ],
            Err(e) => [
                Outcome::of(ActionTaken::Deleted, "double lock: table half deleted, lockfile delete failed"),
                Outcome::failed(&format!("delete failed: {e}"), e.kind),
            ],
        }
    }
}

impl Writer<'_> {
    /// Delete a table lock conditioned on its exact `Info` (and, guarded,
    /// on the heartbeat read).
    async fn delete_item(&self, lock: &Lock, guard: Guard) -> Result<WriteOutcome, SourceError> {
        let heartbeat = (guard == Guard::Heartbeat)
            .then_some(HeartbeatGuard { attribute: self.heartbeat_attribute, value: lock.heartbeat });
        self.tables.delete_lock(&lock.source, &lock.lock_key, &lock.raw_info, heartbeat).await
    }

    /// S3 cannot condition a delete on a tag: read the heartbeat tag again
    /// just before the delete, and leave the lockfile if it moved. (What
    /// remains is the moment between this read and the delete.)
    async fn heartbeat_moved(&self, lockfile: &Lock, guard: Guard) -> Result<bool, SourceError> {
        if guard == Guard::InfoOnly {
            return Ok(false);
        }
        let now = self.lockfiles.current_heartbeat(&lockfile.source, &lockfile.lock_key).await?;
        Ok(now != lockfile.heartbeat)
    }
}

/// What became of one lock's write.
#[derive(Debug, Clone)]
struct Outcome {
    action: ActionTaken,
    detail: Option<String>,
    error_kind: Option<ErrorKind>,
}

impl Outcome {
    fn without_detail(action: ActionTaken) -> Self {
        Outcome { action, detail: None, error_kind: None }
    }

    fn of(action: ActionTaken, detail: &str) -> Self {
        Outcome { action, detail: Some(detail.to_string()), error_kind: None }
    }

    fn failed(detail: &str, kind: ErrorKind) -> Self {
        Outcome { action: ActionTaken::Error, detail: Some(detail.to_string()), error_kind: Some(kind) }
    }
}

/// Record what happened to the lock at `p`.
fn record(sources: &mut [SourceReport], p: At, outcome: Outcome) {
    let l = &mut sources[p.0].locks[p.1];
    l.action = outcome.action;
    l.detail = outcome.detail;
    l.error_kind = outcome.error_kind;
}

/// The report's view of one conditional write's result.
fn outcome(result: Result<WriteOutcome, SourceError>, write: Write, done_detail: impl FnOnce() -> String) -> Outcome {
    match (result, write) {
        (Ok(WriteOutcome::Done), Write::Delete) => {
            Outcome { action: ActionTaken::Deleted, detail: None, error_kind: None }
        }
        (Ok(WriteOutcome::Done), Write::SetTtl { .. }) => Outcome::of(ActionTaken::Ttl, &done_detail()),
        (Ok(WriteOutcome::Gone), _) => Outcome::of(ActionTaken::Gone, GONE),
        (Ok(WriteOutcome::Changed), _) => {
            Outcome::of(ActionTaken::Changed, "lock changed or released since the scan; left alone")
        }
        (Err(e), _) => Outcome::failed(&format!("{} failed: {e}", write.describe()), e.kind),
    }
}
