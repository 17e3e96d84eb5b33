//! VexFS: a vector-native filesystem over a memory-mapped image.
//!
//! Layers, bottom up: [`format`] (zero-copy views of every on-disk
//! structure, one module per chapter of `format-spec/`), [`image`] (opening,
//! locking and mapping an image: the crate's only `unsafe`), [`layout`]
//! (the validated geometry of one image), [`read`] (read-only walks used by
//! the tools), [`fs`] (the filesystem core, every change through one
//! transaction), [`journal`] (commit, checkpoint, replay), [`fuse`] (the
//! thin FUSE adapter), [`mkfs`], [`check`] (fsck) and [`catalog`], plus
//! [`fuzzing`] (the fuzz targets' entry points).

pub mod bitset;
pub mod catalog;
pub mod check;
pub mod error;
pub mod events;
pub mod format;
pub mod fs;
pub mod fuse;
pub mod fuzzing;
pub mod image;
pub mod journal;
pub mod layout;
pub mod mkfs;
pub mod read;
pub mod vector;

pub use error::{FsError, Result};
