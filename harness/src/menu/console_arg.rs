//! The serial console in kernel arguments: `console=ttyS0,115200n8` names the
//! device `console=ttyS0` and its settings; an entry is on the serial console
//! when its arguments name that device, whatever the settings.

/// `console=ttyS0,115200n8` → `console=ttyS0`.
pub fn console_device(console_arg: &str) -> &str {
    console_arg.split(',').next().unwrap_or(console_arg)
}

/// Whether kernel arguments already have `console_arg`'s console device
/// (`console=ttyS0,115200n8` counts for `console=ttyS0,9600`).
pub fn has_console(kernel_args: &str, console_arg: &str) -> bool {
    let device = console_device(console_arg);
    kernel_args
        .split_whitespace()
        .any(|a| a.split(',').next() == Some(device))
}
