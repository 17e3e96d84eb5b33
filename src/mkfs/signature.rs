//! Recognising existing filesystems so mkfs does not overwrite them by
//! accident (the same probes blkid uses for the common cases).

use crate::error::{FsError, Result};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// (offset, magic bytes, name).
const SIGNATURES: &[(u64, &[u8], &str)] = &[
    (0, &0x5645_5846u32.to_le_bytes(), "a VexFS filesystem"),
    (1080, &[0x53, 0xEF], "an ext2/ext3/ext4 filesystem"),
    (0, b"XFSB", "an XFS filesystem"),
    (65600, b"_BHRfS_M", "a btrfs filesystem"),
    (4086, b"SWAPSPACE2", "swap space"),
    (0, b"LUKS\xba\xbe", "a LUKS volume"),
    (32769, b"CD001", "an ISO 9660 filesystem"),
    (512, b"EFI PART", "a GPT partition table"),
    (82, b"FAT32   ", "a FAT32 filesystem"),
    (54, b"FAT1", "a FAT filesystem"),
];

/// Name the filesystem found in `path`, if any.
pub fn detect_signature(path: &Path) -> Result<Option<&'static str>> {
    let f = std::fs::File::open(path).map_err(|e| FsError::io(format!("cannot open {}", path.display()), e))?;
    for (off, magic, name) in SIGNATURES {
        let mut buf = vec![0u8; magic.len()];
        match f.read_at(&mut buf, *off) {
            Ok(n) if n == magic.len() && buf == *magic => return Ok(Some(name)),
            Ok(_) => {}
            Err(e) => return Err(FsError::io(format!("cannot read {}", path.display()), e)),
        }
    }
    Ok(None)
}
