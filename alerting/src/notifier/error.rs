//! The notifier's error type.

use sightline_core::yaml::SourceError;

/// One problem found after the file parsed: a reference to nothing, a name used twice, a
/// field required here or in `global`.
pub use sightline_core::yaml::Problem;

/// Why an Alertmanager config was not loaded. Every message starts with `file:line:col`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read, is not YAML, or breaks the schema or a section's own rules
    /// (an unknown key, a bad duration or matcher, a pushover config without `token`).
    /// Reading stops at the first such problem.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Every section is valid on its own but the whole is not; one line per problem, in file
    /// order.
    #[error("{}", .problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The problems found, sorted by position.
        problems: Vec<Problem>,
    },
}
