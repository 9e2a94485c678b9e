//! vigil-scrape: pulls metrics from targets the way Prometheus does.
//!
//! - [`parse`]: zero-copy parsers for the Prometheus text format and
//!   OpenMetrics, picked by `Content-Type`;
//! - [`config`]: `scrape_configs` as in `prometheus.yml` (serde types with
//!   Prometheus's key names, validated against global defaults);
//! - [`discovery`]: target groups from `static_configs` and
//!   `file_sd_configs` (JSON and YAML files, globs, watched for changes);
//! - [`relabel`]: `relabel_configs` and `metric_relabel_configs`, every
//!   Prometheus action;
//! - [`ScrapeManager`]: one tokio task per target, appending through any
//!   [`vigil_model::Appendable`], with the synthetic `up` / `scrape_*`
//!   series and stale markers;
//! - [`probe`]: HTTP health probes (vigil's `probes` section), stored as
//!   `probe_*` series.
//!
//! The central decision: the scrape loop keys its series cache by the
//! series text exactly as the target wrote it (`name{labels}`), as
//! Prometheus does. A series seen before costs one hash lookup: no label
//! parsing, sorting, relabeling or allocation. The parsers are built for
//! that: they hand out that text as a borrowed slice and only build labels
//! when asked. Storage calls are blocking (the TSDB may fsync), so parsing,
//! every append and the commit run on tokio's blocking pool, never on the
//! async workers.
#![warn(missing_docs)]

pub mod config;
pub mod discovery;
pub mod parse;
pub mod probe;
pub mod relabel;

mod client;
mod manager;
mod scrape_loop;
mod target;

pub use client::{client_builder, ClientError};
pub use config::{
    check_unique_job_names, validate_scrape_configs, ConfigError, GlobalDefaults, ScrapeConfig,
    StaticConfig,
};
pub use manager::{ScrapeError, ScrapeManager, ScrapeOptions, TargetMetadata};
pub use scrape_loop::MetricMetadata;
pub use target::{DroppedTarget, TargetError, TargetHealth, TargetStatus};
