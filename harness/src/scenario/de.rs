//! Deserialisers of the scenario's scalar fields. Each value is parsed inside
//! the deserialiser (not after it), so that the parser attaches the line,
//! column and field path to the error.

use super::model::{Autologin, MAX_SLOWDOWN_FRACTION, MAX_SLOWDOWN_SECONDS};
use super::values::{
    check_hostname, parse_duration, parse_memory, permit_root_login_of_str, yes_no,
};
use crate::platform::AccelChoice;
use regex::Regex;
use serde::{de, Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// Parses a scalar inside the deserializer (not after it), so that the parser
/// attaches the line, column and field path to the error.
fn scalar<'de, D, T, Why>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, Why>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    Why: fmt::Display,
{
    struct V<T, Why>(&'static str, fn(&str) -> Result<T, Why>);
    impl<'de, T, Why: fmt::Display> de::Visitor<'de> for V<T, Why> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.1)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, parse))
}

pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    scalar(d, "a duration such as `90s` or `5m`", parse_duration).map(Some)
}

pub(super) fn memory<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    scalar(d, "a memory size such as `1G`", parse_memory).map(Some)
}

/// `accel: auto|kvm|tcg`, as `--accel` takes it.
pub(super) fn accel<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AccelChoice>, D::Error> {
    scalar(d, "an accelerator: auto, kvm or tcg", |t| match t {
        "auto" => Ok(AccelChoice::Auto),
        "kvm" => Ok(AccelChoice::Kvm),
        "tcg" => Ok(AccelChoice::Tcg),
        _ => Err(format!("unknown accelerator `{t}` (known: auto, kvm, tcg)")),
    })
    .map(Some)
}

pub(super) fn hostname<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    scalar(d, "a host name", |t| {
        check_hostname(t).map(|()| t.to_owned())
    })
    .map(Some)
}

/// An integer checked inside the deserializer's visitor (not after it), so that
/// the parser locates the error at the number itself.
fn bounded_int<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(i128) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T>(&'static str, fn(i128) -> Result<T, String>);
    impl<'de, T> de::Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            (self.1)(v.into()).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.1)(v.into()).map_err(E::custom)
        }
        fn visit_i128<E: de::Error>(self, v: i128) -> Result<T, E> {
            (self.1)(v).map_err(E::custom)
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<T, E> {
            (self.1)(i128::try_from(v).unwrap_or(i128::MAX)).map_err(E::custom)
        }
    }
    d.deserialize_any(V(expecting, check))
}

/// A number (integer or not) checked inside the deserializer's visitor, so that
/// the parser locates the error at the number itself.
fn bounded_number<'de, D>(
    d: D,
    expecting: &'static str,
    check: fn(f64) -> Result<f64, String>,
) -> Result<f64, D::Error>
where
    D: Deserializer<'de>,
{
    struct V(&'static str, fn(f64) -> Result<f64, String>);
    impl<'de> de::Visitor<'de> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            (self.1)(v).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            (self.1)(v as f64).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            (self.1)(v as f64).map_err(E::custom)
        }
    }
    d.deserialize_any(V(expecting, check))
}

/// `max_slowdown.fraction`: more than 0 (every jitter would be a regression) up
/// to `MAX_SLOWDOWN_FRACTION`; NaN and infinities are refused by the same test.
pub(super) fn slowdown_fraction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    bounded_number(d, "a fraction of the baseline's time such as 0.2", |f| {
        if f > 0.0 && f <= MAX_SLOWDOWN_FRACTION {
            Ok(f)
        } else {
            Err(format!("fraction {f} is out of bounds: more than 0 and at most {MAX_SLOWDOWN_FRACTION} (0.2 is 20 %)"))
        }
    })
    .map(Some)
}

/// `max_slowdown.seconds`: 0 (the fraction alone decides) to an hour.
pub(super) fn slowdown_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    bounded_number(d, "seconds such as 5", |s| {
        if (0.0..=MAX_SLOWDOWN_SECONDS).contains(&s) {
            Ok(s)
        } else {
            Err(format!(
                "seconds {s} is out of bounds: 0 to {MAX_SLOWDOWN_SECONDS}"
            ))
        }
    })
    .map(Some)
}

