//! The routing tree: which route nodes (and so receivers) an alert goes to, how it is grouped
//! there, and with which timings.
//!
//! Follows <https://prometheus.io/docs/alerting/latest/configuration/#route> and
//! Alertmanager's `dispatch/route.go`: an alert enters at the root; a node that matches tries
//! its children in order, depth first; a child that matches ends the search unless it has
//! `continue: true`; when no child matches, the node itself is the result. The root matches
//! every alert.
//!
//! Edge cases decided here, as Alertmanager decides them:
//! - `receiver`, `group_by`, `group_wait`, `group_interval`, `repeat_interval` and route
//!   `labels` are inherited by children and may be overridden (route labels key by key);
//!   `mute_time_intervals` and `active_time_intervals` are not inherited.
//! - Defaults at the root: `group_wait` 30s, `group_interval` 5m, `repeat_interval` 4h, no
//!   `group_by` (one group per node). An empty `group_by` (`[]`, or no value) is no setting:
//!   the node keeps its parent's grouping, as Alertmanager does.
//! - `group_by: ['...']` groups by every label; it must be the only entry. A label named in
//!   `group_by` that an alert lacks is left out of the group labels.
//! - `match`, `match_re` and `matchers` are combined into one list sorted by label name, which
//!   is also how a node's key (`{}/{severity="critical"}`) is written.
//! - `group_interval` and `repeat_interval` must not be zero; `group_wait` may.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use sightline_core::duration::Duration;
use sightline_core::labels::Labels;
use sightline_core::matcher::Matcher;
use sightline_core::yaml;

use super::matchers::{self, all_match, display_matchers};

/// Alertmanager's default `group_wait`.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// Alertmanager's default `group_interval`.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Alertmanager's default `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// The labels alerts are grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// `...`: every label, so each distinct alert is its own group.
    All,
    /// These label names (possibly none: one group for the node).
    Labels(Vec<String>),
}

/// A route as written in the file, before inheritance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteConfig {
    #[serde(default)]
    pub(crate) receiver: Option<String>,
    #[serde(default, deserialize_with = "group_by")]
    pub(crate) group_by: Option<GroupBy>,
    #[serde(default, rename = "continue")]
    pub(crate) continue_matching: bool,
    #[serde(default, deserialize_with = "matchers::matcher_list")]
    pub(crate) matchers: Vec<Matcher>,
    #[serde(default, rename = "match", deserialize_with = "matchers::equal_map")]
    pub(crate) match_equal: Vec<Matcher>,
    #[serde(default, deserialize_with = "matchers::regex_map")]
    pub(crate) match_re: Vec<Matcher>,
    #[serde(default, deserialize_with = "any_duration")]
    pub(crate) group_wait: Option<Duration>,
    #[serde(default, deserialize_with = "positive_duration")]
    pub(crate) group_interval: Option<Duration>,
    #[serde(default, deserialize_with = "positive_duration")]
    pub(crate) repeat_interval: Option<Duration>,
    #[serde(default)]
    pub(crate) mute_time_intervals: Vec<String>,
    #[serde(default)]
    pub(crate) active_time_intervals: Vec<String>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) routes: Vec<RouteConfig>,
}

fn any_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    yaml::from_string(d, "a duration such as 30s", |text| {
        text.parse::<Duration>()
            .map(Some)
            .map_err(|e| e.to_string())
    })
}

fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    yaml::from_string(d, "a duration such as 5m", |text| {
        let duration = text.parse::<Duration>().map_err(|e| e.to_string())?;
        if duration.is_zero() {
            return Err("must be greater than zero".to_owned());
        }
        Ok(Some(duration))
    })
}

fn group_by<'de, D: Deserializer<'de>>(d: D) -> Result<Option<GroupBy>, D::Error> {
    struct GroupByVisitor;
    impl<'de> Visitor<'de> for GroupByVisitor {
        type Value = Option<GroupBy>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of label names, or ['...']")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut names: Vec<String> = Vec::new();
            while let Some(name) = seq.next_element::<String>()? {
                if name.is_empty() {
                    return Err(de::Error::custom("group_by has an empty label name"));
                }
                if names.contains(&name) {
                    return Err(de::Error::custom(format!("group_by lists {name:?} twice")));
                }
                names.push(name);
            }
            if names.iter().any(|name| name == "...") {
                if names.len() > 1 {
                    return Err(de::Error::custom(
                        "group_by: '...' (group by every label) must be the only entry",
                    ));
                }
                return Ok(Some(GroupBy::All));
            }
            // As in Alertmanager, an empty list is no setting: the parent's grouping stays.
            if names.is_empty() {
                return Ok(None);
            }
            Ok(Some(GroupBy::Labels(names)))
        }
        /// `group_by:` with no value inherits too.
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(GroupByVisitor)
}

/// The settings in effect at a node, after inheritance.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOpts {
    /// The receiver notifications of this node go to.
    pub receiver: String,
    /// How alerts are grouped.
    pub group_by: GroupBy,
    /// How long a new group waits before its first notification.
    pub group_wait: Duration,
    /// How long a group waits before notifying about changes.
    pub group_interval: Duration,
    /// How long before an unchanged group is notified again.
    pub repeat_interval: Duration,
    /// Time intervals during which the node sends nothing.
    pub mute_time_intervals: Vec<String>,
    /// Time intervals outside which the node sends nothing (none: always active).
    pub active_time_intervals: Vec<String>,
    /// Route labels (templates rendered per group), inherited and overridden by key.
    pub labels: BTreeMap<String, String>,
}

