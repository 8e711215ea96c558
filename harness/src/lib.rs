//! isotest: boots rescue/installer ISOs under QEMU, drives their serial console and
//! checks hostname, autologin and more against declarative YAML scenarios.
//!
//! The modules follow the data flow: `scenario` (YAML) → `plan` (trials) →
//! `qemu` (a machine) → `console` (boot menu, shell) → `checks` → `report`;
//! `run` ties one trial together; `matrix` hands the plan to CI runners.

pub mod baseline;
pub mod checks;
pub mod console;
pub mod error;
mod fault;
pub mod flake;
pub mod iso;
pub mod matrix;
pub mod plan;
pub mod platform;
pub mod progress;
pub mod qemu;
pub mod report;
pub mod run;
pub mod scenario;
pub mod select;
pub mod sizing;
pub mod ssh;
