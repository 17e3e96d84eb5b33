//! The virtual extended attribute `user.vexfs.vector.<collection>`
//! (format-spec/08 §8.7): its value is the file's vector as little-endian
//! f32, served from the node record, never stored in an xattr block.

use crate::error::{FsError, Result};
use crate::fs::core::Fs;
use crate::fs::perm::Ctx;
use crate::fs::xattr::{XATTR_CREATE, XATTR_REPLACE};

/// Names under this prefix are vectors, not stored attributes.
pub const PREFIX: &[u8] = b"user.vexfs.vector.";

/// The collection a virtual attribute name refers to, if it is one.
pub fn collection_of(name: &[u8]) -> Option<Result<&str>> {
    let rest = name.strip_prefix(PREFIX)?;
    Some(
        std::str::from_utf8(rest)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| FsError::Invalid("collection names are non-empty UTF-8".into())),
    )
}

/// Little-endian f32 bytes to floats; EINVAL unless a whole number of them.
pub fn floats(value: &[u8]) -> Result<Vec<f32>> {
    if !value.len().is_multiple_of(4) {
        return Err(FsError::Invalid(format!(
            "a vector value is little-endian f32s; {} bytes is not a multiple of 4",
            value.len()
        )));
    }
    Ok(value
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

pub fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Fs {
    pub(crate) fn vector_xattr_get(&self, ctx: &Ctx, n: u64, coll: &str) -> Result<Vec<u8>> {
        match self.get_vector(ctx, n, coll) {
            // An unknown collection: the file has no vector in it.
            Err(FsError::NotFound) if self.ino(n).is_ok() => Err(FsError::NoData),
            r => r.map(|v| bytes(&v)),
        }
    }

    pub(crate) fn vector_xattr_set(&self, ctx: &Ctx, n: u64, coll: &str, value: &[u8], flags: i32) -> Result<()> {
        let v = floats(value)?;
        if flags & (XATTR_CREATE | XATTR_REPLACE) != 0 {
            let has = self.vector_names(n)?.iter().any(|c| c == coll);
            if has && flags & XATTR_CREATE != 0 {
                return Err(FsError::Exists);
            }
            if !has && flags & XATTR_REPLACE != 0 {
                return Err(FsError::NoData);
            }
        }
        self.set_vector(ctx, n, coll, &v)
    }

    /// The virtual names to add to listxattr's answer (NUL-terminated).
    pub(crate) fn vector_xattr_list(&self, n: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for c in self.vector_names(n)? {
            out.extend_from_slice(PREFIX);
            out.extend_from_slice(c.as_bytes());
            out.push(0);
        }
        Ok(out)
    }
}
