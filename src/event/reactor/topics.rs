//! A loop's topics: which of its connections subscribed to which names. Each topic
//! keeps its members in a dense list (a publish walks it); each connection keeps
//! its topics with its place in each list, so subscribing, unsubscribing and
//! dropping a closed connection's subscriptions cost O(its topics), never a scan
//! of a topic's members.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::api::id::ConnId;

/// The subscriptions of one loop.
#[derive(Default)]
pub(crate) struct Topics {
    members: HashMap<Arc<str>, Vec<ConnId>>,
    /// By slot: the connection's topics, each with its index in the topic's list.
    by_slot: Vec<Vec<(Arc<str>, usize)>>,
    count: usize,
}

impl Topics {
    /// Subscribes `id` to `topic`; false if it already was.
    pub(crate) fn subscribe(&mut self, id: ConnId, topic: &str) -> bool {
        let slot = id.slot();
        if self.by_slot.len() <= slot {
            self.by_slot.resize_with(slot + 1, Vec::new);
        }
        if self.by_slot[slot].iter().any(|(t, _)| &**t == topic) {
            return false;
        }
        let (name, list) = match self.members.get_key_value(topic) {
            Some((name, _)) => {
                let name = name.clone();
                let list = self.members.get_mut(topic).expect("just found");
                (name, list)
            }
            None => {
                let name: Arc<str> = Arc::from(topic);
                (name.clone(), self.members.entry(name).or_default())
            }
        };
        self.by_slot[slot].push((name, list.len()));
        list.push(id);
        self.count += 1;
        true
    }

    /// Unsubscribes the connection in `slot` from `topic`; false if it was not
    /// subscribed.
    pub(crate) fn unsubscribe(&mut self, slot: usize, topic: &str) -> bool {
        let Some(mine) = self.by_slot.get_mut(slot) else {
            return false;
        };
        let Some(i) = mine.iter().position(|(t, _)| &**t == topic) else {
            return false;
        };
        let (name, index) = mine.swap_remove(i);
        self.remove_member(&name, index);
        true
    }

    /// Drops every subscription of the connection in `slot` (it closed).
    pub(crate) fn drop_slot(&mut self, slot: usize) {
        let Some(mine) = self.by_slot.get_mut(slot) else {
            return;
        };
        for (name, index) in std::mem::take(mine) {
            self.remove_member(&name, index);
        }
    }

    /// Removes entry `index` of `name`'s list; the entry moved into its place gets
    /// its new index.
    fn remove_member(&mut self, name: &Arc<str>, index: usize) {
        self.count -= 1;
        let Some(list) = self.members.get_mut(name) else {
            return;
        };
        list.swap_remove(index);
        if let Some(moved) = list.get(index) {
            if let Some(e) = self.by_slot[moved.slot()]
                .iter_mut()
                .find(|(t, _)| Arc::ptr_eq(t, name))
            {
                e.1 = index;
            }
        } else if list.is_empty() {
            self.members.remove(name);
        }
    }

    /// The subscribers of `topic` on this loop.
    pub(crate) fn members(&self, topic: &str) -> &[ConnId] {
        self.members.get(topic).map_or(&[], Vec::as_slice)
    }

    /// The topics of the connection in `slot`.
    pub(crate) fn of_slot(&self, slot: usize) -> impl Iterator<Item = &str> {
        self.by_slot
            .get(slot)
            .into_iter()
            .flatten()
            .map(|(t, _)| &**t)
    }

    /// Subscriptions on this loop (connection × topic).
    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(slot: usize) -> ConnId {
        ConnId::new(0, slot, 1)
    }

    /// Every topic's list and every connection's indexes agree.
    fn check(t: &Topics) {
        let mut n = 0;
        for (slot, mine) in t.by_slot.iter().enumerate() {
            for (name, index) in mine {
                assert_eq!(t.members[name][*index].slot(), slot);
                n += 1;
            }
        }
        assert_eq!(n, t.count);
        assert_eq!(
            t.members.values().map(Vec::len).sum::<usize>(),
            t.count,
            "no member without its back reference"
        );
        assert!(t.members.values().all(|l| !l.is_empty()));
    }

    #[test]
    fn subscribe_unsubscribe_and_drop_keep_the_indexes_right() {
        let mut t = Topics::default();
        for s in 0..50 {
            assert!(t.subscribe(id(s), "all"));
            if s % 3 == 0 {
                assert!(t.subscribe(id(s), "three"));
            }
        }
        assert!(
            !t.subscribe(id(3), "three"),
            "subscribing twice is one subscription"
        );
        check(&t);
        assert_eq!(t.members("all").len(), 50);
        assert_eq!(t.members("three").len(), 17);
        assert!(t.unsubscribe(0, "all"));
        assert!(!t.unsubscribe(0, "all"));
        assert!(!t.unsubscribe(999, "all"));
        check(&t);
        for s in (0..50).step_by(2) {
            t.drop_slot(s);
            check(&t);
        }
        assert_eq!(t.members("all").len(), 25);
        let mut odd: Vec<usize> = t.members("all").iter().map(|i| i.slot()).collect();
        odd.sort_unstable();
        assert_eq!(odd, (1..50).step_by(2).collect::<Vec<_>>());
        assert_eq!(t.of_slot(3).collect::<Vec<_>>(), ["all", "three"]);
        for s in (1..50).step_by(2) {
            t.drop_slot(s);
        }
        check(&t);
        assert_eq!(t.count(), 0);
        assert!(t.members.is_empty(), "an empty topic is forgotten");
        assert!(t.members("all").is_empty());
    }
}
