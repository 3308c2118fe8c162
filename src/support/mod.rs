//! Small building blocks every layer may use: a credential that never
//! prints itself, the run's deadline, a mutex that survives a panic. No
//! I/O, no AWS types.

pub(crate) use tf_lock_reaper_core::age;
pub mod deadline;
pub mod secret;
pub(crate) mod sync;
