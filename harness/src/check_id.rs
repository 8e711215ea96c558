//! What a check is about, as a value: the check's name in every report is its
//! `Display`, and a name read back from a report is parsed once, here.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// How an SSH login proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginMethod {
    /// A throwaway key the console installed.
    Key,
    /// The password from the environment variable the scenario names.
    Password,
}

impl LoginMethod {
    /// `key`, `password`: as the check's name and its messages say it.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginMethod::Key => "key",
            LoginMethod::Password => "password",
        }
    }
}

impl fmt::Display for LoginMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A check of a trial. Written as its name (`user nixos`) in report.json.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckId {
    /// `autologin`
    Autologin,
    /// `console login USER`: isotest logged in at the console's prompt.
    ConsoleLogin { user: String },
    /// `hostname`
    Hostname,
    /// `sshd`
    Sshd,
    /// `ssh login USER (key)`, `ssh login USER (password)`
    SshLogin { user: String, method: LoginMethod },
    /// `user NAME`
    User { name: String },
    /// `home-manager USER`
    HomeManager { user: String },
    /// `step N: WHAT`, numbered from 1.
    Step { number: usize, what: String },
    /// A name this version does not make, read from a report another one wrote.
    Other(String),
}

impl CheckId {
    pub fn console_login(user: &str) -> CheckId {
        CheckId::ConsoleLogin { user: user.into() }
    }

    pub fn ssh_login(user: &str, method: LoginMethod) -> CheckId {
        CheckId::SshLogin {
            user: user.into(),
            method,
        }
    }

    pub fn user(name: &str) -> CheckId {
        CheckId::User { name: name.into() }
    }

    pub fn home_manager(user: &str) -> CheckId {
        CheckId::HomeManager { user: user.into() }
    }

    /// The word a trial's line counts checks of one kind under (`user(2/2)`);
    /// None for a check that stands alone (`hostname`).
    pub fn kind(&self) -> Option<&str> {
        match self {
            CheckId::Autologin | CheckId::Hostname | CheckId::Sshd => None,
            CheckId::ConsoleLogin { .. } => Some("console"),
            CheckId::SshLogin { .. } => Some("ssh"),
            CheckId::User { .. } => Some("user"),
            CheckId::HomeManager { .. } => Some("home-manager"),
            CheckId::Step { .. } => Some("step"),
            CheckId::Other(name) => name.split_once(' ').map(|(kind, _)| kind),
        }
    }

    /// Where a check stands in a report: autologin (or the console login),
    /// hostname, sshd, the SSH logins, users, Home Manager, then the steps.
    fn rank(&self) -> u8 {
        match self {
            CheckId::Autologin | CheckId::ConsoleLogin { .. } => 0,
            CheckId::Hostname => 1,
            CheckId::Sshd => 2,
            CheckId::SshLogin { .. } => 3,
            CheckId::User { .. } => 4,
            CheckId::HomeManager { .. } => 5,
            CheckId::Step { .. } | CheckId::Other(_) => 6,
        }
    }

    /// The check a name stands for. Any name reads: one this version does not
    /// make is `Other`, so that a report another version wrote still reads.
    pub fn parse(name: &str) -> CheckId {
        let id = Self::known(name).unwrap_or_else(|| CheckId::Other(name.into()));
        // A name that does not come back the same (`step 01: ...`) is not one
        // this version makes.
        if id.to_string() == name {
            id
        } else {
            CheckId::Other(name.into())
        }
    }

    fn known(name: &str) -> Option<CheckId> {
        let rest = |prefix: &str| name.strip_prefix(prefix).filter(|r| !r.is_empty());
        Some(match name {
            "autologin" => CheckId::Autologin,
            "hostname" => CheckId::Hostname,
            "sshd" => CheckId::Sshd,
            _ if rest("console login ").is_some() => {
                CheckId::console_login(rest("console login ")?)
            }
            _ if rest("ssh login ").is_some() => {
                let login = rest("ssh login ")?.strip_suffix(')')?;
                let (user, method) = login.rsplit_once(" (")?;
                let method = match method {
                    "key" => LoginMethod::Key,
                    "password" => LoginMethod::Password,
                    _ => return None,
                };
                CheckId::ssh_login(user, method)
            }
            _ if rest("user ").is_some() => CheckId::user(rest("user ")?),
            _ if rest("home-manager ").is_some() => CheckId::home_manager(rest("home-manager ")?),
            _ => {
                let (number, what) = rest("step ")?.split_once(": ")?;
                CheckId::Step {
                    number: number.parse().ok()?,
                    what: what.into(),
                }
            }
        })
    }
}

