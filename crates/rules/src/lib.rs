//! vigil-rules: Prometheus rule files evaluated unchanged — recording rules,
//! alerting rules with their state machine, and the Go-template subset that
//! annotations and labels use.
//!
//! The engine sees storage and queries only through traits (a query
//! function over any `vigil_model::Queryable` via `vigil_promql`, an
//! appender, an alert sink), so it runs inside the server, in tests with a
//! manual clock, or embedded in another program.
#![warn(missing_docs)]

pub mod alert;
pub mod build;
pub mod engine;
pub mod file;
pub mod group;
pub mod manager;
pub mod query;
pub mod rule;
pub use vigil_template as template;
pub mod unittest;

pub use alert::{Alert, AlertState};
pub use build::{AlertBuilder, GroupBuilder, RecordBuilder};
pub use engine::RuleEngine;
pub use file::{load_rule_file, parse_rule_file, RuleFile, RuleFileError};
pub use group::{AlertSink, Group, GroupEnv, OutgoingAlert};
pub use manager::{load_groups, parse_groups, ManagerOptions, RuleManager};
pub use query::{EngineQuery, QueryFunc, RuleQueryError};
pub use rule::{Health, Rule};
