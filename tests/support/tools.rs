//! Programs the tests run besides isotest: found on PATH, or in the venv
//! where ci/install-deps puts the validators.

use std::path::PathBuf;

/// The first `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `name` from PATH; a test that needs it cannot run without it, so its
/// absence fails the test with `missing` (what to install).
pub fn tool(name: &str, missing: &str) -> PathBuf {
    which(name).unwrap_or_else(|| panic!("{name} {missing}"))
}

/// `name` from ci/install-deps' venv, else from PATH.
pub fn venv_tool(name: &str) -> PathBuf {
    let venv = ci_venv();
    let candidate = venv.join("bin").join(name);
    if candidate.is_file() {
        return candidate;
    }
    let missing = format!(
        "is not installed: ci/install-deps installs it in {}",
        venv.display()
    );
    tool(name, &missing)
}

/// Where ci/install-deps installs check-jsonschema and actionlint.
fn ci_venv() -> PathBuf {
    if let Some(venv) = std::env::var_os("ISOTEST_CI_VENV") {
        return PathBuf::from(venv);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache"));
    cache.join("isotest/ci-venv")
}
