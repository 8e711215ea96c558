//! The subcommands of the `isotest` binary, one module each, over the clap
//! types of `args`.

pub mod args;
pub mod compare;
pub mod console;
mod image;
pub mod list;
pub mod matrix;
mod outputs;
pub mod report;
pub mod run;

/// The line that says what went wrong: the error and its causes. Some of the
/// library's messages still name their cause themselves (`read FILE: No such
/// file ...`) and keep it as their source too, so a cause that `chain` writes
/// right after itself is written once.
pub fn explain(e: &anyhow::Error) -> String {
    let line = isotest::error::chain(e.as_ref());
    e.chain().skip(1).fold(line, |line, cause| {
        let cause = cause.to_string();
        line.replacen(&format!("{cause}: {cause}"), &cause, 1)
    })
}

#[cfg(test)]
mod tests {
    use super::explain;
    use anyhow::Context;

    #[derive(Debug, thiserror::Error)]
    #[error("read a.json: {0}")]
    struct SaysItsCause(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("read a.json")]
    struct LeavesItsCause(#[source] std::io::Error);

    fn gone() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
    }

    #[test]
    fn a_cause_is_said_once() {
        let said = Err::<(), _>(SaysItsCause(gone())).context("OLD a.json");
        assert_eq!(
            explain(&said.unwrap_err()),
            "OLD a.json: read a.json: no such file"
        );
        let left = Err::<(), _>(LeavesItsCause(gone())).context("OLD a.json");
        assert_eq!(
            explain(&left.unwrap_err()),
            "OLD a.json: read a.json: no such file"
        );
    }
}
