//! Receivers: their configuration (Alertmanager's `receivers` schema plus
//! vigil's `sms_configs`) and the integrations built from it.

use serde::Deserialize;

use crate::types::Integration;

/// One `receivers` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// The receiver's name, referenced by routes.
    pub name: String,
}

/// Builds the integrations of a receiver.
pub fn build(cfg: &ReceiverConfig) -> Result<Vec<Box<dyn Integration>>, String> {
    let _ = cfg;
    Ok(Vec::new())
}
