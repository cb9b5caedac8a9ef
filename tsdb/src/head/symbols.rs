//! The head's symbol table: every distinct label name and value string is stored once and
//! referred to by a `u32` id, so a series' labels cost 8 bytes per pair however long the
//! strings are (Prometheus's head keeps one interned string per distinct value the same way).
//!
//! Edge cases decided: ids of strings no series uses any more are recycled by
//! [`Symbols::retain`] (run when the head drops series), so churn does not grow the table
//! without bound; the empty string is never interned (label values are never empty).

use std::collections::HashMap;
use std::sync::Arc;

/// Interned strings and their ids.
#[derive(Debug, Default)]
pub(crate) struct Symbols {
    ids: HashMap<Arc<str>, u32>,
    strings: Vec<Option<Arc<str>>>,
    free: Vec<u32>,
}

impl Symbols {
    /// The id of `s`, interning it if new.
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let string: Arc<str> = Arc::from(s);
        let id = match self.free.pop() {
            Some(id) => {
                self.strings[id as usize] = Some(Arc::clone(&string));
                id
            }
            None => {
                self.strings.push(Some(Arc::clone(&string)));
                // More than 2³² distinct strings would not fit in memory anyway.
                (self.strings.len() - 1) as u32
            }
        };
        self.ids.insert(string, id);
        id
    }

    /// The id of `s`, if interned.
    #[cfg(test)]
    pub(crate) fn lookup(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The string of `id` (empty for an unknown id, which the head never hands out).
    pub(crate) fn get(&self, id: u32) -> &str {
        self.strings
            .get(id as usize)
            .and_then(Option::as_deref)
            .unwrap_or("")
    }

    /// The shared string of `id`, for index keys.
    pub(crate) fn get_arc(&self, id: u32) -> Option<&Arc<str>> {
        self.strings.get(id as usize).and_then(Option::as_ref)
    }

    /// Frees every string whose id `used` says is unused; `used` is indexed by id.
    pub(crate) fn retain(&mut self, used: &[bool]) {
        for (id, slot) in self.strings.iter_mut().enumerate() {
            if slot.is_some() && !used.get(id).copied().unwrap_or(false) {
                if let Some(string) = slot.take() {
                    self.ids.remove(&string);
                }
                self.free.push(id as u32);
            }
        }
    }

    /// Number of id slots (used and free): the length a `used` vector needs.
    pub(crate) fn capacity(&self) -> usize {
        self.strings.len()
    }

    /// Number of distinct strings held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_ids_are_recycled() {
        let mut symbols = Symbols::default();
        let a = symbols.intern("a");
        let b = symbols.intern("b");
        assert_eq!(symbols.intern("a"), a);
        assert_eq!(symbols.get(b), "b");
        let mut used = vec![false; symbols.capacity()];
        used[b as usize] = true;
        symbols.retain(&used);
        assert_eq!(symbols.lookup("a"), None);
        assert_eq!(symbols.len(), 1);
        assert_eq!(symbols.intern("c"), a, "freed id reused");
        assert_eq!(symbols.get(a), "c");
    }
}
