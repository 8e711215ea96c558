//! Results of `nix` kept for the rest of the process, by flake attribute.

use super::error::FlakeError;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Results of `nix` kept for the rest of the process, by flake attribute.
pub(super) type Memo<T> = OnceLock<Mutex<HashMap<String, Result<T, FlakeError>>>>;

/// `compute`'s result for `attr`, computed once per process: trials of one host
/// on several firmwares share a build and an evaluation. The lock is held while
/// computing, so one `nix` runs at a time and its progress lines do not
/// interleave (Nix uses the machine's cores for each build anyway).
pub(super) fn once<T: Clone>(
    memo: &Memo<T>,
    attr: String,
    compute: impl FnOnce(&str) -> Result<T, FlakeError>,
) -> Result<T, FlakeError> {
    let mut done = memo
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(result) = done.get(&attr) {
        return result.clone();
    }
    let result = compute(&attr);
    done.insert(attr, result.clone());
    result
}