/// One node of the routing tree, with its settings resolved.
#[derive(Debug, Clone)]
pub struct RouteNode {
    matchers: Vec<Matcher>,
    continue_matching: bool,
    opts: RouteOpts,
    routes: Vec<RouteNode>,
    key: String,
    id: String,
}

impl RouteNode {
    fn build(config: RouteConfig, parent: Option<(&RouteNode, usize)>) -> RouteNode {
        let mut opts = match parent {
            Some((parent, _)) => parent.opts.clone(),
            None => RouteOpts {
                receiver: String::new(),
                group_by: GroupBy::Labels(Vec::new()),
                group_wait: DEFAULT_GROUP_WAIT,
                group_interval: DEFAULT_GROUP_INTERVAL,
                repeat_interval: DEFAULT_REPEAT_INTERVAL,
                mute_time_intervals: Vec::new(),
                active_time_intervals: Vec::new(),
                labels: BTreeMap::new(),
            },
        };
        if let Some(receiver) = config.receiver.filter(|r| !r.is_empty()) {
            opts.receiver = receiver;
        }
        if let Some(group_by) = config.group_by {
            opts.group_by = group_by;
        }
        if let Some(wait) = config.group_wait {
            opts.group_wait = wait;
        }
        if let Some(interval) = config.group_interval {
            opts.group_interval = interval;
        }
        if let Some(interval) = config.repeat_interval {
            opts.repeat_interval = interval;
        }
        opts.mute_time_intervals = config.mute_time_intervals;
        opts.active_time_intervals = config.active_time_intervals;
        opts.labels.extend(config.labels);

        let mut matchers = config.match_equal;
        matchers.extend(config.match_re);
        matchers.extend(config.matchers);
        matchers.sort_by(|a, b| {
            (a.name(), a.value(), a.op().to_string()).cmp(&(
                b.name(),
                b.value(),
                b.op().to_string(),
            ))
        });
        let own = display_matchers(&matchers);
        let (key, id) = match parent {
            Some((parent, index)) => {
                let key = format!("{}/{own}", parent.key);
                let id = format!("{key}/{index}");
                (key, id)
            }
            None => (own.clone(), own),
        };
        let mut node = RouteNode {
            matchers,
            continue_matching: config.continue_matching,
            opts,
            routes: Vec::new(),
            key,
            id,
        };
        node.routes = config
            .routes
            .into_iter()
            .enumerate()
            .map(|(index, child)| RouteNode::build(child, Some((&node, index))))
            .collect();
        node
    }

    /// The node's matchers (`match`, `match_re` and `matchers` together), sorted by name.
    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// Whether matching goes on to the next sibling after this node matched.
    pub fn continue_matching(&self) -> bool {
        self.continue_matching
    }

    /// The settings in effect here.
    pub fn opts(&self) -> &RouteOpts {
        &self.opts
    }

    /// The receiver notifications of this node go to.
    pub fn receiver(&self) -> &str {
        &self.opts.receiver
    }

    /// The child routes.
    pub fn routes(&self) -> &[RouteNode] {
        &self.routes
    }

    /// Alertmanager's route key: the matchers of each node from the root down, joined by
    /// `/` (`{}/{severity="critical"}`). Siblings with equal matchers share it.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// An id that tells siblings with equal matchers apart: the key, then `/` and the node's
    /// index among its siblings, as Alertmanager's `Route.ID()` writes it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The nodes an alert with `labels` goes to, in order: empty when this node does not
    /// match.
    pub fn matches(&self, labels: &Labels) -> Vec<&RouteNode> {
        if !all_match(&self.matchers, labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let found = child.matches(labels);
            let matched = !found.is_empty();
            all.extend(found);
            if matched && !child.continue_matching {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// The labels an alert is grouped by at this node.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match &self.opts.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => {
                labels.without(|name| !names.iter().any(|wanted| wanted == name))
            }
        }
    }

    /// The group an alert with `labels` belongs to at this node.
    pub fn group_key(&self, labels: &Labels) -> GroupKey {
        GroupKey {
            route_key: self.key.clone(),
            labels: self.group_labels(labels),
        }
    }

    fn walk<'a>(&'a self, out: &mut Vec<&'a RouteNode>) {
        out.push(self);
        for child in &self.routes {
            child.walk(out);
        }
    }
}

/// Identifies an aggregation group: the node's key and the group labels. Displays as
/// Alertmanager's group key, `{}/{severity="critical"}:{alertname="X"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    /// The route node's key ([`RouteNode::key`]).
    pub route_key: String,
    /// The labels the group is keyed by.
    pub labels: Labels,
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.route_key, self.labels)
    }
}

/// The routing tree.
#[derive(Debug, Clone)]
pub struct Route {
    root: RouteNode,
}

impl Route {
    /// Builds the tree from its root, applying defaults and inheritance.
    pub(crate) fn new(root: RouteConfig) -> Route {
        Route {
            root: RouteNode::build(root, None),
        }
    }

    /// The root node.
    pub fn root(&self) -> &RouteNode {
        &self.root
    }

    /// The nodes an alert with `labels` goes to, in tree order; never empty, since the root
    /// matches every alert.
    pub fn matches(&self, labels: &Labels) -> Vec<&RouteNode> {
        self.root.matches(labels)
    }

    /// Every node, depth first from the root.
    pub fn nodes(&self) -> Vec<&RouteNode> {
        let mut out = Vec::new();
        self.root.walk(&mut out);
        out
    }
}
