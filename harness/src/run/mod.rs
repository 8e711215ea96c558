//! One trial end to end, as stages: resolve the image, start QEMU (through
//! `qemu::Launcher`), boot to a shell, run the checks, and report. Also
//! `run_trials`, which runs many with bounded parallelism.
//!
//! Every error is of one of two kinds (`ErrorKind`): a failure of the ISO (the
//! boot died, the guest misbehaved), or "could not test" (this host lacks QEMU,
//! firmware, memory, disk space or a free port), from which nothing is learned.
//! `classify` is where each error gets its kind.
//!
//! ```text
//! pool ─▶ trial ─▶ host ─▶ resolve ─▶ start ─▶ boot ─┬─▶ ready ─▶ order (checks) ─▶ report
//!                                                    └─▶ boot_end (no shell)
//! ```

mod boot_end;
mod classify;
mod host;
mod kept;
mod observe;
mod options;
mod order;
mod pool;
mod ready;
mod resolve;
mod restore;
mod share;
mod start;
mod trial;

pub use host::{host_memory_mib, HostError};
pub use kept::KeptMachine;
pub use observe::Progress;
pub use options::{default_jobs, guest_cpus, RunOptions};
pub use pool::{run_baselines, run_trials};
pub use start::{start_for_console, Started, CONSOLE_DIR};
pub use trial::run_trial;
