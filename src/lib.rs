//! VexFS: a vector-native filesystem over a memory-mapped image.
//!
//! Layers, bottom up: [`format`] (zero-copy views of every on-disk
//! structure, one module per chapter of `format-spec/`), [`image`] (opening,
//! locking and mapping an image: the crate's only `unsafe`), [`layout`]
//! (the validated geometry of one image), [`read`] (read-only walks used by
//! the tools), [`mkfs`] and [`check`] (fsck).

pub mod error;
pub mod format;

pub use error::{FsError, Result};
pub mod catalog;
pub mod check;
pub mod fs;
pub mod fuse;
pub mod fuzzing;
pub mod image;
pub mod layout;
pub mod mkfs;
pub mod read;
pub mod journal;
