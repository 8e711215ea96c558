//! Expectations from two places: derived from the flake host's configuration, and
//! written in the scenario. The scenario's win, field by field, and every
//! expectation remembers where it came from so that the report can say so.

use super::model::{Expect, HomeManager, Sshd, User};
use crate::check_id::CheckId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where an expectation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    Scenario,
    Flake,
    /// Some fields from each.
    FlakeAndScenario,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Scenario => "scenario",
            Origin::Flake => "flake",
            Origin::FlakeAndScenario => "flake + scenario",
        }
    }
}

/// An expectation that has an origin of its own: one per check, but the SSH
/// logins, which come from one list (`sshd.login`) and share its origin.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Expectation {
    Hostname,
    Autologin,
    Sshd,
    SshLogins,
    User(String),
    HomeManager(String),
}

/// The origin of each expectation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins(BTreeMap<Expectation, Origin>);

impl Origins {
    /// The origin of a check's expectation; steps are always the scenario's.
    pub fn of_check(&self, check: &CheckId) -> Option<Origin> {
        let expectation = match check {
            CheckId::Step { .. } => return Some(Origin::Scenario),
            CheckId::Hostname => Expectation::Hostname,
            CheckId::Autologin => Expectation::Autologin,
            CheckId::Sshd => Expectation::Sshd,
            CheckId::SshLogin { .. } => Expectation::SshLogins,
            CheckId::User { name } => Expectation::User(name.clone()),
            CheckId::HomeManager { user } => Expectation::HomeManager(user.clone()),
            // isotest's own console login expects nothing of the ISO.
            CheckId::ConsoleLogin { .. } | CheckId::Other(_) => return None,
        };
        self.0.get(&expectation).copied()
    }

    fn set(&mut self, expectation: Expectation, scenario: bool, flake: bool) {
        let origin = match (scenario, flake) {
            (true, true) => Origin::FlakeAndScenario,
            (true, false) => Origin::Scenario,
            (false, true) => Origin::Flake,
            (false, false) => return,
        };
        self.0.insert(expectation, origin);
    }
}

impl Expect {
    /// These (the scenario's) expectations over `derived` (the flake's; without a
    /// flake, `Expect::default()`, and every origin is the scenario).
    pub fn over(&self, derived: &Expect) -> (Expect, Origins) {
        let mut origins = Origins::default();
        let hostname = pick(
            &self.hostname,
            &derived.hostname,
            Expectation::Hostname,
            &mut origins,
        );
        let autologin = pick(
            &self.autologin,
            &derived.autologin,
            Expectation::Autologin,
            &mut origins,
        );
        let sshd = merge_sshd(self.sshd.as_ref(), derived.sshd.as_ref(), &mut origins);
        let mut users = BTreeMap::new();
        let names: std::collections::BTreeSet<&String> =
            self.users.keys().chain(derived.users.keys()).collect();
        for name in names {
            let user = merge_user(
                name,
                self.users.get(name),
                derived.users.get(name),
                &mut origins,
            );
            users.insert(name.clone(), user);
        }
        (
            Expect {
                hostname,
                autologin,
                sshd,
                users,
            },
            origins,
        )
    }
}

fn pick<T: Clone>(
    scenario: &Option<T>,
    flake: &Option<T>,
    expectation: Expectation,
    origins: &mut Origins,
) -> Option<T> {
    origins.set(
        expectation,
        scenario.is_some(),
        scenario.is_none() && flake.is_some(),
    );
    scenario.clone().or_else(|| flake.clone())
}

/// A list the scenario left empty is the flake's.
fn list<T: Clone>(scenario: &[T], flake: &[T]) -> Vec<T> {
    if scenario.is_empty() { flake } else { scenario }.to_vec()
}

fn merge_sshd(
    scenario: Option<&Sshd>,
    flake: Option<&Sshd>,
    origins: &mut Origins,
) -> Option<Sshd> {
    let (s, f) = match (scenario, flake) {
        (None, None) => return None,
        (Some(one), None) | (None, Some(one)) => {
            let origin = if scenario.is_some() {
                Origin::Scenario
            } else {
                Origin::Flake
            };
            origins.0.insert(Expectation::Sshd, origin);
            if !one.login.is_empty() {
                origins.0.insert(Expectation::SshLogins, origin);
            }
            return Some(one.clone());
        }
        (Some(s), Some(f)) => (s, f),
    };
    let running = s.running.or(f.running);
    let mut login = list(&s.login, &f.login);
    if running == Some(false) {
        login.clear();
    }
    let merged = Sshd {
        running,
        ports: list(&s.ports, &f.ports),
        permit_root_login: s
            .permit_root_login
            .clone()
            .or_else(|| f.permit_root_login.clone()),
        password_authentication: s.password_authentication.or(f.password_authentication),
        login,
        host_keys: s.host_keys.clone(),
    };
    let from_flake = Sshd {
        login: s.login.clone(),
        ..merged.clone()
    } != *s;
    origins.set(Expectation::Sshd, true, from_flake);
    if !merged.login.is_empty() {
        origins.set(
            Expectation::SshLogins,
            !s.login.is_empty(),
            s.login.is_empty(),
        );
    }
    Some(merged)
}

