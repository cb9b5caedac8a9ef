//! LogQL: the parser, the pipeline and the evaluator, as Loki 3.x documents the language
//! (<https://grafana.com/docs/loki/latest/query/>). Written from the documentation; Loki's
//! own code is AGPL and is not used.
//!
//! [`parse`] turns text into an [`Expr`]; an [`Evaluator`] runs it over any
//! [`StreamReader`] ([`LogStore`](crate::store::LogStore) is one) under [`QueryLimits`].

pub mod ast;
pub mod error;
pub mod eval;
pub mod lexer;
pub mod parser;
pub mod pipeline;
pub mod source;
pub mod template;
pub mod units;

pub use ast::{Expr, LogExpr, MetricExpr};
pub use error::{QueryError, QueryErrorKind};
pub use eval::{Evaluator, MetricResult, QueryLimits, QueryStats, SeriesResult, StreamResult};
pub use parser::{parse, parse_selector};
pub use pipeline::LabelSet;
pub use source::{LineHints, StreamReader};
