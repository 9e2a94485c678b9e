//! The routing tree, as Alertmanager's `dispatch/route.go`.
//!
//! Matching is depth-first, left to right: a route matches when its
//! matchers do; its children are tried in order, and the first matching
//! child stops the search unless it has `continue: true`; a route none of
//! whose children match is itself the match. Children inherit `receiver`,
//! `group_by`, the three intervals and vigil's `escalation`; mute and
//! active time intervals are not inherited (Alertmanager sets them per
//! route).

use vigil_model::Labels;

use crate::config::{GroupBy, RouteConfig};
use crate::matcher::{MatcherParseError, Matchers};

/// The settings a route applies to the alerts it matches.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOpts {
    /// The receiver.
    pub receiver: String,
    /// Grouping labels, sorted; ignored when `group_by_all`.
    pub group_by: Vec<String>,
    /// `group_by: [...]`.
    pub group_by_all: bool,
    /// ms.
    pub group_wait: i64,
    /// ms.
    pub group_interval: i64,
    /// ms.
    pub repeat_interval: i64,
    /// Time interval names during which notifications are muted.
    pub mute_time_intervals: Vec<String>,
    /// Time interval names outside which notifications are muted.
    pub active_time_intervals: Vec<String>,
    /// The escalation policy.
    pub escalation: Option<String>,
}

impl Default for RouteOpts {
    /// Alertmanager's `DefaultRouteOpts`.
    fn default() -> Self {
        RouteOpts {
            receiver: String::new(),
            group_by: Vec::new(),
            group_by_all: false,
            group_wait: 30_000,
            group_interval: 300_000,
            repeat_interval: 4 * 3_600_000,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            escalation: None,
        }
    }
}

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The parent's index; `None` for the root.
    pub parent: Option<usize>,
    /// The matchers, sorted.
    pub matchers: Matchers,
    /// `continue`.
    pub continue_: bool,
    /// Children, in order.
    pub children: Vec<usize>,
    /// Effective settings.
    pub opts: RouteOpts,
    /// Alertmanager's route key: the parents' matchers joined by `/`.
    pub key: String,
    /// Alertmanager's route ID: the key plus the position among siblings.
    pub id: String,
}

/// A routing tree; the root is index 0.
#[derive(Debug, Clone)]
pub struct RouteTree {
    routes: Vec<Route>,
}

impl RouteTree {
    /// Builds the tree from a validated root route.
    pub fn new(root: &RouteConfig) -> Result<RouteTree, MatcherParseError> {
        let mut t = RouteTree { routes: Vec::new() };
        t.add(root, None, None)?;
        Ok(t)
    }

    fn add(
        &mut self,
        cr: &RouteConfig,
        parent: Option<usize>,
        position: Option<usize>,
    ) -> Result<usize, MatcherParseError> {
        let mut opts = match parent {
            Some(p) => self.routes[p].opts.clone(),
            None => RouteOpts::default(),
        };
        if let Some(r) = &cr.receiver {
            if !r.is_empty() {
                opts.receiver = r.clone();
            }
        }
        match &cr.group_by {
            Some(GroupBy::Labels(l)) => {
                let mut l = l.clone();
                l.sort();
                opts.group_by = l;
                opts.group_by_all = false;
            }
            Some(GroupBy::All) => {
                opts.group_by = Vec::new();
                opts.group_by_all = true;
            }
            None => {}
        }
        if let Some(d) = cr.group_wait {
            opts.group_wait = d.0;
        }
        if let Some(d) = cr.group_interval {
            opts.group_interval = d.0;
        }
        if let Some(d) = cr.repeat_interval {
            opts.repeat_interval = d.0;
        }
        if let Some(e) = &cr.escalation {
            opts.escalation = Some(e.clone());
        }
        opts.mute_time_intervals = cr.mute_time_intervals.clone();
        opts.active_time_intervals = cr.active_time_intervals.clone();
        let matchers = cr.all_matchers()?;
        let key = match parent {
            Some(p) => format!("{}/{}", self.routes[p].key, matchers),
            None => matchers.to_string(),
        };
        let id = match position {
            Some(i) => format!("{key}/{i}"),
            None => key.clone(),
        };
        let idx = self.routes.len();
        self.routes.push(Route {
            parent,
            matchers,
            continue_: cr.continue_,
            children: Vec::new(),
            opts,
            key,
            id,
        });
        for (i, c) in cr.routes.iter().enumerate() {
            let ci = self.add(c, Some(idx), Some(i))?;
            self.routes[idx].children.push(ci);
        }
        Ok(idx)
    }

    /// The route at an index.
    pub fn get(&self, idx: usize) -> Option<&Route> {
        self.routes.get(idx)
    }

    /// All routes, root first, depth-first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The routes an alert with these labels goes to.
    pub fn matches(&self, labels: &Labels) -> Vec<usize> {
        self.match_at(0, labels).unwrap_or_default()
    }

    fn match_at(&self, idx: usize, labels: &Labels) -> Option<Vec<usize>> {
        let r = self.routes.get(idx)?;
        if !r.matchers.matches(labels) {
            return None;
        }
        let mut all = Vec::new();
        for &c in &r.children {
            if let Some(m) = self.match_at(c, labels) {
                all.extend(m);
                if !self.routes[c].continue_ {
                    break;
                }
            }
        }
        if all.is_empty() {
            all.push(idx);
        }
        Some(all)
    }

    /// The group labels of an alert on a route.
    pub fn group_labels(&self, idx: usize, labels: &Labels) -> Labels {
        let Some(r) = self.routes.get(idx) else {
            return Labels::empty();
        };
        if r.opts.group_by_all {
            return labels.clone();
        }
        let names: Vec<&str> = r.opts.group_by.iter().map(String::as_str).collect();
        labels.keep_only(&names)
    }

