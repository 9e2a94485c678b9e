//! Silences, as Alertmanager's `silence` package.
//!
//! A silence mutes the alerts all its matchers match while it is active
//! (`starts_at <= now < ends_at`). Creating one with a start in the past
//! starts it now. Updating keeps the ID when Alertmanager allows it in
//! place (same matchers; an active silence keeps its start and may not end
//! in the past; a pending one may not start in the past); otherwise the
//! old silence is expired and a new one created. Expiring an active
//! silence ends it now; a pending one gets start = end = now. Expired
//! silences are removed once `ends_at + retention` has passed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigil_model::Labels;

use crate::matcher::{Matcher, Matchers};

/// A silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its ID (a UUID).
    pub id: String,
    /// Matchers; all must match.
    pub matchers: Vec<Matcher>,
    /// Start (ms).
    pub starts_at: i64,
    /// End (ms).
    pub ends_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// A silence's state at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Mutes now.
    Active,
    /// Starts later.
    Pending,
    /// Ended.
    Expired,
}

impl SilenceState {
    /// `active`, `pending`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// The state at `now`.
    pub fn state(&self, now: i64) -> SilenceState {
        if self.ends_at <= now {
            SilenceState::Expired
        } else if self.starts_at > now {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// Whether all matchers match the labels.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    /// Alertmanager's API filter (`?filter=`): the silence's matchers, read
    /// as a label set, against the filter matchers.
    pub fn matches_filter(&self, filter: &Matchers) -> bool {
        let sms: BTreeMap<&str, &str> = self
            .matchers
            .iter()
            .map(|m| (m.name(), m.value()))
            .collect();
        filter.0.iter().all(|m| {
            let v = sms.get(m.name());
            if m.value().is_empty() {
                let skip = if m.op().is_negative() {
                    v.is_some()
                } else {
                    v.is_none()
                };
                if skip {
                    return true;
                }
            }
            m.matches_value(v.copied().unwrap_or(""))
        })
    }
}

/// What a caller gives to create or update a silence.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRequest {
    /// An existing silence to update, or `None` to create.
    pub id: Option<String>,
    /// Matchers.
    pub matchers: Vec<Matcher>,
    /// Start (ms).
    pub starts_at: i64,
    /// End (ms).
    pub ends_at: i64,
    /// Who.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// A silence operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SilenceError {
    /// No such silence.
    #[error("silence {0} not found")]
    NotFound(String),
    /// The silence is invalid.
    #[error("invalid silence: {0}")]
    Invalid(&'static str),
    /// Expiring an expired silence.
    #[error("silence {0} already expired")]
    AlreadyExpired(String),
}

/// The silences.
#[derive(Debug, Clone, Default)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
}

fn validate(r: &SilenceRequest, now: i64) -> Result<(), SilenceError> {
    if r.matchers.is_empty() {
        return Err(SilenceError::Invalid("at least one matcher required"));
    }
    if r.matchers.iter().all(|m| m.matches_value("")) {
        return Err(SilenceError::Invalid(
            "at least one matcher must not match the empty string",
        ));
    }
    if r.ends_at <= r.starts_at {
        return Err(SilenceError::Invalid("start time must be before end time"));
    }
    if r.ends_at < now {
        return Err(SilenceError::Invalid("end time can't be in the past"));
    }
    Ok(())
}

fn can_update(a: &Silence, b: &SilenceRequest, now: i64) -> bool {
    if a.matchers != b.matchers {
        return false;
    }
    match a.state(now) {
        SilenceState::Active => b.starts_at == a.starts_at && b.ends_at >= now,
        SilenceState::Pending => b.starts_at >= now,
        SilenceState::Expired => false,
    }
}

impl Silences {
    /// Empty.
    pub fn new() -> Silences {
        Silences::default()
    }

    /// Creates or updates a silence. Returns the silence as stored and, when
    /// an update could not be made in place, the old silence as expired.
    pub fn set(
        &mut self,
        r: SilenceRequest,
        new_id: impl FnOnce() -> String,
        now: i64,
    ) -> Result<(Silence, Option<Silence>), SilenceError> {
        validate(&r, now)?;
        let mut replaced = None;
        if let Some(id) = &r.id {
            let prev = self
                .by_id
                .get(id)
                .ok_or_else(|| SilenceError::NotFound(id.clone()))?;
            if can_update(prev, &r, now) {
                let mut s = prev.clone();
                s.starts_at = r.starts_at;
                s.ends_at = r.ends_at;
                s.created_by = r.created_by;
                s.comment = r.comment;
                s.updated_at = now;
                self.by_id.insert(s.id.clone(), s.clone());
                return Ok((s, None));
            }
            if prev.state(now) != SilenceState::Expired {
                replaced = Some(self.expire(id, now)?);
            }
        }
        let s = Silence {
            id: new_id(),
            matchers: r.matchers,
            starts_at: r.starts_at.max(now),
            ends_at: r.ends_at,
            updated_at: now,
            created_by: r.created_by,
            comment: r.comment,
        };
        self.by_id.insert(s.id.clone(), s.clone());
        Ok((s, replaced))
    }

