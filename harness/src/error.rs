//! How an error is shown: its own message, then each cause in turn. Errors in
//! this crate say what failed and keep the cause in `source()`, never in their
//! own message too, so this one function is what writes them out, for the
//! command line and the reports alike.

use std::error::Error;

/// `err` and its causes on one line: `cannot start qemu: No such file or directory`.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("read scenarios/a.yaml")]
    struct Read(#[source] std::io::Error);

    #[test]
    fn each_cause_follows_the_message_once() {
        let e = Read(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ));
        assert_eq!(chain(&e), "read scenarios/a.yaml: no such file");
    }
}