    /// vigil's group key: `route ID:group labels`. Unlike Alertmanager's
    /// key it tells apart sibling routes with equal matchers (two
    /// `continue` routes on the same labels), so each has its own group.
    pub fn group_key(&self, idx: usize, group_labels: &Labels) -> String {
        let id = self.routes.get(idx).map(|r| r.id.as_str()).unwrap_or("");
        format!("{id}:{}", label_set_string(group_labels))
    }

    /// Alertmanager's group key, `route key:group labels`, as sent to
    /// receivers (the webhook's `groupKey`).
    pub fn am_group_key(&self, idx: usize, group_labels: &Labels) -> String {
        let key = self.routes.get(idx).map(|r| r.key.as_str()).unwrap_or("");
        format!("{key}:{}", label_set_string(group_labels))
    }
}

/// Prometheus's `LabelSet.String()`: `{a="b", c="d"}`.
pub fn label_set_string(l: &Labels) -> String {
    let mut s = String::from("{");
    for (i, lb) in l.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(lb.name);
        s.push('=');
        s.push_str(&crate::matcher::go_quote(lb.value));
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn tree(y: &str) -> RouteTree {
        let c: Config = serde_yaml_ng::from_str(y).unwrap();
        c.validate().unwrap();
        RouteTree::new(c.route.as_ref().unwrap()).unwrap()
    }

    fn receivers(t: &RouteTree, l: &[(&str, &str)]) -> Vec<String> {
        t.matches(&Labels::from_pairs(l.iter().copied()))
            .into_iter()
            .map(|i| t.get(i).unwrap().opts.receiver.clone())
            .collect()
    }

    // The tree of Alertmanager's dispatch/route_test.go, trimmed.
    const TREE: &str = r#"
receivers: [{name: notify-def}, {name: notify-A}, {name: notify-B}, {name: notify-BC}, {name: notify-productionA}, {name: notify-productionB}, {name: notify-testing}]
route:
  group_by: ['alertname']
  group_wait: 10s
  group_interval: 10s
  receiver: 'notify-def'
  routes:
  - matchers: ['owner="team-A"']
    receiver: 'notify-A'
    routes:
    - matchers: ['env="testing"']
      receiver: 'notify-testing'
      group_by: ['...']
    - matchers: ['env="production"']
      receiver: 'notify-productionA'
      group_wait: 1m
      continue: true
    - matchers: ['env=~"produ.*"', 'job=~".*"']
      receiver: 'notify-productionB'
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 1h
      group_by: ['job']
  - matchers: ['owner=~"team-(B|C)"']
    group_by: ['foo', 'bar']
    group_wait: 2m
    receiver: 'notify-BC'
  - matchers: [group_by="role"]
    group_by: ['role']
    routes:
    - matchers: ['env="testing"']
      receiver: 'notify-testing'
"#;

    #[test]
    fn matching_and_continue() {
        let t = tree(TREE);
        assert_eq!(receivers(&t, &[("owner", "team-A")]), ["notify-A"]);
        assert_eq!(receivers(&t, &[("owner", "team-B")]), ["notify-BC"]);
        assert_eq!(receivers(&t, &[("owner", "team-Z")]), ["notify-def"]);
        assert_eq!(
            receivers(&t, &[("owner", "team-A"), ("env", "production")]),
            ["notify-productionA", "notify-productionB"]
        );
        assert_eq!(
            receivers(&t, &[("owner", "team-A"), ("env", "testing")]),
            ["notify-testing"]
        );
        // A parent's match without matching children is the parent.
        assert_eq!(receivers(&t, &[("group_by", "role")]), ["notify-def"]);
        assert_eq!(
            receivers(&t, &[("group_by", "role"), ("env", "testing")]),
            ["notify-testing"]
        );
    }

    #[test]
    fn inheritance() {
        let t = tree(TREE);
        let m = t.matches(&Labels::from_pairs([
            ("owner", "team-A"),
            ("env", "production"),
        ]));
        let a = &t.get(m[0]).unwrap().opts;
        assert_eq!(a.group_wait, 60_000);
        assert_eq!(a.group_interval, 10_000);
        assert_eq!(a.repeat_interval, 4 * 3_600_000);
        assert_eq!(a.group_by, ["alertname"]);
        let b = &t.get(m[1]).unwrap().opts;
        assert_eq!(b.group_by, ["job"]);
        assert_eq!(b.repeat_interval, 3_600_000);
        let m = t.matches(&Labels::from_pairs([
            ("group_by", "role"),
            ("env", "testing"),
        ]));
        let r = t.get(m[0]).unwrap();
        assert_eq!(r.opts.group_by, ["role"]);
        assert_eq!(r.key, r#"{}/{group_by="role"}/{env="testing"}"#);
        assert_eq!(r.id, r#"{}/{group_by="role"}/{env="testing"}/0"#);
        let m = t.matches(&Labels::from_pairs([
            ("owner", "team-A"),
            ("env", "testing"),
            ("x", "y"),
        ]));
        assert!(t.get(m[0]).unwrap().opts.group_by_all);
        let gl = t.group_labels(
            m[0],
            &Labels::from_pairs([("owner", "team-A"), ("env", "testing")]),
        );
        assert_eq!(
            t.am_group_key(m[0], &gl),
            r#"{}/{owner="team-A"}/{env="testing"}:{env="testing", owner="team-A"}"#
        );
        assert_eq!(
            t.group_key(m[0], &gl),
            r#"{}/{owner="team-A"}/{env="testing"}/0:{env="testing", owner="team-A"}"#
        );
    }
}
