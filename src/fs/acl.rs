//! POSIX ACLs (format-spec/07-xattrs.md §7.4): stored as the xattrs
//! `system.posix_acl_access` (index 2) and `system.posix_acl_default`
//! (index 3) in the kernel's `posix_acl_xattr` form, enforced by the kernel
//! (the FUSE adapter asks for FUSE_POSIX_ACL), kept in step with the mode
//! here, as ext4 does: setting an access ACL sets the mode bits it implies
//! (and a minimal one is stored as the mode alone), chmod rewrites the
//! ACL's owner, mask and other entries, and a new file in a directory with
//! a default ACL inherits it (posix_acl_create) instead of the umask.

use super::inode::InodeBuf;
use super::perm::{self, Ctx};
use super::txn::Txn;
use super::xattr::{load_all, store_all};
use crate::error::{FsError, Result};
use crate::layout::Geometry;

/// xattr name indexes (§7.3).
pub const ACCESS: u8 = 2;
pub const DEFAULT: u8 = 3;

const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
/// Most entries an ACL may hold. Why: the value fits one xattr block, and
/// a parse never loops longer than the kernel's own limit allows.
const MAX_ENTRIES: usize = 4096 / 8;

/// One entry: (tag, permission bits rwx, uid/gid for USER/GROUP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub tag: u16,
    pub perm: u16,
    pub id: u32,
}

/// A validated ACL, entries in the kernel's order (tag, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl(pub Vec<Entry>);

fn invalid(why: &str) -> FsError {
    FsError::Invalid(format!("POSIX ACL: {why}"))
}

impl Acl {
    /// Parse and validate an xattr value (posix_acl_from_xattr + valid).
    pub fn parse(value: &[u8]) -> Result<Acl> {
        let (head, body) = value
            .split_at_checked(4)
            .ok_or_else(|| invalid("shorter than its header"))?;
        if u32::from_le_bytes(head.try_into().expect("4 bytes")) != VERSION {
            return Err(invalid("version is not 2"));
        }
        if body.len() % 8 != 0 || body.len() / 8 > MAX_ENTRIES {
            return Err(invalid("length is not a whole number of entries"));
        }
        let entries: Vec<Entry> = body
            .chunks_exact(8)
            .map(|e| Entry {
                tag: u16::from_le_bytes([e[0], e[1]]),
                perm: u16::from_le_bytes([e[2], e[3]]),
                id: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            })
            .collect();
        let acl = Acl(entries);
        acl.validate()?;
        Ok(acl)
    }

    /// posix_acl_valid: one USER_OBJ, GROUP_OBJ and OTHER, a MASK when
    /// named entries exist, sorted, no duplicate ids, perms within rwx.
    fn validate(&self) -> Result<()> {
        let count = |t| self.0.iter().filter(|e| e.tag == t).count();
        if count(USER_OBJ) != 1 || count(GROUP_OBJ) != 1 || count(OTHER) != 1 || count(MASK) > 1 {
            return Err(invalid("needs exactly one owner, group and other entry"));
        }
        if count(MASK) == 0 && count(USER) + count(GROUP) > 0 {
            return Err(invalid("named entries need a mask entry"));
        }
        let known = [USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER];
        if self.0.iter().any(|e| e.perm & !7 != 0 || !known.contains(&e.tag)) {
            return Err(invalid("unknown tag or permission bits"));
        }
        let sorted = self.0.windows(2).all(|w| {
            let key = |e: &Entry| (e.tag, if matches!(e.tag, USER | GROUP) { e.id } else { 0 });
            key(&w[0]) < key(&w[1])
        });
        if !sorted {
            return Err(invalid("entries out of order or repeated"));
        }
        Ok(())
    }

