//! Escalation policies and acknowledgements (vigil's; Alertmanager has
//! neither, see Alertmanager issues #1860, #2150, #686).
//!
//! A route naming an escalation policy escalates its groups:
//!
//! - when a group's flush sends firing alerts, level 1 starts: its receivers
//!   are notified along with the route's receiver;
//! - a level not acknowledged within its timeout notifies the next level;
//!   receivers of levels reached keep getting the group's updates (changes,
//!   resolution) as the route's receiver does; after the last level's
//!   timeout nothing more escalates and `repeat_interval` re-sends as usual;
//! - resolution (a flush with no firing alert left) ends the escalation;
//! - an acknowledgement stops it. A group is acknowledged when a group ack
//!   covers its firing alerts, or every firing alert has an alert ack. An
//!   alert joining an acknowledged group clears the group's acks and
//!   restarts the escalation from level 1 at the next flush. While acked,
//!   `repeat_interval` re-sends are suppressed for all receivers of the
//!   group; changes are still sent;
//! - an ack may expire; the escalation then resumes where it stood (a
//!   level whose timeout passed meanwhile escalates at once).
//!
//! Ack links carry a token: HMAC-SHA256 of the group key under a
//! per-installation secret kept in the state directory, so a link
//! acknowledges its group and nothing else.

use std::io::Write;
use std::path::Path;

use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::config::EscalationPolicyConfig;

/// One level of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationLevel {
    /// Receivers notified at this level.
    pub receivers: Vec<String>,
    /// ms to wait for an ack before the next level.
    pub timeout: i64,
}

/// A compiled policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationPolicy {
    /// Name.
    pub name: String,
    /// Levels.
    pub levels: Vec<EscalationLevel>,
}

impl From<&EscalationPolicyConfig> for EscalationPolicy {
    fn from(c: &EscalationPolicyConfig) -> Self {
        EscalationPolicy {
            name: c.name.clone(),
            levels: c
                .levels
                .iter()
                .map(|l| EscalationLevel {
                    receivers: l.receivers.clone(),
                    timeout: l.timeout.0,
                })
                .collect(),
        }
    }
}

/// Where a group's escalation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationState {
    /// The policy.
    pub policy: String,
    /// The level last notified, 1-based.
    pub level: usize,
    /// When that level was notified (ms).
    pub since: i64,
    /// When level 1 was notified (ms).
    pub started: i64,
}

/// What an ack acknowledges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckTarget {
    /// An aggregation group, by key.
    Group(String),
    /// One alert, by fingerprint.
    Alert(u64),
}

/// An acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Its ID.
    pub id: String,
    /// What it acknowledges.
    pub target: AckTarget,
    /// Who.
    pub by: String,
    /// When (ms).
    pub at: i64,
    /// Why, or what is being done.
    pub comment: String,
    /// When it lapses (ms), if ever.
    pub expires_at: Option<i64>,
    /// For a group ack: the alerts firing when it was made.
    pub covered: Vec<u64>,
}

impl Ack {
    /// Whether the ack holds at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

/// What a caller gives to acknowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRequest {
    /// What to acknowledge.
    pub target: AckTarget,
    /// Who.
    pub by: String,
    /// A comment.
    pub comment: String,
    /// When the ack lapses (ms), if ever.
    pub expires_at: Option<i64>,
}

/// An acknowledgement failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// No such group (it may have resolved).
    #[error("no alert group {0:?}")]
    NoGroup(String),
    /// No such firing alert.
    #[error("no firing alert with fingerprint {0:016x}")]
    NoAlert(u64),
    /// No such ack.
    #[error("no acknowledgement {0:?}")]
    NoAck(String),
    /// A link's token does not verify.
    #[error("invalid acknowledgement token")]
    BadToken,
    /// Missing who.
    #[error("an acknowledgement needs a name (who)")]
    NoAuthor,
    /// Expiry not after now.
    #[error("expiry must be in the future")]
    ExpiryInPast,
}

