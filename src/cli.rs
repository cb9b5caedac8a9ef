//! The command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sightline_core::duration::Duration;

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
    /// Bring in what the replaced stack holds, while Sightline is stopped.
    #[command(subcommand)]
    Import(ImportCommand),
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

/// `sightline import …`
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Copy metric history from a Prometheus through its remote-read API.
    Prometheus {
        /// Where to import into.
        #[command(flatten)]
        target: ImportTarget,
        /// The Prometheus, e.g. http://prometheus-operated.monitoring:9090/.
        #[arg(long)]
        url: url::Url,
        /// How far back from now.
        #[arg(long, default_value = "7d")]
        since: Duration,
        /// The series to copy.
        #[arg(
            long = "match",
            value_name = "SELECTOR",
            default_value = "{job=~\".+\"}"
        )]
        selector: String,
    },
    /// Copy an Alertmanager's active and pending silences (API v2).
    Alertmanager {
        /// Where to import into.
        #[command(flatten)]
        target: ImportTarget,
        /// The Alertmanager, e.g. http://alertmanager-operated.monitoring:9093/.
        #[arg(long)]
        url: url::Url,
    },
    /// Take Grafana dashboards: exported JSON files, or every dashboard of a Grafana.
    Grafana {
        /// Where to import into.
        #[command(flatten)]
        target: ImportTarget,
        /// Dashboard JSON files under this directory; subdirectories are folders.
        #[arg(
            long,
            value_name = "DIR",
            required_unless_present = "url",
            conflicts_with = "url"
        )]
        dir: Option<PathBuf>,
        /// A Grafana whose dashboards to take through its HTTP API.
        #[arg(long)]
        url: Option<url::Url>,
        /// A Grafana API (service account) token, for --url.
        #[arg(long, requires = "url")]
        token: Option<String>,
    },
    /// Copy log history from a Loki query API (query_range, forward, in time slices).
    Loki {
        /// Where to import into.
        #[command(flatten)]
        target: ImportTarget,
        /// The Loki (or another Sightline), e.g. http://loki-gateway.monitoring/.
        #[arg(long)]
        url: url::Url,
        /// How far back from now.
        #[arg(long, default_value = "7d")]
        since: Duration,
        /// The stream selector of the lines to copy.
        #[arg(long, default_value = "{job=~\".+\"}")]
        query: String,
        /// The time read per series of requests.
        #[arg(long, default_value = "1h")]
        slice: Duration,
        /// Lines per request: at most the source's max_entries_limit_per_query.
        #[arg(long, default_value_t = 5000)]
        limit: usize,
    },
}

/// The data directory an import writes into, as `serve` finds it.
#[derive(Debug, Args)]
pub struct ImportTarget {
    /// Configuration file, for `storage.path`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory; `storage.path` from the config, else `./data`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `sightline config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the embedded default configuration.
    Default,
}
