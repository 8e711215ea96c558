//! Checks: small functions from (what the guest shows, what the scenario expects)
//! to a `CheckResult` with expected, actual and evidence. Never a bare bool: a
//! failing check must say why.

mod autologin;
mod home_manager;
mod hostname;
mod probe;
mod result;
mod ssh_login;
mod sshd;
mod steps;
mod units;
mod users;

pub use autologin::{at_login_prompt, autologin, console_login, console_login_failed, WHO_AM_I};
pub use home_manager::home_manager;
pub use hostname::{hostname, HOSTNAME};
pub use probe::{as_root, is_root, COMMAND_TIMEOUT, IS_ROOT};
pub use result::{CheckResult, Outcome};
pub use ssh_login::{
    finish_ssh_login, host_key_fingerprints, login_check_id, password_of, prepare_ssh_login,
    ssh_login_without_console, PasswordUnset, SshAttempt, SshLoginStage, SshTarget,
};
pub use sshd::{sshd, sshd_units, sshd_units_probe, SshdReach, SshdUnits};
pub use steps::{steps, steps_not_run};
pub use users::user;

/// The commands of each read-only check, for `Shell::prefetch`.
pub mod probes {
    pub use super::home_manager::settled_probes as home_manager;
    pub use super::home_manager::unit_probe as home_manager_unit;
    pub use super::sshd::look_probes as sshd_look;
    pub use super::units::unit_pending;
    pub use super::users::exists_command as user_exists;
    pub use super::users::probes as user;
}
