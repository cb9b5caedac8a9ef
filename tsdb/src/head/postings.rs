//! The head's inverted index: label name → label value → sorted series ids, as Prometheus's
//! `MemPostings`, answering label matchers without looking at every series.
//!
//! Values of a name sit in a sorted map, so `=` is one lookup and a regex that
//! [`Matcher::value_patterns`] reduces to literals or literal prefixes (`a|b`, `pay.*`) is a
//! few lookups and range scans; any other regex tests each value of that one label, never each
//! series.
//!
//! Prometheus semantics for absent labels: a matcher that matches the empty string (`a=""`,
//! `a!="x"`, `a=~"x|"`, `a!~"x"`) also selects series without the label. Such a matcher is
//! answered as "every series minus those whose value of the label does *not* match"; any other
//! matcher as "the union of the postings of the values that match".

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use sightline_core::matcher::{MatchOp, Matcher};

/// Label name → value → series ids ascending.
#[derive(Debug, Default)]
pub(crate) struct Postings {
    names: BTreeMap<Arc<str>, BTreeMap<Arc<str>, List>>,
}

/// One value's series ids, ascending. Most values of high-cardinality labels (pod, container
/// id, uid) belong to one series: those cost no allocation.
#[derive(Debug)]
enum List {
    One(u32),
    Many(Vec<u32>),
}

impl List {
    fn as_slice(&self) -> &[u32] {
        match self {
            List::One(id) => std::slice::from_ref(id),
            List::Many(ids) => ids,
        }
    }

    fn insert(&mut self, id: u32) {
        match self {
            List::One(one) if *one == id => {}
            List::One(one) => {
                let one = *one;
                *self = List::Many(if one < id {
                    vec![one, id]
                } else {
                    vec![id, one]
                });
            }
            // Ids are handed out in increasing order, so this is almost always a push.
            List::Many(ids) => match ids.last() {
                Some(&last) if last >= id => {
                    if let Err(at) = ids.binary_search(&id) {
                        ids.insert(at, id);
                    }
                }
                _ => {
                    grow_by_an_eighth(ids);
                    ids.push(id);
                }
            },
        }
    }

    /// Removes `id`; returns whether the list is now empty.
    fn remove(&mut self, id: u32) -> bool {
        match self {
            List::One(one) => *one == id,
            List::Many(ids) => {
                if let Ok(at) = ids.binary_search(&id) {
                    ids.remove(at);
                }
                match ids.as_slice() {
                    [] => true,
                    &[last] => {
                        *self = List::One(last);
                        false
                    }
                    _ => {
                        if ids.capacity() > 2 * ids.len() + 4 {
                            ids.shrink_to_fit();
                        }
                        false
                    }
                }
            }
        }
    }
}

/// Makes room for one more id in a full list by growing it an eighth (at least four ids), not
/// doubling it: the lists of common values (`job`, `__name__`, `instance`) hold most of the
/// index, and doubling left a third of it unused on average.
fn grow_by_an_eighth(ids: &mut Vec<u32>) {
    if ids.len() == ids.capacity() {
        ids.reserve_exact((ids.len() / 8).max(4));
    }
}

impl Postings {
    /// Adds series `id` under `name=value`.
    pub(crate) fn add(&mut self, name: &Arc<str>, value: &Arc<str>, id: u32) {
        let values = match self.names.get_mut(&**name) {
            Some(values) => values,
            None => self.names.entry(Arc::clone(name)).or_default(),
        };
        match values.get_mut(&**value) {
            Some(list) => list.insert(id),
            None => {
                values.insert(Arc::clone(value), List::One(id));
            }
        }
    }

    /// Removes series `id` from `name=value`, dropping emptied entries.
    pub(crate) fn remove(&mut self, name: &str, value: &str, id: u32) {
        let Some(values) = self.names.get_mut(name) else {
            return;
        };
        if values.get_mut(value).is_some_and(|list| list.remove(id)) {
            values.remove(value);
        }
        if values.is_empty() {
            self.names.remove(name);
        }
    }

