//! The `isotest` command: parses arguments and calls the library.

mod cli;

use clap::Parser;
use cli::args::{Cli, Command};
use isotest::console::attach::restore_terminal;
use isotest::qemu::{kill_all_machines, remove_private_dirs};
use isotest::report::EXIT_USAGE;
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ISOTEST_LOG")
                .unwrap_or_else(|_| "isotest=info".into()),
        )
        .with_writer(isotest::progress::LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
    // Ctrl-C and SIGTERM: no QEMU and no private directory may outlive us, and
    // a terminal left raw by `console` is put back.
    let _ = ctrlc::set_handler(|| {
        kill_all_machines();
        remove_private_dirs();
        restore_terminal();
        eprintln!("isotest: interrupted; QEMU stopped");
        std::process::exit(130);
    });
    let done = match Cli::parse().command {
        Command::Run(args) => cli::run::run(args),
        Command::Console(args) => cli::console::run(args),
        Command::Report(args) => cli::report::run(args),
        Command::Compare(args) => cli::compare::run(args),
        Command::List(args) => cli::list::run(args),
        Command::Matrix(args) => cli::matrix::run(args),
    };
    done.unwrap_or_else(|e| {
        eprintln!("error: {}", isotest::error::chain(e.as_ref()));
        ExitCode::from(EXIT_USAGE)
    })
}
