//! The writeback limits of a FUSE mount's backing device (its "bdi",
//! `/sys/class/bdi/MAJOR:MINOR/`). The kernel gives every FUSE mount a
//! strict limit of 1% of the dirtyable memory (`max_ratio` 1,
//! `strict_limit` 1): with the writeback cache on, a writer that reaches
//! it is throttled to the speed the daemon writes back at, long before
//! the global dirty limits (`vm.dirty_ratio`) would. As root the daemon
//! may raise its own mount's limit after mounting; that is what
//! `mount.vexfs -o max_dirty=PERCENT` does.

use std::io;
use std::path::Path;

/// The `MAJOR:MINOR` of the filesystem mounted on `dir` (the last mount
/// there), read from /proc/self/mountinfo. Not from stat(2) of `dir`:
/// the daemon would be asking itself, before it serves requests.
pub fn device_of(dir: &Path) -> io::Result<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    find_device(&info, dir).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "mount not in mountinfo"))
}

fn find_device(mountinfo: &str, dir: &Path) -> Option<String> {
    let want = dir.as_os_str().as_encoded_bytes();
    mountinfo
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let dev = f.nth(2)?;
            let point = f.nth(1)?;
            (unescape(point) == want).then(|| dev.to_string())
        })
        .next_back()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Let the mount on `dir` hold up to `percent` of the dirtyable memory in
/// dirty pages, and lift the strict limit so that it is throttled by the
/// global dirty limits like a disk filesystem.
pub fn set_max_dirty(dir: &Path, percent: u8) -> io::Result<()> {
    let bdi = Path::new("/sys/class/bdi").join(device_of(dir)?);
    std::fs::write(bdi.join("max_ratio"), percent.to_string())?;
    // Absent before Linux 6.2; the ratio alone still helps there.
    match std::fs::write(bdi.join("strict_limit"), "0") {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
98 22 0:39 / /mnt/a\\040b rw,nosuid,nodev - fuse.vexfs /img rw,user_id=0
99 22 0:40 / /mnt/c rw - fuse.vexfs /img2 rw
100 99 0:41 / /mnt/c rw - fuse.vexfs /img3 rw
";

    #[test]
    fn the_last_mount_on_a_directory_is_found() {
        assert_eq!(find_device(INFO, Path::new("/mnt/a b")).as_deref(), Some("0:39"));
        assert_eq!(find_device(INFO, Path::new("/mnt/c")).as_deref(), Some("0:41"));
        assert_eq!(find_device(INFO, Path::new("/mnt")), None);
    }

    #[test]
    fn escapes_are_decoded_and_bad_ones_kept() {
        assert_eq!(unescape("a\\011b\\134"), b"a\tb\\");
        assert_eq!(unescape("a\\9b\\"), b"a\\9b\\");
    }
}
