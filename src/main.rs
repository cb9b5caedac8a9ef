//! `sightline`: the command line, and the wiring of every crate into one process.
//!
//! `sightline` (or `sightline serve`) runs the appliance; `check config|rules` validates files
//! like promtool; `import` brings in the replaced stack's history, silences and dashboards;
//! `config default` prints the embedded default; `version` says what was built.

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

/// mimalloc instead of glibc's malloc when built with `--features mimalloc`, for comparing the
/// two on the ingest benchmark (docs/BENCHMARKS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(clippy::print_stdout)] // Printing is what these subcommands do.
fn main() -> ExitCode {
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
            print!("{}", sightline_core::config::DEFAULT_CONFIG);
            true
        }
        Some(Command::Version) => {
            println!("{}", self_metrics::version_text());
            true
        }
    };
    if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
