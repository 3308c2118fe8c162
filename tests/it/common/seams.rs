//! Races against the real adapters: [`before_write`] puts a hook in front
//! of a real store (through the crate's one hook wrapper, `fakes::Hooked`)
//! so something happens to the table or bucket just before the reaper's
//! write (a release, a re-acquire, a heartbeat), and the real conditional
//! writes decide.

use std::future::Future;
use std::sync::Arc;

use tf_lock_reaper::fakes::{Call, Hooked, Point};

/// `inner`, with `hook(source, key)` run before every write.
pub fn before_write<T: ?Sized, F, Fut>(inner: Arc<T>, hook: F) -> Hooked<T>
where
    F: Fn(String, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let hook = Arc::new(hook);
    Hooked::new(inner, move |call: Call| {
        let run = match (call.point, call.key) {
            (Point::BeforeWrite, Some(key)) => Some(hook(call.source, key)),
            _ => None,
        };
        async move {
            if let Some(run) = run {
                run.await;
            }
        }
    })
}
