//! How a trial came to its shell when its boot was shared with other trials
//! (`run`'s shared boots): the trial that booted and saved its machine, or a
//! trial restored from that state, or one that booted afresh after all.

use serde::{Deserialize, Serialize};

/// The shared boot as the reports say it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedBoot {
    /// The trial that booted the machine (this one, when it saved).
    pub booted_by: String,
    #[serde(flatten)]
    pub role: SharedRole,
}

/// This trial's part in a shared boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum SharedRole {
    /// It booted, saved the machine at its shell for `clones` other trials,
    /// and went on on its own machine; the save took `save_secs`.
    Saved { clones: usize, save_secs: f64 },
    /// It started from the saved state in a QEMU of its own: `restore_secs`
    /// from QEMU's start to a shell that answers. Its boot phases are the
    /// shared boot's. `clock` and `randomness` say what was done so that it
    /// does not live at the saved instant or share the saved random state.
    Restored {
        restore_secs: f64,
        clock: String,
        randomness: String,
    },
    /// It booted to be saved for others, but the save failed for `reason`:
    /// they boot from power-on, and this trial went on as if alone.
    Unsaved { reason: String },
    /// It was to start from the shared boot but booted from power-on
    /// instead, for `reason` (the save or the restore failed): never a
    /// failure of the ISO.
    Fresh { reason: String },
}

impl SharedBoot {
    /// The trial line's few words: `shared boot, saved for 3`,
    /// `shared boot from rescue::x86_64::bios`, `fresh boot (…)`.
    pub fn short(&self) -> String {
        match &self.role {
            SharedRole::Saved { clones, .. } => format!("shared boot, saved for {clones}"),
            SharedRole::Restored { .. } => format!("shared boot from {}", self.booted_by),
            SharedRole::Unsaved { .. } => "shared boot not saved".into(),
            SharedRole::Fresh { .. } => "fresh boot (sharing failed)".into(),
        }
    }

    /// The whole story, for the explanation of a trial and the reports.
    pub fn long(&self) -> String {
        match &self.role {
            SharedRole::Saved { clones, save_secs } => format!(
                "shared boot: booted here; the machine was saved at its shell in {save_secs:.1} s for {clones} other trial(s)"
            ),
            SharedRole::Restored {
                restore_secs,
                clock,
                randomness,
            } => format!(
                "shared boot: restored in {restore_secs:.1} s from the state {} saved at its shell (its boot phases are that boot's); clock: {clock}; randomness: {randomness}",
                self.booted_by
            ),
            SharedRole::Unsaved { reason } => format!(
                "shared boot: booted here, but saving the machine for the other trials failed ({reason}); they boot from power-on"
            ),
            SharedRole::Fresh { reason } => format!(
                "fresh boot instead of the shared boot of {}: {reason}",
                self.booted_by
            ),
        }
    }
}
