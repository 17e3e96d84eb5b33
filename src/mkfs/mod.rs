//! Creating images (`mkfs.vexfs`): the v1 feature layout or the kernel
//! module's layout. The tool in `tools/` is a thin CLI over [`mkfs`].

mod plan;
mod signature;
mod write;

pub use plan::{plan_kernel, plan_v1, Plan, Sizing, DEFAULT_INODE_RATIO, MIN_V1_BYTES};
pub use signature::detect_signature;

use crate::error::{FsError, Result};
use crate::format::vector::{ElemType, Metric, MAX_COLLECTION_NAME, MAX_DIM};
use crate::image::{MappedFile, Mode};
use std::path::Path;

/// A collection to create: `NAME:DIM:METRIC[:TYPE]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSpec {
    pub name: String,
    pub dim: u32,
    pub metric: Metric,
    pub elem: ElemType,
    pub m: u16,
    pub ef_construction: u16,
}

impl std::str::FromStr for CollectionSpec {
    type Err = FsError;

    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let usage = || {
            FsError::Invalid(format!(
                "collection '{s}': expected NAME:DIM:METRIC[:TYPE], e.g. docs:384:cosine:f32"
            ))
        };
        if !(3..=4).contains(&parts.len()) {
            return Err(usage());
        }
        let name = parts[0];
        if name.is_empty()
            || name.len() > MAX_COLLECTION_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(FsError::Invalid(format!(
                "collection name '{name}': 1-{MAX_COLLECTION_NAME} of [A-Za-z0-9_.-]"
            )));
        }
        let dim: u32 = parts[1].parse().map_err(|_| usage())?;
        if !(1..=MAX_DIM).contains(&dim) {
            return Err(FsError::Invalid(format!(
                "collection '{name}': dimension {dim} outside 1..={MAX_DIM}"
            )));
        }
        let metric = Metric::parse(parts[2])
            .ok_or_else(|| FsError::Invalid(format!("unknown metric '{}' (l2, cosine, ip)", parts[2])))?;
        let elem = match parts.get(3) {
            Some(t) => ElemType::parse(t)
                .ok_or_else(|| FsError::Invalid(format!("unknown element type '{t}' (f32, f16, int8)")))?,
            None => ElemType::F32,
        };
        Ok(CollectionSpec {
            name: name.to_string(),
            dim,
            metric,
            elem,
            m: 16,
            ef_construction: 200,
        })
    }
}

/// Everything mkfs needs to know.
#[derive(Debug, Clone, Default)]
pub struct MkfsOptions {
    /// Image size in bytes; `None` uses the existing file or device size.
    pub size: Option<u64>,
    pub label: String,
    pub kernel_layout: bool,
    /// Node records in the v1 geometry (no `packed_nodes` feature), for
    /// images older VexFS versions can read; implies `varint_lists`.
    pub v1_nodes: bool,
    /// Varint-coded neighbour lists (no `rice_lists` feature), for images
    /// older VexFS versions can read.
    pub varint_lists: bool,
    pub collections: Vec<CollectionSpec>,
    /// Fixed UUID (tests, reproducible images); random otherwise.
    pub uuid: Option<[u8; 16]>,
    /// Fixed creation time in seconds (tests); now otherwise.
    pub time: Option<i64>,
    pub sizing: Sizing,
    /// Overwrite an existing filesystem signature.
    pub force: bool,
    /// Owner (uid, gid) of the root directory; the image file's owner when
    /// `None` (root for block devices), as mke2fs does for its caller.
    pub root_owner: Option<(u32, u32)>,
}

/// What mkfs made, for its summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkfsSummary {
    pub blocks: u64,
    pub inodes: u32,
    pub free_blocks: u64,
    pub free_inodes: u32,
    pub first_data_block: u64,
    pub journal_blocks: u64,
    pub event_blocks: u64,
    pub uuid: [u8; 16],
    pub features: Vec<String>,
}

impl MkfsOptions {
    /// The feature set a v1 image gets.
    pub fn v1_features(&self) -> crate::format::features::Features {
        let mut f = crate::format::features::V1_DEFAULT;
        if self.v1_nodes {
            f.incompat &= !crate::format::features::INCOMPAT_PACKED_NODES;
        }
        // v1 records are for readers older than packed_nodes, which know
        // no Rice lists either.
        if self.varint_lists || self.v1_nodes {
            f.incompat &= !crate::format::features::INCOMPAT_RICE_LISTS;
        }
        f
    }
}

