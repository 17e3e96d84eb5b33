//! Permission checks as the kernel's generic_permission makes them (owner,
//! group, other bits; root bypasses read/write and search, and needs one
//! execute bit to execute), plus the sticky-directory rule.

use crate::error::{FsError, Result};

/// Who is asking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ctx {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    /// Supplementary groups (the FUSE adapter reads them from /proc).
    pub groups: Vec<u32>,
    /// The caller's umask for create, mkdir and mknod; applied by the core
    /// unless the parent has a default ACL (0 for tools and tests).
    pub umask: u16,
}

impl Ctx {
    /// The superuser, for tools and tests.
    pub fn root() -> Ctx {
        Ctx::default()
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

/// Check `mask` (MAY_*) against mode/uid/gid.
pub fn check(ctx: &Ctx, mode: u16, uid: u32, gid: u32, mask: u32) -> Result<()> {
    let mode = u32::from(mode);
    if ctx.uid == 0 {
        let is_dir = mode & 0o170000 == 0o040000;
        if mask & MAY_EXEC == 0 || is_dir || mode & 0o111 != 0 {
            return Ok(());
        }
        return Err(FsError::Access);
    }
    let bits = if ctx.uid == uid {
        (mode >> 6) & 7
    } else if ctx.in_group(gid) {
        (mode >> 3) & 7
    } else {
        mode & 7
    };
    if bits & mask == mask {
        Ok(())
    } else {
        Err(FsError::Access)
    }
}

/// May `ctx` remove or rename an entry owned by `owner` from a directory
/// with `dir_mode` owned by `dir_uid`? (sticky bit rule)
pub fn check_sticky(ctx: &Ctx, dir_mode: u16, dir_uid: u32, owner: u32) -> Result<()> {
    if dir_mode & 0o1000 == 0 || ctx.uid == 0 || ctx.uid == owner || ctx.uid == dir_uid {
        Ok(())
    } else {
        Err(FsError::NotPermitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, gid: u32) -> Ctx {
        Ctx {
            uid,
            gid,
            ..Ctx::default()
        }
    }

    #[test]
    fn owner_group_other_bits() {
        assert!(check(&user(5, 5), 0o100640, 5, 9, MAY_READ | MAY_WRITE).is_ok());
        assert!(check(&user(6, 9), 0o100640, 5, 9, MAY_READ).is_ok());
        assert!(check(&user(6, 9), 0o100640, 5, 9, MAY_WRITE).is_err());
        assert!(check(&user(7, 7), 0o100640, 5, 9, MAY_READ).is_err());
    }

    #[test]
    fn root_needs_an_exec_bit_to_execute_files() {
        assert!(check(&Ctx::root(), 0o100600, 5, 5, MAY_READ | MAY_WRITE).is_ok());
        assert!(check(&Ctx::root(), 0o100600, 5, 5, MAY_EXEC).is_err());
        assert!(check(&Ctx::root(), 0o040000, 5, 5, MAY_EXEC).is_ok());
    }

    #[test]
    fn sticky_directories_protect_other_users_files() {
        assert!(check_sticky(&user(6, 6), 0o041777, 0, 5).is_err());
        assert!(check_sticky(&user(5, 5), 0o041777, 0, 5).is_ok());
        assert!(check_sticky(&user(6, 6), 0o040777, 0, 5).is_ok());
    }
}
