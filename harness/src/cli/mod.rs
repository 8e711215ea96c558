//! The subcommands of the `isotest` binary, one module each, over the clap
//! types of `args`.

pub mod args;
pub mod compare;
pub mod console;
mod image;
pub mod list;
pub mod matrix;
mod outputs;
pub mod report;
pub mod run;
