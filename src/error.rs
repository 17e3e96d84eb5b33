//! The one error type of the VexFS core, and its single mapping to errno.
//!
//! Corruption carries the structure, the absolute byte offset in the image
//! (or in the buffer being parsed, for tools that parse detached bytes), the
//! field and the expected/actual values, so a user can find the bad bytes
//! with a hex editor.

use std::fmt;

/// What a field was expected to hold when it was found corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Exactly this value.
    Eq(u64),
    /// Strictly below this value.
    Below(u64),
    /// At most this value.
    AtMost(u64),
    /// At least this value.
    AtLeast(u64),
    /// Within `lo..=hi`.
    Within(u64, u64),
    /// Not zero.
    NonZero,
    /// A multiple of this value.
    MultipleOf(u64),
    /// One of the documented values (see the spec section).
    Known,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Eq(v) => write!(f, "{v:#x}"),
            Expected::Below(v) => write!(f, "< {v}"),
            Expected::AtMost(v) => write!(f, "<= {v}"),
            Expected::AtLeast(v) => write!(f, ">= {v}"),
            Expected::Within(lo, hi) => write!(f, "{lo}..={hi}"),
            Expected::NonZero => write!(f, "non-zero"),
            Expected::MultipleOf(v) => write!(f, "a multiple of {v}"),
            Expected::Known => write!(f, "a documented value"),
        }
    }
}

/// A corruption report: where, what, expected and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// Structure name as the spec spells it (e.g. "superblock").
    pub structure: &'static str,
    /// Byte offset of the bad field in the image (or parsed buffer).
    pub offset: u64,
    /// Field name as the spec spells it (e.g. "s_magic").
    pub field: &'static str,
    /// What the field should hold.
    pub expected: Expected,
    /// What it holds.
    pub actual: u64,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {} ({:#x}): {} expected {}, found {:#x}",
            self.structure, self.offset, self.offset, self.field, self.expected, self.actual
        )
    }
}

/// Every error the core returns.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// On-disk bytes violate the format.
    #[error("corrupt {0}")]
    Corrupt(Corruption),
    /// The image uses a feature this implementation does not know.
    #[error("unsupported image: {0}")]
    Unsupported(String),
    /// The image (file or device) is shorter than its superblock says.
    #[error("image truncated: the superblock needs {needed} bytes, the image has {actual}")]
    Truncated { needed: u64, actual: u64 },
    /// Another process holds the image.
    #[error("image {0} is in use by another process (mounted or being checked)")]
    Locked(String),
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A caller passed a bad argument.
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("no such file or directory")]
    NotFound,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("file exists")]
    Exists,
    #[error("no space left on device")]
    NoSpace,
    #[error("file name too long")]
    NameTooLong,
    #[error("directory not empty")]
    NotEmpty,
    #[error("read-only file system")]
    ReadOnly,
    #[error("file too large")]
    FileTooBig,
    #[error("operation not permitted")]
    NotPermitted,
    #[error("permission denied")]
    Access,
    #[error("no data available")]
    NoData,
    #[error("too many links")]
    TooManyLinks,
    #[error("operation not supported")]
    NotSupported,
}

/// The result type of the core.
pub type Result<T> = std::result::Result<T, FsError>;

impl FsError {
    /// Build a corruption error.
    pub fn corrupt(structure: &'static str, offset: u64, field: &'static str, expected: Expected, actual: u64) -> Self {
        FsError::Corrupt(Corruption {
            structure,
            offset,
            field,
            expected,
            actual,
        })
    }

    /// Wrap an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        FsError::Io {
            context: context.into(),
            source,
        }
    }

    /// A corruption found in a buffer that starts at byte `base` of the
    /// image, with its offset made absolute; other errors unchanged.
    pub fn at_image_offset(self, base: u64) -> Self {
        match self {
            FsError::Corrupt(c) => FsError::Corrupt(Corruption {
                offset: c.offset.saturating_add(base),
                ..c
            }),
            e => e,
        }
    }

    /// The corruption details, if this is a corruption error.
    pub fn corruption(&self) -> Option<&Corruption> {
        match self {
            FsError::Corrupt(c) => Some(c),
            _ => None,
        }
    }

    /// The one mapping from core errors to errno values.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::Corrupt(_) | FsError::Truncated { .. } => libc_errno::EIO,
            FsError::Unsupported(_) => libc_errno::EOPNOTSUPP,
            FsError::Locked(_) => libc_errno::EBUSY,
            FsError::Io { source, .. } => source.raw_os_error().unwrap_or(libc_errno::EIO),
            FsError::Invalid(_) => libc_errno::EINVAL,
            FsError::NotFound => libc_errno::ENOENT,
            FsError::NotDir => libc_errno::ENOTDIR,
            FsError::IsDir => libc_errno::EISDIR,
            FsError::Exists => libc_errno::EEXIST,
            FsError::NoSpace => libc_errno::ENOSPC,
            FsError::NameTooLong => libc_errno::ENAMETOOLONG,
            FsError::NotEmpty => libc_errno::ENOTEMPTY,
            FsError::ReadOnly => libc_errno::EROFS,
            FsError::FileTooBig => libc_errno::EFBIG,
            FsError::NotPermitted => libc_errno::EPERM,
            FsError::Access => libc_errno::EACCES,
            FsError::NoData => libc_errno::ENODATA,
            FsError::TooManyLinks => libc_errno::EMLINK,
            FsError::NotSupported => libc_errno::EOPNOTSUPP,
        }
    }
}

/// Linux errno values (x86-64), kept here so the core needs no libc.
pub mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const EACCES: i32 = 13;
    pub const EBUSY: i32 = 16;
    pub const EEXIST: i32 = 17;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const EFBIG: i32 = 27;
    pub const ENOSPC: i32 = 28;
    pub const EROFS: i32 = 30;
    pub const EMLINK: i32 = 31;
    pub const ENAMETOOLONG: i32 = 36;
    pub const ENOTEMPTY: i32 = 39;
    pub const ENODATA: i32 = 61;
    pub const EOPNOTSUPP: i32 = 95;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_message_names_offset_field_and_values() {
        let e = FsError::corrupt("superblock", 0, "s_magic", Expected::Eq(0x5645_5846), 0x1234);
        assert_eq!(
            e.to_string(),
            "corrupt superblock at byte 0 (0x0): s_magic expected 0x56455846, found 0x1234"
        );
        assert_eq!(e.errno(), libc_errno::EIO);
    }
}
