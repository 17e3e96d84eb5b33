//! The kernel module's vector-metadata ioctls (format-spec/12 §12.4):
//! SET records the 40-byte `vexfs_vector_file_info` for the file and, when
//! it describes one dense, uncompressed vector stored in the file's own
//! contents at `data_offset`, attaches that vector (the same path as the
//! virtual xattr); GET returns what SET recorded, or a structure
//! synthesised from the file's attachments.

use crate::error::{FsError, Result};
use crate::format::ioctl::VectorFileInfo;
use crate::format::vector::{ElemType, MAX_DIM};
use crate::fs::core::Fs;
use crate::fs::perm::{self, Ctx, MAY_WRITE};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Check the ranges of §12.4.
fn validate(i: &VectorFileInfo) -> Result<()> {
    let a = i.alignment_bytes.get();
    let ok = (1..=MAX_DIM).contains(&i.dimensions.get())
        && (1..=4).contains(&i.element_type.get())
        && i.storage_format.get() <= 2
        && i.compression_type.get() <= 2
        && (a == 0 || (a.is_power_of_two() && a <= 4096));
    if ok {
        Ok(())
    } else {
        Err(FsError::Invalid("vexfs_vector_file_info field out of range".into()))
    }
}

/// Whether SET describes a vector VexFS can attach: one dense,
/// uncompressed vector of a collection element type.
fn attachable(i: &VectorFileInfo) -> bool {
    i.vector_count.get() == 1
        && i.storage_format.get() == 0
        && i.compression_type.get() == 0
        && (1..=3).contains(&i.element_type.get())
}

impl Fs {
    /// VEXFS_IOC_SET_VECTOR_META.
    pub fn vector_meta_set(&self, ctx: &Ctx, n: u64, raw: &[u8]) -> Result<()> {
        let info = VectorFileInfo::read_from_bytes(raw)
            .map_err(|_| FsError::Invalid(format!("the structure is 40 bytes, not {}", raw.len())))?;
        validate(&info)?;
        let a = self.getattr(n)?;
        perm::check(ctx, a.perm, a.uid, a.gid, MAY_WRITE)?;
        if attachable(&info) {
            self.attach_from_contents(ctx, n, &info)?;
        }
        let mut kept = [0u8; 40];
        kept.copy_from_slice(info.as_bytes());
        self.ioctl_meta.lock().insert(a.ino, kept);
        Ok(())
    }

    /// Read the vector the structure points at and attach it to the
    /// collection of that dimension (the file's own, else the only one).
    fn attach_from_contents(&self, ctx: &Ctx, n: u64, info: &VectorFileInfo) -> Result<()> {
        let dim = info.dimensions.get();
        let elem = ElemType::from_code(info.element_type.get() as u8).ok_or(FsError::NotSupported)?;
        let current = self.vector_names(n)?;
        let all = self.collections()?;
        let fits: Vec<_> = all.iter().filter(|r| r.dim == dim).collect();
        let chosen = fits
            .iter()
            .find(|r| current.contains(&r.name))
            .or(if fits.len() == 1 { fits.first() } else { None })
            .ok_or_else(|| match fits.len() {
                0 => FsError::NotFound,
                _ => FsError::Invalid(format!(
                    "{} collections have dimension {dim}; attach through the xattr",
                    fits.len()
                )),
            })?;
        let len = dim as usize * elem.size();
        let bytes = self.read_data(n, info.data_offset.get(), len)?;
        if bytes.len() != len {
            return Err(FsError::Invalid(format!(
                "the file holds {} of the {len} vector bytes",
                bytes.len()
            )));
        }
        let space = super::store::space_of(chosen)?;
        let as_type = super::distance::Space { elem, ..space };
        self.set_vector(ctx, n, &chosen.name, &as_type.decode(&bytes))
    }

    /// VEXFS_IOC_GET_VECTOR_META: 40 bytes.
    pub fn vector_meta_get(&self, n: u64) -> Result<[u8; 40]> {
        let a = self.getattr(n)?;
        if let Some(kept) = self.ioctl_meta.lock().get(&a.ino) {
            return Ok(*kept);
        }
        let mut info = VectorFileInfo::new_zeroed();
        let names = self.vector_names(n)?;
        if let Some(first) = names.first() {
            let rec = self
                .collections()?
                .into_iter()
                .find(|r| &r.name == first)
                .ok_or(FsError::NotFound)?;
            info.dimensions.set(rec.dim);
            info.element_type.set(rec.elem_type.into());
            info.vector_count.set(names.len() as u32);
            info.alignment_bytes.set(32);
        }
        let mut out = [0u8; 40];
        out.copy_from_slice(info.as_bytes());
        Ok(out)
    }
}
