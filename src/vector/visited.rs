//! The visited set of one graph walk: slot ids in a flat open-addressing
//! table (linear probing, at most half full). Why not a bitset over the
//! slots: its memory would grow with the collection; this table grows
//! with the nodes the walk actually scores, which the search budget
//! bounds. Why not a general hash set: the walk asks about every
//! neighbour of every expanded node, and a probe here is one multiply and
//! usually one load from a table that stays in the L1 cache.

/// Marks an empty entry. Slot ids are below `ch_slots` < 2^32, so no slot
/// is `u32::MAX`; a (corrupt) id equal to it is kept in `has_empty_key`.
const EMPTY: u32 = u32::MAX;

/// First table size: a query at ef 64 scores a few hundred to a few
/// thousand nodes, so the table rarely grows.
const INITIAL: usize = 4096;

#[derive(Debug, Default)]
pub struct Visited {
    table: Vec<u32>,
    len: usize,
    has_empty_key: bool,
}

impl Visited {
    /// Add `s`; true when it was not in the set.
    #[inline]
    pub fn insert(&mut self, s: u32) -> bool {
        if s == EMPTY {
            return !std::mem::replace(&mut self.has_empty_key, true);
        }
        if (self.len + 1) * 2 > self.table.len() {
            self.grow();
        }
        let fresh = place(&mut self.table, s);
        self.len += usize::from(fresh);
        fresh
    }

    /// Forget every id, keeping the table's room.
    pub fn clear(&mut self) {
        if self.len > 0 {
            self.table.fill(EMPTY);
            self.len = 0;
        }
        self.has_empty_key = false;
    }

    fn grow(&mut self) {
        let room = (self.table.len() * 2).max(INITIAL);
        let old = std::mem::replace(&mut self.table, vec![EMPTY; room]);
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            place(&mut self.table, s);
        }
    }
}

/// Put `s` in `table` (a power of two long, less than half full); false
/// when it was there already.
#[inline]
fn place(table: &mut [u32], s: u32) -> bool {
    let mask = table.len() - 1;
    // Fibonacci hashing: the high bits of the product spread nearby ids.
    let mut i = (u64::from(s).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
    // An empty entry exists (the table is at most half full), so the probe
    // ends within `table.len()` steps.
    for _ in 0..table.len() {
        match table[i] {
            v if v == s => return false,
            EMPTY => {
                table[i] = s;
                return true;
            }
            _ => i = (i + 1) & mask,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn matches_a_hash_set_through_growth_and_clears() {
        let mut v = Visited::default();
        let mut h = HashSet::new();
        let mut x = 12345u32;
        for round in 0..3 {
            for _ in 0..20_000 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let id = if x.is_multiple_of(97) { u32::MAX } else { x % 30_000 };
                assert_eq!(v.insert(id), h.insert(id), "round {round} id {id}");
            }
            v.clear();
            h.clear();
        }
        assert!(v.insert(7) && !v.insert(7));
    }
}
