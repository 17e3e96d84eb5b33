//! A plain bit set: fsck's bookkeeping over inodes, blocks and slots, and
//! the reconnect pass over a collection's slots. Memory proportional to
//! what it covers: for whole-image or whole-collection passes, never for a
//! search.

/// Bits `0..n`; bits beyond read as clear and are never set.
pub struct BitSet(Vec<u64>);

impl BitSet {
    pub fn new(n: u64) -> Self {
        BitSet(vec![0; n.div_ceil(64) as usize])
    }
    pub fn get(&self, i: u64) -> bool {
        self.0.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    /// Set bit `i`; returns whether it was already set.
    pub fn set(&mut self, i: u64) -> bool {
        let Some(w) = self.0.get_mut((i / 64) as usize) else {
            return true;
        };
        let old = *w & (1 << (i % 64)) != 0;
        *w |= 1 << (i % 64);
        old
    }
}