    /// Label names, sorted.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(|name| &**name)
    }

    /// The values of `name` with their postings, sorted by value.
    pub(crate) fn values(&self, name: &str) -> impl Iterator<Item = (&str, &[u32])> {
        self.names
            .get(name)
            .into_iter()
            .flat_map(|values| values.iter().map(|(v, list)| (&**v, list.as_slice())))
    }

    /// Number of values of `name`.
    pub(crate) fn value_count(&self, name: &str) -> usize {
        self.names.get(name).map_or(0, BTreeMap::len)
    }

    /// Series that have label `m.name()` with a value `m` matches, ascending. For a matcher
    /// that does not match the empty string, exactly the series it selects.
    pub(crate) fn matching(&self, m: &Matcher) -> Vec<u32> {
        let Some(values) = self.names.get(m.name()) else {
            return Vec::new();
        };
        let mut lists: Vec<&[u32]> = Vec::new();
        let patterns = match m.op() {
            MatchOp::Equal | MatchOp::Regex => m.value_patterns(),
            MatchOp::NotEqual | MatchOp::NotRegex => None,
        };
        match patterns {
            Some(patterns) => {
                for pattern in patterns {
                    if pattern.any_suffix {
                        let from = Bound::Included(pattern.literal.as_str());
                        for (value, ids) in values.range::<str, _>((from, Bound::Unbounded)) {
                            if !value.starts_with(pattern.literal.as_str()) {
                                break;
                            }
                            // The pattern says "prefix then anything"; the regex is the truth.
                            if m.matches(value) {
                                lists.push(ids.as_slice());
                            }
                        }
                    } else if let Some(ids) = values.get(pattern.literal.as_str()) {
                        lists.push(ids.as_slice());
                    }
                }
            }
            None => {
                for (value, ids) in values {
                    if m.matches(value) {
                        lists.push(ids.as_slice());
                    }
                }
            }
        }
        union(&lists)
    }

    /// Series that have label `m.name()` with a value `m` does *not* match, ascending: what a
    /// matcher that matches the empty string excludes.
    pub(crate) fn not_matching(&self, m: &Matcher) -> Vec<u32> {
        let Some(values) = self.names.get(m.name()) else {
            return Vec::new();
        };
        if m.op() == MatchOp::NotEqual {
            return values
                .get(m.value())
                .map(|list| list.as_slice().to_vec())
                .unwrap_or_default();
        }
        let lists: Vec<&[u32]> = values
            .iter()
            .filter(|(value, _)| !m.matches(value))
            .map(|(_, ids)| ids.as_slice())
            .collect();
        union(&lists)
    }
}

/// The sorted union of sorted lists.
fn union(lists: &[&[u32]]) -> Vec<u32> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let mut out: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// Keeps in `a` the ids also in `b` (both ascending).
pub(crate) fn intersect(a: &mut Vec<u32>, b: &[u32]) {
    let mut j = 0;
    a.retain(|&id| {
        while j < b.len() && b[j] < id {
            j += 1;
        }
        j < b.len() && b[j] == id
    });
}

/// Removes from `a` the ids in `b` (both ascending).
pub(crate) fn subtract(a: &mut Vec<u32>, b: &[u32]) {
    let mut j = 0;
    a.retain(|&id| {
        while j < b.len() && b[j] < id {
            j += 1;
        }
        !(j < b.len() && b[j] == id)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arc(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn common_values_grow_by_an_eighth() {
        let mut p = Postings::default();
        for id in 0..100_000 {
            p.add(&arc("job"), &arc("node"), id);
        }
        let Some(List::Many(ids)) = p.names.get("job").and_then(|v| v.get("node")) else {
            panic!("a list of many ids");
        };
        assert_eq!(ids.len(), 100_000);
        assert!(
            ids.capacity() <= 100_000 + 100_000 / 8 + 4,
            "capacity {} for 100,000 ids",
            ids.capacity()
        );
    }

    #[test]
    fn set_operations() {
        let mut a = vec![1, 3, 5, 7];
        intersect(&mut a, &[3, 4, 7, 9]);
        assert_eq!(a, [3, 7]);
        let mut a = vec![1, 3, 5, 7];
        subtract(&mut a, &[0, 3, 7]);
        assert_eq!(a, [1, 5]);
        assert_eq!(union(&[&[1, 4], &[2, 4, 6]]), [1, 2, 4, 6]);
    }

    #[test]
    fn prefix_and_literal_lookups() {
        let mut p = Postings::default();
        for (id, v) in ["payment", "payroll", "checkout", "pay"].iter().enumerate() {
            p.add(&arc("svc"), &arc(v), id as u32);
        }
        let m = Matcher::new(MatchOp::Regex, "svc", "pay.*|checkout").unwrap();
        assert!(m.value_patterns().is_some());
        assert_eq!(p.matching(&m), [0, 1, 2, 3]);
        let m = Matcher::new(MatchOp::Regex, "svc", "payr.+").unwrap();
        assert_eq!(p.matching(&m), [1]);
        let m = Matcher::new(MatchOp::NotRegex, "svc", "pay.*").unwrap();
        assert_eq!(p.not_matching(&m), [0, 1, 3]);
        p.remove("svc", "pay", 3);
        assert_eq!(p.value_count("svc"), 3);
    }
}