/// TCP ports sshd listens on: 1 to 65535.
pub(super) fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    struct Port(u16);
    impl<'de> Deserialize<'de> for Port {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Port, D::Error> {
            bounded_int(d, "a TCP port (1 to 65535)", |n| match u16::try_from(n) {
                Ok(port) if port > 0 => Ok(Port(port)),
                _ => Err(format!("{n} is not a port sshd can listen on (1 to 65535)")),
            })
        }
    }
    Ok(Vec::<Port>::deserialize(d)?
        .into_iter()
        .map(|p| p.0)
        .collect())
}

/// A command's exit status as a shell reports it: 0 to 255.
pub(super) fn exit_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    bounded_int(d, "an exit status (0 to 255)", |n| match i32::try_from(n) {
        Ok(status) if (0..=255).contains(&status) => Ok(Some(status)),
        _ => Err(format!(
            "exit status {n} is not one a command can have (0 to 255)"
        )),
    })
}

pub(super) fn regex<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Regex>, D::Error> {
    scalar(d, "a regular expression", |t| {
        Regex::new(t).map_err(|e| format!("invalid regex: {e}"))
    })
    .map(Some)
}

/// A value that may be written as a string or as a boolean, each read by its
/// own function.
struct StrOrBool<T, Why> {
    expecting: &'static str,
    of_bool: fn(bool) -> Result<T, Why>,
    of_str: fn(&str) -> Result<T, Why>,
}

impl<'de, T, Why: fmt::Display> de::Visitor<'de> for StrOrBool<T, Why> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        (self.of_bool)(v).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.of_str)(v).map_err(E::custom)
    }
}

/// `autologin: root` names the user; `autologin: false` expects a login prompt.
pub(super) fn autologin<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Autologin>, D::Error> {
    d.deserialize_any(StrOrBool {
        expecting: "a user name, or `false` for a login prompt",
        of_bool: |v| match v {
            false => Ok(Autologin::Disabled),
            true => Err("name the user (e.g. `autologin: root`) or write `false`"),
        },
        of_str: |v| Ok(Autologin::User(v.to_owned())),
    })
    .map(Some)
}

/// `permit_root_login: yes|no|prohibit-password|forced-commands-only` (or a bool).
pub(super) fn permit_root_login<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    d.deserialize_any(StrOrBool {
        expecting: "yes, no, prohibit-password or forced-commands-only",
        of_bool: |v| Ok(yes_no(v).into()),
        of_str: permit_root_login_of_str,
    })
    .map(Some)
}

/// `sudo: nopasswd` is the one sudo expectation.
pub(super) fn sudo<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    scalar(d, "`nopasswd`", |t| match t {
        "nopasswd" => Ok(true),
        _ => Err(format!("`{t}`: the only sudo expectation is `nopasswd`")),
    })
}

/// `arch: x86_64` and `arch: [x86_64, aarch64]` both work.
pub(super) fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T> de::Visitor<'de> for V<T>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a name or a list of names")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
            v.parse().map(|t| vec![t]).map_err(E::custom)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(name) = seq.next_element::<String>()? {
                out.push(name.parse().map_err(de::Error::custom)?);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

/// A name written as a string. The YAML reader would give `3` or `true` to a
/// plain `String` as text; where a name belongs, a number or a boolean is a
/// mistake to point at, not a name.
fn name<'de, D: Deserializer<'de>>(d: D, expecting: &'static str) -> Result<String, D::Error> {
    struct V(&'static str);
    impl<'de> de::Visitor<'de> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
    }
    d.deserialize_any(V(expecting))
}

/// `user:` of a login.
pub(super) fn user_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    name(d, "a user name")
}

/// `password_env:` of a login.
pub(super) fn env_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    name(d, "an environment variable name").map(Some)
}
