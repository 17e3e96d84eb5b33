//! The filesystem core: every operation on a mounted image, returning
//! `Result<_, FsError>`. Core modules never import fuser; `src/fuse/` is a
//! thin adapter over this.

pub mod acl;
pub mod alloc;
pub mod attrs;
pub mod core;
pub mod data;
pub mod dir;
pub mod htree;
pub mod inode;
pub mod lifecycle;
pub mod listing;
pub mod map;
pub mod namespace;
pub mod perm;
pub mod rename;
pub mod stale;
pub mod txn;
pub mod xattr;
