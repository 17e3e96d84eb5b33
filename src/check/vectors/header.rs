//! A collection's header against its slots (§9.2, §9.9): ch_count, the
//! entry point and ch_max_level; and the free-slot chain (§8.5.4).

use super::{Graph, UNREADABLE};
use crate::check::tree::BitSet;
use crate::check::Report;
use crate::format::vector::NODE_LIVE;

impl Graph<'_> {
    /// ch_count, the entry point and ch_max_level against the slots (§9.2, §9.9).
    pub(super) fn check_header(&self, report: &mut Report) {
        let h = &self.coll.header;
        let live = || self.slots.iter().filter(|x| x.flags == NODE_LIVE);
        let (count, n_live) = (h.ch_count.get(), live().count() as u64);
        if count != n_live {
            let msg = format!("ch_count is {count} but {n_live} slots are NODE_LIVE");
            report.add_kind(self.loc(), msg, self.graph());
        }
        let (entry, max) = (h.ch_entry_slot.get(), h.ch_max_level.get());
        if count == 0 {
            if entry != 0 || max != 0 {
                let msg = format!("ch_count is 0 but ch_entry_slot is {entry} and ch_max_level {max} (should be 0)");
                report.add_kind(self.loc(), msg, self.graph());
            }
            return;
        }
        // Collection::load rejects ch_entry_slot >= ch_slots when ch_count > 0.
        let e = self.get(entry as u32);
        if e.flags != NODE_LIVE && e.flags != UNREADABLE {
            let msg = format!("ch_entry_slot, but n_flags is {:#x}, not NODE_LIVE", e.flags);
            report.add_kind(self.at(entry as u32), msg, self.graph());
        } else if e.flags == NODE_LIVE && u32::from(e.level) != max {
            let msg = format!("ch_entry_slot with n_level {} but ch_max_level is {max}", e.level);
            report.add_kind(self.at(entry as u32), msg, self.graph());
        }
        if let Some(top) = live().map(|x| x.level).max().filter(|&t| u32::from(t) != max) {
            let msg = format!("ch_max_level is {max} but the highest live n_level is {top}");
            report.add_kind(self.loc(), msg, self.graph());
        }
    }

    /// The free chain (§8.5.4): members free, no cycle, and every free slot on it.
    pub(super) fn check_free_chain(&self, report: &mut Report) {
        let mut on_chain = BitSet::new(self.slots.len() as u64);
        if !self.walk_free_chain(&mut on_chain, report) {
            return; // a broken chain would make every later free slot look lost
        }
        for s in (0..self.slots.len() as u32).filter(|&s| self.get(s).flags == 0 && !on_chain.get(s.into())) {
            let msg = "n_flags 0 (free) but not on the free-slot chain (ch_free_head)";
            report.add_kind(self.at(s), msg, self.graph());
        }
    }

    /// Walk from ch_free_head; returns whether the chain ended cleanly.
    fn walk_free_chain(&self, on_chain: &mut BitSet, report: &mut Report) -> bool {
        let (mut next, mut from) = (self.coll.header.ch_free_head.get(), self.loc() + ", ch_free_head");
        // At most ch_slots steps: each step sets a new bit of `on_chain` or
        // stops (a slot seen twice is a cycle).
        while next != 0 {
            if next > self.slots.len() as u64 {
                report.add_kind(
                    from,
                    format!("is {next}, past ch_slots {}", self.slots.len()),
                    self.graph(),
                );
                return false;
            }
            let s = (next - 1) as u32;
            if on_chain.set(s.into()) {
                report.add_kind(
                    from,
                    format!("is {next}: slot {s} is already on the chain (a cycle)"),
                    self.graph(),
                );
                return false;
            }
            let flags = self.get(s).flags;
            if flags != 0 {
                if flags != UNREADABLE {
                    report.add_kind(
                        self.at(s),
                        format!("on the free-slot chain but n_flags is {flags:#x}"),
                        self.graph(),
                    );
                }
                return false;
            }
            let Ok(node) = self.coll.node(&self.env.txn, s) else {
                return false;
            };
            next = node.header().n_next_free.get().into();
            from = self.at(s) + ", n_next_free";
        }
        true
    }
}
