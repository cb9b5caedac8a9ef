//! The command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// One binary for a homelab's metrics, logs, alerts and dashboards.
#[derive(Debug, Parser)]
#[command(name = "sightline", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `serve`, accepted without the word `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the appliance (the default).
    Serve(ServeArgs),
    /// Validate files the way promtool does.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run unit tests the way promtool does.
    #[command(subcommand)]
    Test(TestCommand),
    /// Print version and build information.
    Version,
}

/// How the appliance runs.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file; the embedded default when omitted (see `sightline config default`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory; `storage.path` from the config, else `./data`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to serve HTTP on, repeatable; `web.listen` from the config, else 127.0.0.1:9090.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// Log filter: error, warn, info, debug, trace, or per-module directives
    /// (`info,sightline_ui=debug`).
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
}

/// `sightline check …`
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Check a configuration file and the rule files it names.
    Config {
        /// The configuration file.
        file: PathBuf,
    },
    /// Check rule files (Prometheus `groups:` files or PrometheusRule objects).
    Rules {
        /// The files are LogQL rule files (Loki ruler style), as `log_rule_files` names them.
        #[arg(long)]
        logql: bool,
        /// The rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `sightline test …`
#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Run rule unit tests in promtool's test-file format.
    Rules {
        /// The test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `sightline config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the embedded default configuration.
    Default,
}
