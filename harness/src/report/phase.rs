//! The points a trial's timeline marks: each boot phase as it was reached,
//! then the console settled after it. Written as their ids (`kernel`,
//! `settled`) in report.json and read back by them; an id this version does
//! not know (a report another version wrote) reads back as itself.

use crate::console::Phase;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TrialPhase {
    /// A phase of the boot.
    Boot(Phase),
    /// The console settled after the shell came (the checks start).
    Settled,
    /// A phase this version does not make, read from a report.
    Other(String),
}

/// Every phase of the boot, for reading ids back.
const BOOT_PHASES: [Phase; 7] = [
    Phase::PowerOn,
    Phase::TextModeKey,
    Phase::BootMenu,
    Phase::Kernel,
    Phase::Userspace,
    Phase::LoginPrompt,
    Phase::Shell,
];

impl TrialPhase {
    /// The name in reports: the boot phase's id, or `settled`.
    pub fn id(&self) -> &str {
        match self {
            TrialPhase::Boot(phase) => phase.id(),
            TrialPhase::Settled => "settled",
            TrialPhase::Other(id) => id,
        }
    }

    fn from_id(id: String) -> TrialPhase {
        if id == TrialPhase::Settled.id() {
            return TrialPhase::Settled;
        }
        BOOT_PHASES
            .into_iter()
            .find(|p| p.id() == id)
            .map_or(TrialPhase::Other(id), TrialPhase::Boot)
    }
}

impl From<Phase> for TrialPhase {
    fn from(phase: Phase) -> TrialPhase {
        TrialPhase::Boot(phase)
    }
}

/// Padded to a width when one is given (`{phase:<14}`: the JUnit timeline's column).
impl fmt::Display for TrialPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.id())
    }
}

impl Serialize for TrialPhase {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for TrialPhase {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TrialPhase, D::Error> {
        Ok(TrialPhase::from_id(String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_reads_back_from_its_id() {
        let all = BOOT_PHASES
            .into_iter()
            .map(TrialPhase::Boot)
            .chain([TrialPhase::Settled]);
        for phase in all {
            let json = serde_json::to_string(&phase).unwrap();
            assert_eq!(json, format!("\"{}\"", phase.id()));
            assert_eq!(serde_json::from_str::<TrialPhase>(&json).unwrap(), phase);
        }
        assert_eq!(
            serde_json::from_str::<TrialPhase>("\"lunch\"").unwrap(),
            TrialPhase::Other("lunch".into())
        );
    }

    #[test]
    fn a_phase_fills_the_width_it_is_given() {
        assert_eq!(format!("[{:<9}]", TrialPhase::Settled), "[settled  ]");
        assert_eq!(
            format!("[{:<8}]", TrialPhase::Boot(Phase::Kernel)),
            "[kernel  ]"
        );
    }
}
