//! isotest: boots rescue/installer ISOs under QEMU, drives their serial console and
//! checks hostname, autologin and more against declarative YAML scenarios.
//!
//! The modules follow the data flow: `scenario` (YAML) → `plan` (trials) →
//! `menu` (the boot menu's entry) → `qemu` (a machine) → `console` (boot, shell) → `checks` → `report`;
//! `run` ties one trial together; `matrix` hands the plan to CI runners.

pub mod baseline;
pub mod check_id;
pub mod checks;
pub mod console;
pub mod error;
mod fault;
pub mod flake;
pub mod matrix;
pub mod menu;
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

/// ISO 9660 and El Torito, read where the boot menus are read.
pub use menu::iso;
