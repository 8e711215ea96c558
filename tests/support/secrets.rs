//! The fixtures' passwords, which scenarios read from the environment.

/// The fixture's password of `nixos`, which scenarios/rescue.yaml reads from
/// RESCUE_PASSWORD for its password login.
pub const RESCUE_PASSWORD: &str = "nixos-rescue";
/// The `console-login` fixture's root password (no autologin there), which the
/// console login tests read from ROOT_PASSWORD; WRONG_ROOT_PASSWORD is not it.
pub const ROOT_PASSWORD: &str = "rescue-root";
pub const WRONG_ROOT_PASSWORD: &str = "not-rescue-root";
