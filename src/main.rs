//! `sightline`: the command line, and the wiring of every crate into one process.
//!
//! `sightline` (or `sightline serve`) runs the appliance; `check config|rules` validates files
//! like promtool; `import` brings in the replaced stack's history, silences and dashboards;
//! `config default` prints the embedded default; `version` says what was built.

mod allocator;
mod check;
mod cli;
mod data_dir;
mod import;
mod log_collection;
mod self_metrics;
mod serve;

use std::process::ExitCode;

use clap::Parser;

use cli::{CheckCommand, Cli, Command, ConfigCommand, TestCommand};
use sightline_alerting::rulefmt::QueryLanguage;

#[allow(clippy::print_stdout)] // Printing is what these subcommands do.
fn main() -> ExitCode {
    allocator::limit_arenas();
    let cli = Cli::parse();
    let succeeded = match cli.command {
        None => serve::main(cli.serve),
        Some(Command::Serve(args)) => serve::main(args),
        Some(Command::Check(CheckCommand::Config { file })) => check::config(&file),
        Some(Command::Test(TestCommand::Rules { files })) => check::rule_tests(&files),
        Some(Command::Import(command)) => import::run(command),
        Some(Command::Check(CheckCommand::Rules { logql, files })) => {
            let language = if logql {
                QueryLanguage::LogQl
            } else {
                QueryLanguage::PromQl
            };
            check::rules(&files, language)
        }
        Some(Command::Config(ConfigCommand::Default)) => {
            write_stdout(sightline_core::config::DEFAULT_CONFIG)
        }
        Some(Command::Version) => write_stdout(&format!("{}\n", self_metrics::version_text())),
    };
    if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Writes `text` to standard output. A reader that stopped reading (`sightline version |
/// head -1`) is not a failure; `print!` would panic on the broken pipe.
fn write_stdout(text: &str) -> bool {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => true,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => true,
        Err(error) => {
            eprintln!("cannot write to standard output: {error}");
            false
        }
    }
}