    pub fn to_xattr(&self) -> Vec<u8> {
        let mut out = VERSION.to_le_bytes().to_vec();
        for e in &self.0 {
            let id = if matches!(e.tag, USER | GROUP) { e.id } else { u32::MAX };
            out.extend_from_slice(&e.tag.to_le_bytes());
            out.extend_from_slice(&e.perm.to_le_bytes());
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    fn perm_of(&self, tag: u16) -> u16 {
        self.0.iter().find(|e| e.tag == tag).map_or(0, |e| e.perm)
    }

    /// The permission bits the ACL implies (posix_acl_equiv_mode) and
    /// whether the mode alone says everything (no named entries, no mask).
    pub fn mode_bits(&self) -> (u16, bool) {
        let group = if self.0.iter().any(|e| e.tag == MASK) {
            self.perm_of(MASK)
        } else {
            self.perm_of(GROUP_OBJ)
        };
        let bits = self.perm_of(USER_OBJ) << 6 | group << 3 | self.perm_of(OTHER);
        (bits, self.0.len() == 3)
    }

    /// chmod: owner, mask (or group) and other take the new bits
    /// (posix_acl_chmod).
    pub fn chmod(&mut self, mode: u16) {
        let has_mask = self.0.iter().any(|e| e.tag == MASK);
        for e in &mut self.0 {
            match e.tag {
                USER_OBJ => e.perm = (mode >> 6) & 7,
                MASK => e.perm = (mode >> 3) & 7,
                GROUP_OBJ if !has_mask => e.perm = (mode >> 3) & 7,
                OTHER => e.perm = mode & 7,
                _ => {}
            }
        }
    }

    /// The access ACL of a new node created with `mode` under this
    /// default ACL, and its final mode (posix_acl_create_masq).
    pub fn create_masq(&self, mode: u16) -> (Acl, u16) {
        let mut acl = self.clone();
        let mut mode = mode;
        let has_mask = acl.0.iter().any(|e| e.tag == MASK);
        for e in &mut acl.0 {
            match e.tag {
                USER_OBJ => {
                    e.perm &= (mode >> 6) & 7;
                    mode &= (e.perm << 6) | !0o700;
                }
                OTHER => {
                    e.perm &= mode & 7;
                    mode &= e.perm | !0o007;
                }
                MASK => {
                    e.perm &= (mode >> 3) & 7;
                    mode &= (e.perm << 3) | !0o070;
                }
                GROUP_OBJ if !has_mask => {
                    e.perm &= (mode >> 3) & 7;
                    mode &= (e.perm << 3) | !0o070;
                }
                _ => {}
            }
        }
        (acl, mode)
    }
}

impl Acl {
    /// Does the ACL grant `want` (MAY_* bits) to a caller who is not the
    /// owner (posix_acl_permission): a named user entry, else the groups
    /// (any matching entry that grants it), each limited by the mask, else
    /// other.
    fn permits(&self, ctx: &Ctx, gid: u32, want: u16) -> bool {
        let mask = self.0.iter().find(|e| e.tag == MASK).map_or(7, |e| e.perm);
        if let Some(e) = self.0.iter().find(|e| e.tag == USER && e.id == ctx.uid) {
            return e.perm & mask & want == want;
        }
        let groups = self.0.iter().filter(|e| match e.tag {
            GROUP_OBJ => ctx.in_group(gid),
            GROUP => ctx.in_group(e.id),
            _ => false,
        });
        let mut found = false;
        for e in groups {
            found = true;
            if e.perm & want == want {
                return e.perm & mask & want == want;
            }
        }
        !found && self.perm_of(OTHER) & want == want
    }
}

/// Permission check of `b` for `mask` (MAY_*), with its access ACL when it
/// has one (the kernel checks the same with default_permissions; tools and
/// tests reach the core directly).
pub fn check(ctx: &Ctx, txn: &Txn<'_>, g: &Geometry, b: &InodeBuf, mask: u32) -> Result<()> {
    let base = b.base();
    let (mode, uid, gid) = (base.mode(), base.i_uid.get(), base.i_gid.get());
    if ctx.uid == 0 || ctx.uid == uid || b.view().xattr_block() == 0 {
        return perm::check(ctx, mode, uid, gid, mask);
    }
    match get(txn, g, b, ACCESS)? {
        Some(acl) if acl.permits(ctx, gid, (mask & 7) as u16) => Ok(()),
        Some(_) => Err(FsError::Access),
        None => perm::check(ctx, mode, uid, gid, mask),
    }
}

/// An ACL attribute of `b`, if set.
pub fn get(txn: &Txn<'_>, g: &Geometry, b: &InodeBuf, index: u8) -> Result<Option<Acl>> {
    match load_all(txn, g, b)?.into_iter().find(|(i, _, _)| *i == index) {
        Some((_, _, v)) => Acl::parse(&v).map(Some),
        None => Ok(None),
    }
}

/// Set (or with `None` remove) an ACL attribute of `b`; the caller
/// stores the inode.
pub fn put(txn: &mut Txn<'_>, g: &Geometry, b: &mut InodeBuf, index: u8, acl: Option<&Acl>) -> Result<()> {
    let mut attrs = load_all(txn, g, b)?;
    attrs.retain(|(i, _, _)| *i != index);
    if let Some(acl) = acl {
        attrs.push((index, Vec::new(), acl.to_xattr()));
    }
    store_all(txn, g, b, attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16, u32)]) -> Acl {
        Acl(entries.iter().map(|&(tag, perm, id)| Entry { tag, perm, id }).collect())
    }

