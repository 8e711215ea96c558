//! Fault injection, for the test suite only: a real run made to fail where no
//! fixture can make it fail, e.g. a check that panics (a bug in isotest), to
//! prove that no QEMU and no private directory outlives it. It exists only in
//! a build with the `fault-injection` feature; without it the hooks are empty
//! and nothing reads the environment.

/// Panics when `ISOTEST_FAULT` is `panic-in-check:<check>`, at the start of the
/// check of that name.
#[cfg(feature = "fault-injection")]
pub(crate) fn check_starts(check: &str) {
    if std::env::var("ISOTEST_FAULT")
        .is_ok_and(|fault| fault.strip_prefix("panic-in-check:") == Some(check))
    {
        panic!("injected fault: the check `{check}` panics (ISOTEST_FAULT)");
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn check_starts(_check: &str) {}

/// Whether `ISOTEST_FAULT` is `fault`: `restore-fails` (every follower of
/// a shared boot fails to restore its state, once its QEMU has started) or
/// `save-fails` (the leader's save fails before QEMU is asked).
#[cfg(feature = "fault-injection")]
pub(crate) fn injected(fault: &str) -> bool {
    std::env::var("ISOTEST_FAULT").is_ok_and(|f| f == fault)
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn injected(_fault: &str) -> bool {
    false
}
