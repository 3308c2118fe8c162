//! The two entrypoints' logic, kept out of the binaries so the binaries
//! read as parse → build → run → print: the scheduled Lambda and the CLI.

pub mod cli;
pub mod lambda;
