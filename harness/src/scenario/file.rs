//! The scenario file as written: strict serde types (an unknown key is an
//! error), with the deserialisers of the fields that are mappings of their own.
//! Scalars are read by `de`; `validate` turns these into the model.

use super::model::{Autologin, HomeManager, Installed, Package};
use super::values::check_name;
use crate::platform::{AccelChoice, Arch, Firmware};
use regex::Regex;
use serde::{de, Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A scenario file, key by key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScenarioFile {
    pub(super) iso: Option<String>,
    pub(super) flake: Option<String>,
    pub(super) image: Option<PathBuf>,
    pub(super) images: Option<Vec<PathBuf>>,
    #[serde(default, deserialize_with = "super::de::one_or_many")]
    pub(super) arch: Vec<Arch>,
    #[serde(default, deserialize_with = "super::de::one_or_many")]
    pub(super) firmware: Vec<Firmware>,
    #[serde(default)]
    pub(super) uefi: BTreeMap<String, UefiFiles>,
    #[serde(default, deserialize_with = "super::de::memory")]
    pub(super) memory: Option<u64>,
    #[serde(default, deserialize_with = "super::de::accel")]
    pub(super) accel: Option<AccelChoice>,
    #[serde(default, deserialize_with = "super::de::duration")]
    pub(super) timeout: Option<Duration>,
    pub(super) baseline: Option<PathBuf>,
    pub(super) max_slowdown: Option<MaxSlowdownFile>,
    #[serde(default)]
    pub(super) fresh_boot: bool,
    #[serde(default)]
    pub(super) boot: BootFile,
    #[serde(default)]
    pub(super) expect: ExpectFile,
    #[serde(default)]
    pub(super) steps: Vec<StepFile>,
}

/// `max_slowdown: { fraction: 0.2, seconds: 5 }`; either may be left out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MaxSlowdownFile {
    #[serde(default, deserialize_with = "super::de::slowdown_fraction")]
    pub(super) fraction: Option<f64>,
    #[serde(default, deserialize_with = "super::de::slowdown_seconds")]
    pub(super) seconds: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UefiFiles {
    pub(super) code: PathBuf,
    pub(super) vars: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BootFile {
    #[serde(default, deserialize_with = "super::de::regex")]
    pub(super) entry: Option<Regex>,
    pub(super) login: Option<SshLoginFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectFile {
    #[serde(default, deserialize_with = "super::de::hostname")]
    pub(super) hostname: Option<String>,
    #[serde(default, deserialize_with = "super::de::autologin")]
    pub(super) autologin: Option<Autologin>,
    pub(super) sshd: Option<SshdFile>,
    #[serde(default)]
    pub(super) users: BTreeMap<String, UserFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SshdFile {
    pub(super) running: Option<bool>,
    #[serde(default, deserialize_with = "super::de::ports")]
    pub(super) ports: Vec<u16>,
    #[serde(default, deserialize_with = "super::de::permit_root_login")]
    pub(super) permit_root_login: Option<String>,
    pub(super) password_authentication: Option<bool>,
    #[serde(default)]
    pub(super) login: Vec<SshLoginFile>,
    #[serde(default)]
    pub(super) host_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserFile {
    pub(super) shell: Option<String>,
    pub(super) home: Option<String>,
    #[serde(default)]
    pub(super) groups: Vec<String>,
    #[serde(default, deserialize_with = "super::de::sudo")]
    pub(super) sudo: bool,
    #[serde(default, deserialize_with = "home_manager")]
    pub(super) home_manager: Option<HomeManager>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HomeManagerFile {
    #[serde(default)]
    pub(super) packages: Vec<PackageFile>,
    #[serde(default)]
    pub(super) files: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StepFile {
    pub(super) run: Option<String>,
    pub(super) send: Option<String>,
    #[serde(default, deserialize_with = "super::de::regex")]
    pub(super) expect: Option<Regex>,
    #[serde(default, deserialize_with = "super::de::exit_status")]
    pub(super) exit: Option<i32>,
    #[serde(default, deserialize_with = "super::de::duration")]
    pub(super) timeout: Option<Duration>,
}

/// `login: root`, or `login: {user: nixos, password_env: PW}`.
#[derive(Debug)]
pub(super) enum SshLoginFile {
    User(String),
    Full(SshLoginFull),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SshLoginFull {
    #[serde(deserialize_with = "super::de::user_name")]
    pub(super) user: String,
    #[serde(default, deserialize_with = "super::de::env_name")]
    pub(super) password_env: Option<String>,
}

/// A visitor, not an untagged enum: serde's untagged enums drop what was wrong
/// inside the mapping (`user: 3`, an unknown key) for "did not match any
/// variant", and the scenario's reader needs the key, line and column.
impl<'de> Deserialize<'de> for SshLoginFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = SshLoginFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a user name, or `{ user: NAME }` with an optional `password_env: VAR`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SshLoginFile, E> {
                Ok(SshLoginFile::User(v.to_owned()))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<SshLoginFile, A::Error> {
                let full = SshLoginFull::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SshLoginFile::Full(full))
            }
        }
        d.deserialize_any(V)
    }
}

/// `home_manager: true`, or `{ packages: [...], files: [...] }`; `false` checks nothing.
/// A visitor, not an untagged enum, so that an error inside the mapping (a bad
/// package name) keeps its own message, line and column.
fn home_manager<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HomeManager>, D::Error> {
    struct V;
    impl<'de> de::Visitor<'de> for V {
        type Value = Option<HomeManager>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("`true`, `false`, or a mapping with `packages:` and `files:`")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(v.then(HomeManager::default))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let f = HomeManagerFile::deserialize(de::value::MapAccessDeserializer::new(map))?;
            Ok(Some(HomeManager {
                packages: f.packages.into_iter().map(|p| p.0).collect(),
                files: f.files,
            }))
        }
    }
    d.deserialize_any(V)
}

/// `packages:` entries: `rg` (a program on PATH), or `{ package: noto-fonts }`
/// (installed in the generation, found by its store path's name), with
/// `program: X` when it is both.
#[derive(Debug)]
pub(super) struct PackageFile(Package);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageMap {
    package: String,
    program: Option<String>,
}

impl<'de> Deserialize<'de> for PackageFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = PackageFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a program name, or `{ package: NAME }` with an optional `program: NAME`",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PackageFile, E> {
                check_name("program", v).map_err(E::custom)?;
                Ok(PackageFile(Package::program(v)))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<PackageFile, A::Error> {
                let m = PackageMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                check_name("package", &m.package).map_err(de::Error::custom)?;
                if let Some(program) = &m.program {
                    check_name("program", program).map_err(de::Error::custom)?;
                }
                Ok(PackageFile(Package {
                    name: m.package,
                    program: m.program,
                    installed: Some(Installed::Named),
                }))
            }
        }
        d.deserialize_any(V)
    }
}
