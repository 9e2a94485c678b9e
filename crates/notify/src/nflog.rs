//! The notification log: per group and receiver integration, what the last
//! successful notification said. Alertmanager's `nflog` and the dedup
//! decision of its `DedupStage.needsUpdate`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NflogEntry {
    /// Fingerprints notified as firing.
    pub firing: BTreeSet<u64>,
    /// Fingerprints notified as resolved.
    pub resolved: BTreeSet<u64>,
    /// When (ms): the flush time.
    pub ts: i64,
    /// When the entry is dropped (ms).
    pub expires: i64,
}

/// The log key of a group and an integration of a receiver.
pub fn key(group_key: &str, receiver: &str, kind: &str, idx: usize) -> String {
    format!("{group_key}\u{1f}{receiver}/{kind}/{idx}")
}

/// Whether a notification must go out, as Alertmanager decides:
///
/// - never notified: only if something fires;
/// - a firing alert not in the last notification: yes;
/// - nothing fires: only if the last notification had firing alerts (so
///   receivers learn everything resolved, regardless of `send_resolved`);
/// - with `send_resolved`, a resolved alert not in the last one: yes;
/// - otherwise when the last notification is older than `repeat` — unless
///   `suppress_repeat` (vigil: the group is acknowledged).
pub fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat: i64,
    now: i64,
    suppress_repeat: bool,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&e.firing) {
        return true;
    }
    if firing.is_empty() {
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return true;
    }
    !suppress_repeat && e.ts < now.saturating_sub(repeat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn dedup_rules() {
        let e = NflogEntry {
            firing: s(&[1, 2]),
            resolved: s(&[]),
            ts: 1000,
            expires: i64::MAX,
        };
        assert!(!needs_update(None, &s(&[]), &s(&[1]), true, 10, 0, false));
        assert!(needs_update(None, &s(&[1]), &s(&[]), true, 10, 0, false));
        assert!(needs_update(
            Some(&e),
            &s(&[3]),
            &s(&[]),
            false,
            10_000,
            1001,
            false
        ));
        assert!(!needs_update(
            Some(&e),
            &s(&[1]),
            &s(&[2]),
            false,
            10_000,
            1001,
            false
        ));
        assert!(needs_update(
            Some(&e),
            &s(&[1]),
            &s(&[2]),
            true,
            10_000,
            1001,
            false
        ));
        assert!(needs_update(
            Some(&e),
            &s(&[]),
            &s(&[1, 2]),
            false,
            10_000,
            1001,
            false
        ));
        // Repeat: strictly older than now - repeat.
        assert!(!needs_update(
            Some(&e),
            &s(&[1, 2]),
            &s(&[]),
            false,
            1000,
            2000,
            false
        ));
        assert!(needs_update(
            Some(&e),
            &s(&[1, 2]),
            &s(&[]),
            false,
            1000,
            2001,
            false
        ));
        assert!(!needs_update(
            Some(&e),
            &s(&[1, 2]),
            &s(&[]),
            false,
            1000,
            2001,
            true
        ));
        let empty = NflogEntry {
            firing: s(&[]),
            ..e
        };
        assert!(!needs_update(
            Some(&empty),
            &s(&[]),
            &s(&[1]),
            true,
            1,
            5000,
            false
        ));
    }
}