    /// Expires a silence now.
    pub fn expire(&mut self, id: &str, now: i64) -> Result<Silence, SilenceError> {
        let s = self
            .by_id
            .get_mut(id)
            .ok_or_else(|| SilenceError::NotFound(id.to_string()))?;
        match s.state(now) {
            SilenceState::Expired => return Err(SilenceError::AlreadyExpired(id.to_string())),
            SilenceState::Active => s.ends_at = now,
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        s.updated_at = now;
        Ok(s.clone())
    }

    /// Restores a silence as persisted.
    pub fn restore(&mut self, s: Silence) {
        self.by_id.insert(s.id.clone(), s);
    }

    /// One silence.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    /// All silences: active (ending first), pending (starting first),
    /// expired (most recent first).
    pub fn list(&self, now: i64) -> Vec<Silence> {
        let mut v: Vec<Silence> = self.by_id.values().cloned().collect();
        v.sort_by(|a, b| {
            let (sa, sb) = (a.state(now), b.state(now));
            sa.cmp(&sb).then_with(|| match sa {
                SilenceState::Active => a.ends_at.cmp(&b.ends_at),
                SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
                SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
            })
        });
        v
    }

    /// The IDs of the active silences that mute these labels.
    pub fn mutes(&self, labels: &Labels, now: i64) -> Vec<String> {
        self.by_id
            .values()
            .filter(|s| s.state(now) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Removes silences that ended more than `retention` ms ago; returns
    /// their IDs.
    pub fn gc(&mut self, now: i64, retention: i64) -> Vec<String> {
        let dead: Vec<String> = self
            .by_id
            .values()
            .filter(|s| s.ends_at.saturating_add(retention) < now)
            .map(|s| s.id.clone())
            .collect();
        for id in &dead {
            self.by_id.remove(id);
        }
        dead
    }

    /// Removes one silence (replaying a garbage collection).
    pub fn gc_one(&mut self, id: &str) -> bool {
        self.by_id.remove(id).is_some()
    }

    /// The number of silences held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: Option<&str>, m: &str, s: i64, e: i64) -> SilenceRequest {
        SilenceRequest {
            id: id.map(String::from),
            matchers: crate::matcher::parse_matchers(m).unwrap(),
            starts_at: s,
            ends_at: e,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    #[test]
    fn lifecycle() {
        let mut s = Silences::new();
        let mut n = 0;
        let mut id = || {
            n += 1;
            format!("id{n}")
        };
        let (a, _) = s.set(req(None, "job=api", 0, 100), &mut id, 10).unwrap();
        assert_eq!(a.starts_at, 10, "a start in the past starts now");
        let l = Labels::from_pairs([("job", "api"), ("x", "y")]);
        assert_eq!(s.mutes(&l, 50), vec!["id1".to_string()]);
        assert!(s.mutes(&l, 100).is_empty());
        // Extending an active silence keeps its ID.
        let (b, old) = s
            .set(req(Some("id1"), "job=api", 10, 200), &mut id, 50)
            .unwrap();
        assert_eq!((b.id.as_str(), b.ends_at, old), ("id1", 200, None));
        // Changing matchers expires the old one and creates a new one.
        let (c, old) = s
            .set(req(Some("id1"), "job=web", 10, 200), &mut id, 60)
            .unwrap();
        assert_eq!(c.id, "id2");
        assert_eq!(old.unwrap().ends_at, 60);
        assert_eq!(s.get("id1").unwrap().state(60), SilenceState::Expired);
        // A pending silence expires with start = end = now.
        let (p, _) = s.set(req(None, "job=db", 500, 600), &mut id, 60).unwrap();
        let e = s.expire(&p.id, 70).unwrap();
        assert_eq!((e.starts_at, e.ends_at), (70, 70));
        assert_eq!(
            s.expire(&p.id, 80),
            Err(SilenceError::AlreadyExpired(p.id.clone()))
        );
        assert!(matches!(
            s.expire("nope", 80),
            Err(SilenceError::NotFound(_))
        ));
    }

    #[test]
    fn validation() {
        let mut s = Silences::new();
        let id = || "x".to_string();
        assert!(s.set(req(None, "job=~.*", 0, 100), id, 0).is_err());
        assert!(s.set(req(None, "job=a", 100, 100), id, 0).is_err());
        assert!(s.set(req(None, "job=a", 0, 5), id, 10).is_err());
        assert!(s.set(req(Some("zz"), "job=a", 0, 50), id, 10).is_err());
        assert!(s.set(req(None, "{}", 0, 50), id, 10).is_err());
    }

    #[test]
    fn expired_silences_are_garbage_collected_after_retention() {
        let mut s = Silences::new();
        s.set(req(None, "a=b", 0, 100), || "g".into(), 0).unwrap();
        assert!(s.gc(150, 100).is_empty());
        assert_eq!(s.gc(201, 100), vec!["g".to_string()]);
        assert!(s.is_empty());
    }

    #[test]
    fn api_filter() {
        let mut s = Silences::new();
        let (a, _) = s
            .set(req(None, "job=api,env=prod", 0, 100), || "f".into(), 0)
            .unwrap();
        let f = |x: &str| Matchers(crate::matcher::parse_matchers(x).unwrap());
        assert!(a.matches_filter(&f("job=api")));
        assert!(!a.matches_filter(&f("job=web")));
        assert!(a.matches_filter(&f("env=~pr.*")));
        assert!(a.matches_filter(&f("team=\"\"")));
    }
}