/// Progress of the bitmap writes: (done, total).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Create a VexFS image at `path` (file created if missing).
pub fn mkfs(path: &Path, opts: &MkfsOptions, progress: Progress<'_>) -> Result<MkfsSummary> {
    if opts.kernel_layout && !opts.collections.is_empty() {
        return Err(FsError::Invalid(
            "--kernel-layout images have no vector collections".into(),
        ));
    }
    let exists = path.exists();
    if exists && !opts.force {
        if let Some(sig) = detect_signature(path)? {
            return Err(FsError::Invalid(format!(
                "{} already contains {sig}; use --force to overwrite it",
                path.display()
            )));
        }
    }
    if !exists && opts.size.is_none() {
        return Err(FsError::Invalid(format!(
            "{} does not exist: give --size to create it",
            path.display()
        )));
    }
    // Without --size, a forced image keeps the file's length.
    let old_len = discard_old_contents(path, exists && opts.force)?;
    let mut file = MappedFile::open(path, Mode::ReadWrite, opts.size.or(old_len))?;
    let mut opts = opts.clone();
    if opts.root_owner.is_none() {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).map_err(|e| FsError::io(format!("cannot stat {}", path.display()), e))?;
        opts.root_owner = Some(if file.is_device() { (0, 0) } else { (m.uid(), m.gid()) });
    }
    let opts = &opts;
    let bytes_len = opts.size.unwrap_or(file.len()).min(file.len());
    let uuid = opts.uuid.unwrap_or_else(random_uuid);
    let time = opts.time.unwrap_or_else(now);
    let summary = if opts.kernel_layout {
        write::kernel(file.bytes_mut()?, plan_kernel(bytes_len)?, opts, uuid, time)?
    } else {
        let plan = plan_v1(bytes_len, &opts.sizing)?;
        write::v1(file.bytes_mut()?, &plan, opts, uuid, time, progress)?
    };
    file.flush()?;
    Ok(summary)
}

/// With --force on a regular file, drop the old contents so the new image
/// is sparse and no stale metadata survives in unallocated space. Returns
/// the length the file had, for a caller that gave no size.
fn discard_old_contents(path: &Path, force_existing: bool) -> Result<Option<u64>> {
    use std::os::unix::fs::FileTypeExt;
    if !force_existing {
        return Ok(None);
    }
    let meta = std::fs::metadata(path).map_err(|e| FsError::io(format!("cannot stat {}", path.display()), e))?;
    if meta.file_type().is_block_device() {
        return Ok(None);
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| FsError::io(format!("cannot open {}", path.display()), e))?;
    f.try_lock().map_err(|_| FsError::Locked(path.display().to_string()))?;
    f.set_len(0)
        .map_err(|e| FsError::io(format!("cannot truncate {}", path.display()), e))?;
    Ok(Some(meta.len()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn random_uuid() -> [u8; 16] {
    use std::io::Read;
    let mut u = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut u))
        .is_ok();
    if !filled {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        u = (t ^ u128::from(std::process::id()) << 64).to_le_bytes();
    }
    u[6] = (u[6] & 0x0f) | 0x40; // RFC 4122 version 4
    u[8] = (u[8] & 0x3f) | 0x80; // RFC 4122 variant
    u
}

/// Format a UUID the usual way.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// Parse a UUID in the usual 8-4-4-4-12 form.
pub fn parse_uuid(s: &str) -> Result<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let bad = || FsError::Invalid(format!("'{s}' is not a UUID"));
    if hex.len() != 32 {
        return Err(bad());
    }
    let mut u = [0u8; 16];
    for (i, b) in u.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_specs_parse_and_reject_bad_input() {
        let c: CollectionSpec = "docs:384:cosine".parse().unwrap();
        assert_eq!((c.dim, c.metric, c.elem), (384, Metric::Cosine, ElemType::F32));
        let c: CollectionSpec = "img:16:l2:int8".parse().unwrap();
        assert_eq!(c.elem, ElemType::Int8);
        for bad in [
            "x",
            "a:0:l2",
            "a:65537:l2",
            "a:3:manhattan",
            "a:3:l2:f64",
            "bad/name:3:l2",
        ] {
            assert!(bad.parse::<CollectionSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn v1_nodes_and_varint_lists_pick_the_features() {
        use crate::format::features::{INCOMPAT_PACKED_NODES, INCOMPAT_RICE_LISTS};
        let f = |v1_nodes, varint_lists| {
            let o = MkfsOptions {
                v1_nodes,
                varint_lists,
                ..Default::default()
            };
            let f = o.v1_features();
            (
                f.has_incompat(INCOMPAT_PACKED_NODES),
                f.has_incompat(INCOMPAT_RICE_LISTS),
            )
        };
        assert_eq!(f(false, false), (true, true));
        assert_eq!(f(false, true), (true, false));
        // v1 records are for older readers, which know no Rice lists.
        assert_eq!(f(true, false), (false, false));
    }

    #[test]
    fn uuid_round_trips() {
        let u = parse_uuid("01234567-89ab-cdef-0123-456789abcdef").unwrap();
        assert_eq!(format_uuid(&u), "01234567-89ab-cdef-0123-456789abcdef");
        assert!(parse_uuid("nope").is_err());
    }
}