fn merge_user(
    name: &str,
    scenario: Option<&User>,
    flake: Option<&User>,
    origins: &mut Origins,
) -> User {
    let empty = User::default();
    let (s, f) = (scenario.unwrap_or(&empty), flake.unwrap_or(&empty));
    let user = User {
        shell: s.shell.clone().or_else(|| f.shell.clone()),
        home: s.home.clone().or_else(|| f.home.clone()),
        groups: list(&s.groups, &f.groups),
        sudo_nopasswd: s.sudo_nopasswd || f.sudo_nopasswd,
        home_manager: match (&s.home_manager, &f.home_manager) {
            (Some(s), Some(f)) => Some(HomeManager {
                packages: list(&s.packages, &f.packages),
                files: list(&s.files, &f.files),
            }),
            (s, f) => s.clone().or_else(|| f.clone()),
        },
    };
    let own = User {
        home_manager: None,
        ..s.clone()
    };
    let merged = User {
        home_manager: None,
        ..user.clone()
    };
    origins.set(
        Expectation::User(name.to_owned()),
        scenario.is_some(),
        flake.is_some() && (scenario.is_none() || merged != own),
    );
    if let Some(hm) = &user.home_manager {
        let from_scenario = s.home_manager.is_some();
        origins.set(
            Expectation::HomeManager(name.to_owned()),
            from_scenario,
            !from_scenario || s.home_manager.as_ref() != Some(hm),
        );
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Autologin, Package, SshLogin};

    fn flake() -> Expect {
        let mut users = BTreeMap::new();
        users.insert(
            "nixos".to_owned(),
            User {
                shell: Some("zsh".into()),
                groups: vec!["wheel".into()],
                sudo_nopasswd: true,
                home_manager: Some(HomeManager {
                    packages: vec![Package::program("jq")],
                    files: vec![],
                }),
                ..User::default()
            },
        );
        Expect {
            hostname: Some("rescue".into()),
            autologin: Some(Autologin::User("root".into())),
            sshd: Some(Sshd {
                running: Some(true),
                ports: vec![22],
                permit_root_login: Some("yes".into()),
                password_authentication: Some(true),
                login: vec![SshLogin {
                    user: "root".into(),
                    password_env: None,
                }],
                host_keys: vec![],
            }),
            users,
        }
    }

    #[test]
    fn the_flake_alone_is_a_complete_expectation() {
        let (merged, origins) = Expect::default().over(&flake());
        assert_eq!(merged, flake());
        let expected: BTreeMap<Expectation, Origin> = [
            Expectation::Autologin,
            Expectation::HomeManager("nixos".into()),
            Expectation::Hostname,
            Expectation::Sshd,
            Expectation::SshLogins,
            Expectation::User("nixos".into()),
        ]
        .into_iter()
        .map(|expectation| (expectation, Origin::Flake))
        .collect();
        assert_eq!(origins, Origins(expected.clone()));
        assert_eq!(
            origins.of_check(&CheckId::parse("ssh login root (key)")),
            Some(Origin::Flake)
        );
        // The other way round, without a flake: all of it is the scenario's.
        let (merged, origins) = flake().over(&Expect::default());
        assert_eq!(merged, flake());
        assert_eq!(
            origins,
            Origins(
                expected
                    .into_keys()
                    .map(|name| (name, Origin::Scenario))
                    .collect()
            )
        );
        assert_eq!(
            origins.of_check(&CheckId::parse("step 1: run true")),
            Some(Origin::Scenario)
        );
    }

    #[test]
    fn scenario_fields_override_the_flake_field_by_field() {
        let mut scenario = Expect {
            hostname: Some("renamed".into()),
            ..Expect::default()
        };
        scenario.sshd = Some(Sshd {
            running: None,
            ports: vec![],
            permit_root_login: None,
            password_authentication: Some(false),
            login: vec![SshLogin {
                user: "nixos".into(),
                password_env: Some("PW".into()),
            }],
            host_keys: vec![],
        });
        scenario.users.insert(
            "nixos".into(),
            User {
                shell: Some("bash".into()),
                ..User::default()
            },
        );
        let (merged, origins) = scenario.over(&flake());
        assert_eq!(merged.hostname.as_deref(), Some("renamed"));
        assert_eq!(
            origins.of_check(&CheckId::parse("hostname")),
            Some(Origin::Scenario)
        );
        assert_eq!(
            origins.of_check(&CheckId::parse("autologin")),
            Some(Origin::Flake)
        );
        let sshd = merged.sshd.unwrap();
        assert_eq!(
            (sshd.running, sshd.ports, sshd.permit_root_login),
            (Some(true), vec![22], Some("yes".into()))
        );
        assert_eq!(sshd.password_authentication, Some(false));
        assert_eq!(sshd.login[0].user, "nixos");
        assert_eq!(
            origins.of_check(&CheckId::parse("sshd")),
            Some(Origin::FlakeAndScenario)
        );
        assert_eq!(
            origins.of_check(&CheckId::parse("ssh login nixos (password)")),
            Some(Origin::Scenario)
        );
        let nixos = &merged.users["nixos"];
        assert_eq!(
            (
                nixos.shell.as_deref(),
                nixos.groups.clone(),
                nixos.sudo_nopasswd
            ),
            (Some("bash"), vec!["wheel".into()], true)
        );
        assert_eq!(
            origins.of_check(&CheckId::parse("user nixos")),
            Some(Origin::FlakeAndScenario)
        );
        assert_eq!(
            origins.of_check(&CheckId::parse("home-manager nixos")),
            Some(Origin::Flake)
        );
    }

    #[test]
    fn sshd_off_in_the_scenario_drops_the_flakes_logins() {
        let scenario = Expect {
            sshd: Some(Sshd {
                running: Some(false),
                ports: vec![],
                permit_root_login: None,
                password_authentication: None,
                login: vec![],
                host_keys: vec![],
            }),
            ..Expect::default()
        };
        let (merged, origins) = scenario.over(&flake());
        assert!(merged.sshd.unwrap().login.is_empty());
        assert_eq!(
            origins.of_check(&CheckId::parse("ssh login root (key)")),
            None
        );
    }
}