/// The report's order of checks, whatever order they ran in (the logins run
/// beside the users' checks, and when sshd is still starting the users are
/// checked first). A stable sort by it keeps each kind's own order.
pub fn report_order(id: &CheckId) -> u8 {
    id.rank()
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckId::Autologin => f.write_str("autologin"),
            CheckId::ConsoleLogin { user } => write!(f, "console login {user}"),
            CheckId::Hostname => f.write_str("hostname"),
            CheckId::Sshd => f.write_str("sshd"),
            CheckId::SshLogin { user, method } => write!(f, "ssh login {user} ({method})"),
            CheckId::User { name } => write!(f, "user {name}"),
            CheckId::HomeManager { user } => write!(f, "home-manager {user}"),
            CheckId::Step { number, what } => write!(f, "step {number}: {what}"),
            CheckId::Other(name) => f.write_str(name),
        }
    }
}

impl Serialize for CheckId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CheckId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CheckId, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(CheckId::parse(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<CheckId> {
        vec![
            CheckId::Autologin,
            CheckId::console_login("root"),
            CheckId::Hostname,
            CheckId::Sshd,
            CheckId::ssh_login("root", LoginMethod::Key),
            CheckId::ssh_login("nixos", LoginMethod::Password),
            CheckId::user("nixos"),
            CheckId::home_manager("nixos"),
            CheckId::Step {
                number: 2,
                what: "run `printf 'a: b (c)'`".into(),
            },
        ]
    }

    #[test]
    fn names_are_the_ones_reports_have_always_had() {
        let names: Vec<String> = every_kind().iter().map(CheckId::to_string).collect();
        assert_eq!(
            names,
            [
                "autologin",
                "console login root",
                "hostname",
                "sshd",
                "ssh login root (key)",
                "ssh login nixos (password)",
                "user nixos",
                "home-manager nixos",
                "step 2: run `printf 'a: b (c)'`",
            ]
        );
    }

    #[test]
    fn a_name_read_back_is_the_same_check() {
        for id in every_kind() {
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, serde_json::to_string(&id.to_string()).unwrap());
            assert_eq!(serde_json::from_str::<CheckId>(&json).unwrap(), id);
        }
    }

    #[test]
    fn names_this_version_does_not_make_still_read() {
        for name in [
            "failed units",
            "ssh login root (certificate)",
            "step 01: run `true`",
            "step x: y",
            "user ",
            "",
        ] {
            let id: CheckId = serde_json::from_value(name.into()).unwrap();
            assert_eq!(id, CheckId::Other(name.into()));
            assert_eq!(id.to_string(), name);
        }
        assert_eq!(CheckId::parse("failed units").kind(), Some("failed"));
    }

    #[test]
    fn checks_of_one_kind_are_counted_under_one_word() {
        let ids = every_kind();
        let kinds: Vec<Option<&str>> = ids.iter().map(CheckId::kind).collect();
        assert_eq!(
            kinds,
            [
                None,
                Some("console"),
                None,
                None,
                Some("ssh"),
                Some("ssh"),
                Some("user"),
                Some("home-manager"),
                Some("step"),
            ]
        );
    }

    #[test]
    fn checks_are_reported_in_one_order_whatever_order_they_ran_in() {
        let ran = [
            "autologin",
            "hostname",
            "user nixos",
            "home-manager nixos",
            "sshd",
            "ssh login root (key)",
            "user root",
            "step 1: run `true`",
            "ssh login nixos (password)",
        ];
        let mut ids: Vec<CheckId> = ran.iter().map(|n| CheckId::parse(n)).collect();
        ids.sort_by_key(report_order);
        let names: Vec<String> = ids.iter().map(CheckId::to_string).collect();
        assert_eq!(
            names,
            [
                "autologin",
                "hostname",
                "sshd",
                "ssh login root (key)",
                "ssh login nixos (password)",
                "user nixos",
                "user root",
                "home-manager nixos",
                "step 1: run `true`"
            ]
        );
    }
}
