//! readdir in hash order (format-spec/06-directories.md §6.8), for every
//! directory of an image that can index, linear ones included (as ext4's
//! `is_dx_dir` does for a one-block directory): the linear block that
//! `htree::convert` turns into a hashed directory was already listed in
//! hash order, so a listing in progress keeps its cookies across the
//! conversion. (Byte-offset cookies would be read as hash positions after
//! it, returning names twice or skipping them.)
//!
//! Cookies: 0 for ".", 1 for "..", and for a name 3 + 62 bits: the 31 bits
//! of its CRC-32 directory hash above 31 bits of a second, non-linear hash
//! of the name (FNV-1a), so every cookie is a positive signed 64-bit
//! offset. Names share a cookie only when both hashes collide (about
//! n² / 2⁶³ for n names), so a listing resumes exactly where
//! it stopped wherever the kernel cuts it: a reply buffer, or the caller's
//! getdents buffer filling part way through a reply. (With the 31-bit
//! cookies alone, a directory of 100,000 names holds a colliding pair or
//! two, and a cut between them skipped the second name.)

use super::dir::{self as d, ListEntry};
use super::htree;
use super::inode::InodeBuf;
use super::txn::Txn;
use crate::error::Result;
use crate::format::dir as fd;
use crate::layout::Geometry;

/// A name ready to list: (cookie, inode, file type, name).
type Named = (u64, u32, u8, Vec<u8>);

/// The cookie of the first name whose directory hash is `hash`.
fn major(hash: u32) -> u64 {
    3 + (u64::from(hash >> 1) << 31)
}