/// Signs and verifies ack links.
pub struct AckSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for AckSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AckSigner")
    }
}

/// The path prefix the server serves ack links under.
pub const ACK_PATH_PREFIX: &str = "/api/v1/notify/ack/";

const SECRET_FILE: &str = "notify.secret";

/// A short stable ID of a group key: 16 hex digits.
pub fn group_id(group_key: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(group_key.as_bytes()))
}

/// Fills `buf` with random bytes from the OS.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    use ring::rand::SecureRandom;
    if ring::rand::SystemRandom::new().fill(buf).is_err() {
        // No OS randomness: fall back to time and address entropy. Only
        // reached on broken systems; ids stay unique, secrets get weaker.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in buf.iter_mut().enumerate() {
            let h = xxhash_rust::xxh3::xxh3_64_with_seed(&seed.to_le_bytes(), i as u64);
            *b = h as u8;
        }
    }
}

/// A random UUID (version 4), as Alertmanager's silence IDs.
pub(crate) fn new_uuid() -> String {
    let mut b = [0u8; 16];
    random_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

impl AckSigner {
    /// A signer over a given secret.
    pub fn from_secret(secret: &[u8]) -> AckSigner {
        AckSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// Loads the installation's secret from `dir`, creating it (mode 0600)
    /// when missing or unreadable.
    pub fn load_or_create(dir: &Path) -> std::io::Result<AckSigner> {
        let path = dir.join(SECRET_FILE);
        if let Ok(s) = std::fs::read_to_string(&path) {
            if let Some(b) = hex_decode(s.trim()) {
                if b.len() >= 16 {
                    return Ok(AckSigner::from_secret(&b));
                }
            }
            tracing::warn!(path = %path.display(), "ack secret unreadable; making a new one (old ack links stop working)");
        }
        let mut secret = [0u8; 32];
        random_bytes(&mut secret);
        let hex: String = secret.iter().map(|x| format!("{x:02x}")).collect();
        let tmp = dir.join(format!("{SECRET_FILE}.tmp"));
        {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            let mut f = o.open(&tmp)?;
            f.write_all(hex.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(AckSigner::from_secret(&secret))
    }

    /// The token for a group key: 32 hex digits.
    pub fn token(&self, group_key: &str) -> String {
        let tag = hmac::sign(&self.key, group_key.as_bytes());
        tag.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether a token is the group key's, in constant time.
    pub fn verify(&self, group_key: &str, token: &str) -> bool {
        let want = self.token(group_key);
        if want.len() != token.len() {
            return false;
        }
        want.bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// The path of a group's ack link:
    /// `/api/v1/notify/ack/{group id}/{token}`.
    pub fn ack_path(&self, group_key: &str) -> String {
        format!(
            "{ACK_PATH_PREFIX}{}/{}",
            group_id(group_key),
            self.token(group_key)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_secret_persists() {
        let dir = tempfile::tempdir().unwrap();
        let s = AckSigner::load_or_create(dir.path()).unwrap();
        let t = s.token("{}:{alertname=\"x\"}");
        assert_eq!(t.len(), 32);
        assert!(s.verify("{}:{alertname=\"x\"}", &t));
        assert!(!s.verify("{}:{alertname=\"y\"}", &t));
        assert!(!s.verify("{}:{alertname=\"x\"}", "00"));
        let again = AckSigner::load_or_create(dir.path()).unwrap();
        assert!(again.verify("{}:{alertname=\"x\"}", &t));
        let p = s.ack_path("k");
        assert!(p.starts_with(ACK_PATH_PREFIX));
        assert!(p.ends_with(&s.token("k")));
        // A corrupt secret is replaced, not an error.
        std::fs::write(dir.path().join(SECRET_FILE), "zz").unwrap();
        let fresh = AckSigner::load_or_create(dir.path()).unwrap();
        assert!(!fresh.verify("{}:{alertname=\"x\"}", &t));
        assert_eq!(new_uuid().len(), 36);
    }
}
