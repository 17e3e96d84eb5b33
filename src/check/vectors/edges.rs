//! A collection's neighbour lists (§9.3-9.7): each decodes, keeps the degree
//! bound and names sensible slots; and every live node is reachable from the
//! entry point.

use super::{Graph, UNREADABLE};
use crate::check::tree::BitSet;
use crate::check::Report;
use crate::format::vector::NODE_LIVE;
use crate::vector::build::max_degree;
use crate::vector::search::{Budget, Walk};
use std::collections::VecDeque;

/// Unreachable live slots listed one by one per collection. Why: one lost
/// link can strand most of a graph; a few examples and a count say enough
/// without pushing other problems past `MAX_PROBLEMS`.
const MAX_UNREACHABLE_LISTED: usize = 16;

impl Graph<'_> {
    /// Every list of every live or deleted node decodes and names sensible ids.
    pub(super) fn check_lists(&self, report: &mut Report) {
        let walk = Walk::new(self.coll, &self.env.txn, Budget::default());
        let mut ids = Vec::new();
        for (s, node) in self.routing_nodes() {
            for level in 0..=node.level() {
                match walk.neighbours(s, &node, level, &mut ids) {
                    Ok(()) => self.check_list(s, level, &ids, report),
                    Err(e) => report.add_kind(self.at(s), format!("level-{level} list: {e}"), self.graph()),
                }
            }
        }
    }

    /// The degree bound, and the edges §9.7 calls corruption (self, free,
    /// too low a level).
    fn check_list(&self, s: u32, level: u8, ids: &[u32], report: &mut Report) {
        let max = max_degree(self.coll, level);
        if ids.len() > max {
            let bound = if level == 0 { "2*M" } else { "M" };
            let msg = format!("level-{level} list holds {} ids, more than {bound} = {max}", ids.len());
            report.add_kind(self.at(s), msg, self.graph());
        }
        for &t in ids {
            let to = self.get(t); // the decoder rejects ids >= ch_slots
            let what = if t == s {
                "names the node itself".to_string()
            } else if to.flags == 0 {
                format!("names slot {t}, which is free (n_flags 0)")
            } else if to.flags != UNREADABLE && to.level < level {
                format!("names slot {t}, whose n_level {} is below {level}", to.level)
            } else {
                continue;
            };
            report.add_kind(self.at(s), format!("level-{level} list {what}"), self.graph());
        }
    }

    /// Every live node is reachable from the entry point along level-0
    /// lists (every node is on level 0), routing through deleted nodes.
    pub(super) fn check_reachable(&self, report: &mut Report) {
        let entry = self.coll.header.ch_entry_slot.get();
        if self.coll.count() == 0 || !self.slots.get(entry as usize).is_some_and(|x| x.routes()) {
            return; // nothing to reach, or the entry point was reported
        }
        let seen = self.reach_from(entry as u32);
        let stranded: Vec<u32> = self
            .routing()
            .filter(|&s| self.get(s).flags == NODE_LIVE && !seen.get(s.into()))
            .collect();
        for &s in stranded.iter().take(MAX_UNREACHABLE_LISTED) {
            let msg = format!("NODE_LIVE but not reachable from ch_entry_slot {entry} along level-0 lists");
            report.add_kind(self.at(s), msg, self.graph());
        }
        if let Some(more) = stranded.len().checked_sub(MAX_UNREACHABLE_LISTED).filter(|&m| m > 0) {
            let msg = format!("{more} more live slots are not reachable from ch_entry_slot");
            report.add_kind(self.loc(), msg, self.graph());
        }
    }

    /// Breadth-first over level-0 lists; the set of slots reached.
    fn reach_from(&self, entry: u32) -> BitSet {
        let walk = Walk::new(self.coll, &self.env.txn, Budget::default());
        let mut seen = BitSet::new(self.slots.len() as u64);
        seen.set(entry.into());
        let mut queue = VecDeque::from([entry]);
        let mut ids = Vec::new();
        // Each slot is queued at most once (its `seen` bit): at most
        // ch_slots expansions.
        while let Some(s) = queue.pop_front() {
            let Ok(node) = self.coll.node(&self.env.txn, s) else {
                continue;
            };
            // A list that fails to decode was reported by check_lists; the
            // ids decoded before the error still route.
            let _ = walk.neighbours(s, &node, 0, &mut ids);
            for &t in &ids {
                if self.get(t).routes() && !seen.set(t.into()) {
                    queue.push_back(t);
                }
            }
        }
        seen
    }
}