/// FNV-1a, 32 bits: unlike CRC-32 it is not linear, so two names of one
/// length whose CRC-32s collide almost never collide here too.
fn minor_hash(name: &[u8]) -> u32 {
    name.iter()
        .fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// The readdir cookie of a name with directory hash `hash`.
pub fn name_cookie(hash: u32, name: &[u8]) -> u64 {
    major(hash) + u64::from(minor_hash(name) >> 1)
}

fn named((hash, inode, file_type, name): htree::LeafEntry) -> Named {
    (name_cookie(hash, &name), inode, file_type, name)
}

/// Cookie order; names are unique in a directory, so the order is total.
fn sort(v: &mut [Named]) {
    v.sort_unstable_by(|a, b| (a.0, &a.3).cmp(&(b.0, &b.3)));
}

/// Up to `max` entries whose cookie is >= `from`, in cookie order.
pub fn list(txn: &Txn<'_>, g: &Geometry, dir: &InodeBuf, from: u64, max: usize) -> Result<Vec<ListEntry>> {
    let mut page = Page {
        out: Vec::new(),
        from,
        max,
    };
    if !htree::is_indexed(dir) {
        return list_linear(txn, g, dir, page);
    }
    let c = htree::ctx(txn, g, dir)?;
    if from <= 1 {
        let (root, _) = c.index(0)?;
        let parent = u32::from_le_bytes([root[12], root[13], root[14], root[15]]);
        page.dot(0, dir.ino.get(), 2, b".".to_vec());
        page.dot(1, parent, 2, b"..".to_vec());
    }
    let start_hash = u32::try_from((from.saturating_sub(3) >> 31) << 1).unwrap_or(u32::MAX);
    let leaves = c.leaves()?;
    // The last leaf starting below `start_hash`: a run of names with that
    // hash may begin there and continue in the next leaves (bit 0 set).
    let first = leaves.partition_point(|(h, _)| h & !1 < start_hash).max(1) - 1;
    // Names read but not yet offered: a run of one hash continued in the
    // next leaf must be sorted whole before any of it is listed. Bounded by
    // one leaf plus such a run.
    let mut pending: Vec<Named> = Vec::new();
    for (i, &(_, leaf)) in leaves.iter().enumerate().skip(first) {
        let p = c.phys(leaf)?;
        let b = txn.block(p)?;
        if let Some(seed) = g.csum_seed {
            fd::verify_leaf_tail(b, p, dir.ino.get(), seed)?;
        }
        pending.extend(htree::leaf_entries(g, b, p)?.into_iter().map(named));
        sort(&mut pending);
        // Later leaves hold only hashes >= their start: names below the
        // next leaf's start are all read.
        let complete_below = leaves.get(i + 1).map_or(u64::MAX, |&(h, _)| major(h & !1));
        let ready = pending.partition_point(|e| e.0 < complete_below);
        for e in pending.drain(..ready) {
            if !page.offer(e) {
                return Ok(page.out);
            }
        }
    }
    Ok(page.out)
}

/// A one-block (linear) directory on an image that can index: the same
/// cookies, from a scan of the block.
fn list_linear(txn: &Txn<'_>, g: &Geometry, dir: &InodeBuf, mut page: Page) -> Result<Vec<ListEntry>> {
    let (mut dots, mut names) = ([None, None], Vec::new());
    d::scan(txn, g, dir, |s, name| {
        match name {
            b"." => dots[0] = Some((s.inode, s.file_type)),
            b".." => dots[1] = Some((s.inode, s.file_type)),
            _ => names.push(named((
                fd::name_hash(name, g.hash_seed),
                s.inode,
                s.file_type,
                name.to_vec(),
            ))),
        }
        false
    })?;
    for (k, name) in [&b"."[..], b".."].into_iter().enumerate() {
        if let Some((ino, ft)) = dots[k] {
            page.dot(k as u64, ino, ft, name.to_vec());
        }
    }
    sort(&mut names);
    for e in names {
        if !page.offer(e) {
            break;
        }
    }
    Ok(page.out)
}

/// One readdir reply being filled in cookie order.
struct Page {
    out: Vec<ListEntry>,
    from: u64,
    max: usize,
}

impl Page {
    /// "." (`k` 0) or ".." (`k` 1), at position `k`; added even to a full
    /// page (they do count towards `max` for the names after them).
    fn dot(&mut self, k: u64, inode: u32, file_type: u8, name: Vec<u8>) {
        if self.from <= k {
            self.out.push(ListEntry {
                inode,
                file_type,
                name,
                next: k + 1,
            });
        }
    }

    /// Offer the next name in cookie order; false when the page is full.
    /// A page never ends inside a run of names sharing a cookie (both
    /// hashes colliding): it stops before the run, or holds the whole run
    /// when the run starts the page.
    fn offer(&mut self, (cookie, inode, file_type, name): Named) -> bool {
        if cookie < self.from {
            return true;
        }
        if self.out.len() >= self.max {
            let run = self.out.iter().rposition(|e| e.next != cookie + 1).map_or(0, |i| i + 1);
            if run == self.out.len() {
                return false;
            }
            if run > 0 {
                self.out.truncate(run);
                return false;
            }
        }
        self.out.push(ListEntry {
            inode,
            file_type,
            name,
            next: cookie + 1,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_order_by_hash_first_and_fit_in_a_signed_offset() {
        assert!(name_cookie(0, b"a") >= 3);
        assert!(name_cookie(2, b"zzzz") > name_cookie(0, b"a"));
        assert!(name_cookie(!1, &[0xff; 255]) < 1 << 63);
        assert_eq!((major(0x1234_5678) - 3) >> 31, 0x1234_5678 >> 1);
    }

    #[test]
    fn the_minor_hash_is_fnv_1a() {
        // Reference values of 32-bit FNV-1a.
        assert_eq!(minor_hash(b""), 0x811c_9dc5);
        assert_eq!(minor_hash(b"a"), 0xe40c_292c);
        assert_eq!(minor_hash(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn a_page_does_not_end_inside_a_run_of_one_cookie() {
        let mut p = Page {
            out: Vec::new(),
            from: 0,
            max: 2,
        };
        assert!(p.offer((10, 5, 1, b"x".to_vec())));
        assert!(p.offer((20, 6, 1, b"y".to_vec())));
        assert!(!p.offer((20, 7, 1, b"z".to_vec())));
        assert_eq!(p.out.len(), 1, "the run at 20 moves to the next page whole");
        assert_eq!(p.out[0].next, 11);
    }
}
