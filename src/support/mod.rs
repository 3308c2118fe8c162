//! Small building blocks every layer may use: a credential that never
//! prints itself, and the run's deadline. No I/O, no AWS types.

pub mod age;
pub mod deadline;
pub mod secret;