    #[test]
    fn round_trip_and_validation() {
        let a = acl(&[
            (USER_OBJ, 7, 0),
            (USER, 5, 1000),
            (GROUP_OBJ, 5, 0),
            (MASK, 5, 0),
            (OTHER, 0, 0),
        ]);
        let parsed = Acl::parse(&a.to_xattr()).unwrap();
        assert_eq!(parsed.to_xattr(), a.to_xattr());
        assert_eq!(
            parsed.0[1],
            Entry {
                tag: USER,
                perm: 5,
                id: 1000
            }
        );
        let no_mask = acl(&[(USER_OBJ, 7, 0), (USER, 5, 1000), (GROUP_OBJ, 5, 0), (OTHER, 0, 0)]);
        assert!(Acl::parse(&no_mask.to_xattr()).is_err(), "named entry without a mask");
        let unsorted = acl(&[
            (USER_OBJ, 7, 0),
            (GROUP_OBJ, 5, 0),
            (USER, 5, 1000),
            (MASK, 5, 0),
            (OTHER, 0, 0),
        ]);
        assert!(Acl::parse(&unsorted.to_xattr()).is_err(), "order");
        let mut bytes = a.to_xattr();
        bytes[0] = 1;
        assert!(Acl::parse(&bytes).is_err(), "version");
        assert!(Acl::parse(&a.to_xattr()[..11]).is_err(), "length");
    }

    #[test]
    fn mode_bits_chmod_and_inheritance() {
        let mut a = acl(&[
            (USER_OBJ, 6, 0),
            (USER, 7, 1000),
            (GROUP_OBJ, 4, 0),
            (MASK, 6, 0),
            (OTHER, 4, 0),
        ]);
        assert_eq!(a.mode_bits(), (0o664, false));
        a.chmod(0o750);
        assert_eq!(a.mode_bits(), (0o750, false));
        assert_eq!(a.perm_of(GROUP_OBJ), 4, "the group entry stays under a mask");
        let minimal = acl(&[(USER_OBJ, 7, 0), (GROUP_OBJ, 5, 0), (OTHER, 5, 0)]);
        assert_eq!(minimal.mode_bits(), (0o755, true));
        // A default ACL that grants uid 1000 rwx, created with mode 0666.
        let default = acl(&[
            (USER_OBJ, 7, 0),
            (USER, 7, 1000),
            (GROUP_OBJ, 5, 0),
            (MASK, 7, 0),
            (OTHER, 5, 0),
        ]);
        let (inherited, mode) = default.create_masq(0o666);
        assert_eq!(mode, 0o664);
        assert_eq!(inherited.perm_of(MASK), 6);
        assert_eq!(
            inherited.perm_of(USER),
            7,
            "named entries are limited by the mask, not changed"
        );
    }

    #[test]
    fn permission_follows_the_entries_and_the_mask() {
        let user = |uid, gid| Ctx {
            uid,
            gid,
            ..Ctx::default()
        };
        // Owner 0, group 50: uid 1000 rw, group 60 r, mask rw, other none.
        let a = acl(&[
            (USER_OBJ, 7, 0),
            (USER, 6, 1000),
            (GROUP_OBJ, 0, 0),
            (GROUP, 4, 60),
            (MASK, 6, 0),
            (OTHER, 0, 0),
        ]);
        assert!(a.permits(&user(1000, 1), 50, 6));
        assert!(!a.permits(&user(1000, 1), 50, 1), "x not granted");
        assert!(a.permits(&user(7, 60), 50, 4));
        assert!(!a.permits(&user(7, 60), 50, 2));
        assert!(
            !a.permits(&user(7, 50), 50, 4),
            "a matching group entry without r denies, other is not used"
        );
        assert!(!a.permits(&user(7, 7), 50, 4));
        let masked = acl(&[
            (USER_OBJ, 7, 0),
            (USER, 7, 1000),
            (GROUP_OBJ, 0, 0),
            (MASK, 4, 0),
            (OTHER, 0, 0),
        ]);
        assert!(!masked.permits(&user(1000, 1), 50, 2), "the mask limits a named user");
    }
}
