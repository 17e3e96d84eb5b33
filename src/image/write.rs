//! Writing metadata blocks into a mapped image file with pwritev(2)
//! instead of stores into the map (see `Media::write_at`): the page cache
//! is the map's, so the map sees the bytes at once; a page that a flush
//! cleaned takes no write fault, and a full host disk is an error instead
//! of a SIGBUS.

use crate::error::{FsError, Result};
use std::fs::File;
use std::io::IoSlice;
use std::path::Path;

/// Most slices one pwritev(2) takes (Linux's IOV_MAX).
const MAX_IOVECS: usize = 1024;

/// A write past the image's end (a caller's bug: every block number is
/// checked against the image before it is written).
pub fn out_of_image(offset: u64) -> FsError {
    FsError::Invalid(format!("write at byte {offset} runs past the image"))
}

/// Write `parts` one after another from byte `offset` of `file`, whose
/// map is `map_len` bytes long. A regular file found shorter than that (cut
/// by another process) is EIO: a pwrite would grow it back silently.
pub fn pwrite_parts(file: &File, path: &Path, map_len: u64, offset: u64, parts: &[&[u8]]) -> Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let end = offset.checked_add(total as u64).ok_or_else(|| out_of_image(offset))?;
    if end > map_len {
        return Err(out_of_image(offset));
    }
    let err = |e: std::io::Error| FsError::io(format!("write at byte {offset} of {}", path.display()), e);
    let meta = file.metadata().map_err(err)?;
    if meta.is_file() && meta.len() < end {
        return Err(err(std::io::Error::from_raw_os_error(libc::EIO)));
    }
    let mut done = 0usize;
    while done < total {
        let iov = unwritten(parts, done);
        match rustix::io::pwritev(file, &iov, offset + done as u64) {
            Ok(0) => return Err(err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(err(e.into())),
        }
    }
    Ok(())
}

/// The slices of `parts` after its first `done` bytes (a short write
/// leaves a tail), at most [`MAX_IOVECS`] of them.
fn unwritten<'p>(parts: &[&'p [u8]], done: usize) -> Vec<IoSlice<'p>> {
    let mut skip = done;
    let mut iov = Vec::with_capacity(parts.len().min(MAX_IOVECS));
    for p in parts {
        if skip >= p.len() {
            skip -= p.len();
            continue;
        }
        iov.push(IoSlice::new(&p[skip..]));
        skip = 0;
        if iov.len() == MAX_IOVECS {
            break;
        }
    }
    iov
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn file(len: u64) -> (tempfile::TempDir, std::path::PathBuf, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(len).unwrap();
        (dir, path, f)
    }

    #[test]
    fn parts_land_one_after_another() {
        let (_d, path, f) = file(64);
        pwrite_parts(&f, &path, 64, 8, &[b"abc", b"", b"defg"]).unwrap();
        let mut got = [0u8; 9];
        f.read_exact_at(&mut got, 7).unwrap();
        assert_eq!(&got, b"\0abcdefg\0");
    }

    #[test]
    fn writes_past_the_map_or_a_shrunk_file_are_refused_and_grow_nothing() {
        let (_d, path, f) = file(64);
        let e = pwrite_parts(&f, &path, 64, 60, &[b"12345"]).unwrap_err();
        assert!(matches!(e, FsError::Invalid(_)), "{e}");
        f.set_len(32).unwrap();
        let e = pwrite_parts(&f, &path, 64, 40, &[b"1"]).unwrap_err();
        assert_eq!(e.errno(), libc::EIO, "{e}");
        assert_eq!(f.metadata().unwrap().len(), 32, "the file did not grow back");
    }

    #[test]
    fn the_tail_after_a_short_write_starts_mid_slice() {
        let parts: [&[u8]; 3] = [b"ab", b"cde", b"f"];
        let tail = unwritten(&parts, 3);
        let tail: Vec<&[u8]> = tail.iter().map(|s| &**s).collect();
        assert_eq!(tail, [&b"de"[..], b"f"]);
        assert!(unwritten(&parts, 6).is_empty());
        let many = vec![&b"x"[..]; MAX_IOVECS + 5];
        assert_eq!(unwritten(&many, 0).len(), MAX_IOVECS);
    }
}
