//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod data;
pub mod fuse;

use std::path::{Path, PathBuf};
use vexfs::check::{self, CheckOptions, Report};
use vexfs::image::{Image, Mode};
use vexfs::mkfs::{self, MkfsOptions};

/// Fixed identity so images (and inspect output) are reproducible.
pub const UUID: [u8; 16] = [0x5e, 0xed, 1, 2, 3, 4, 0x45, 6, 0x87, 8, 9, 10, 11, 12, 13, 14];
pub const TIME: i64 = 1_700_000_000;

pub fn options(size: u64, kernel: bool) -> MkfsOptions {
    MkfsOptions {
        size: Some(size),
        label: "test".into(),
        kernel_layout: kernel,
        collections: if kernel {
            vec![]
        } else {
            vec!["docs:8:cosine".parse().unwrap(), "img:3:l2:int8".parse().unwrap()]
        },
        uuid: Some(UUID),
        time: Some(TIME),
        root_owner: Some((0, 0)),
        ..Default::default()
    }
}

/// Make an image in `dir`; returns its path.
pub fn make_image(dir: &Path, name: &str, size: u64, kernel: bool) -> PathBuf {
    let path = dir.join(name);
    mkfs::mkfs(&path, &options(size, kernel), &mut |_, _| {}).expect("mkfs");
    path
}

/// Open read-only and run fsck; Err(message) when the image does not open.
pub fn fsck(path: &Path) -> Result<Report, String> {
    let img = Image::open(path, Mode::ReadOnly).map_err(|e| e.to_string())?;
    Ok(check::check(&img, CheckOptions::default()))
}

/// Close `fs` (commit, checkpoint, clean unmount) and require a clean fsck
/// of its image.
pub fn closed_and_clean(fs: vexfs::fs::core::Fs, path: &Path) {
    fs.close().unwrap();
    drop(fs);
    let r = fsck(path).unwrap();
    assert!(r.is_clean(), "fsck: {:#?}", r.problems);
}

/// Flip `mask` into the byte at `offset` of the file.
pub fn flip(path: &Path, offset: u64, mask: u8) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= mask;
    f.write_all_at(&b, offset).unwrap();
}

// ------------------------------------------- hostile images (tests/damage.rs)

/// Read `len` bytes at `offset` of the file, change them with `f`, write them back.
pub fn patch_bytes(path: &Path, offset: u64, len: usize, f: impl FnOnce(&mut [u8])) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset).unwrap();
    f(&mut buf);
    file.write_all_at(&buf, offset).unwrap();
}

/// The sorted names in a directory (through whatever mount holds it).
pub fn dir_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut v = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<Vec<_>>>()?;
    v.sort();
    Ok(v)
}

/// The errno of a call that must fail (panics, showing the value, on success).
pub fn os_errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.raw_os_error().unwrap_or_else(|| panic!("no errno in {e}")),
    }
}

/// How the core's corruption error starts: "corrupt STRUCTURE at byte
/// OFFSET (HEX): FIELD" (the expected and found values follow).
pub fn corrupt_at(structure: &'static str, offset: u64, field: &'static str) -> String {
    use vexfs::error::{Expected, FsError};
    let full = FsError::corrupt(structure, offset, field, Expected::Known, 0).to_string();
    full[..full.find(" expected").unwrap()].to_string()
}

/// Run `mount.vexfs IMAGE DIR -f`, which must exit without mounting;
/// returns its exit code and stderr. Unmounts and panics if it mounted.
pub fn mount_refused(image: &Path, dir: &Path) -> (Option<i32>, String) {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let log = dir.with_extension("err");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mount-vexfs"))
        .arg(image)
        .arg(dir)
        .arg("-f")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if fuse::is_mounted(dir) || t.elapsed() > Duration::from_secs(20) {
            let _ = Command::new("umount").arg(dir).status();
            let _ = child.kill();
            let _ = child.wait();
            panic!("mount.vexfs mounted {} (or hung)", image.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status.code(), std::fs::read_to_string(&log).unwrap())
}

/// Bytes of a test pattern, the same for the same seed and length.
pub fn hostile_pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 8) as u8)
        .collect()
}

/// Length of /ok.txt in a [`Hostile`] image.
pub const HOSTILE_OK_LEN: usize = 10_000;

/// A populated, unmounted 16 MiB v1 image to damage, with its geometry
/// and a mount point: /ok.txt (the intact sibling, [`HOSTILE_OK_LEN`]
/// bytes of pattern 1), /victim (9000 bytes of pattern 2), /sparse (8
/// one-block extents of pattern 3 at even blocks: a depth-1 extent tree),
/// /d/{x,y}, /e/z ("zz"), /a/b/c/f, `user.note` = "hello" on ok.txt and
/// victim, a `docs` vector (1..=8) on victim and an `img` vector (1..=3)
/// on ok.txt.
pub struct Hostile {
    pub tmp: tempfile::TempDir,
    pub path: PathBuf,
    pub mnt: PathBuf,
    pub g: vexfs::layout::Geometry,
}

impl Hostile {
    pub fn build() -> Hostile {
        use vexfs::fs::{core::Fs, namespace::NewNode, perm::Ctx};
        const B: u64 = 4096;
        let tmp = tempfile::tempdir().unwrap();
        let path = make_image(tmp.path(), "h.img", 16 << 20, false);
        let fs = Fs::open(&path, false).unwrap();
        let c = Ctx::root();
        let node = |parent: u64, name: &str, data: Option<&[u8]>| -> u64 {
            let (mode, kind) = if data.is_none() {
                (0o755, NewNode::Dir)
            } else {
                (0o644, NewNode::File)
            };
            let n = fs.create(&c, parent, name.as_bytes(), mode, kind).unwrap().ino.into();
            if let Some(bytes) = data {
                fs.write_data(n, 0, bytes).unwrap();
            }
            n
        };
        let ok = node(1, "ok.txt", Some(&hostile_pattern(1, HOSTILE_OK_LEN)));
        let victim = node(1, "victim", Some(&hostile_pattern(2, 9000)));
        let sparse = node(1, "sparse", Some(b""));
        for i in 0..8 {
            fs.write_data(sparse, 2 * i * B, &hostile_pattern(3, B as usize))
                .unwrap();
        }
        let (d, e) = (node(1, "d", None), node(1, "e", None));
        node(d, "x", Some(b"x"));
        node(d, "y", Some(b""));
        node(e, "z", Some(b"zz"));
        let abc = node(node(node(1, "a", None), "b", None), "c", None);
        node(abc, "f", Some(b""));
        for n in [ok, victim] {
            fs.setxattr(&c, n, b"user.note", b"hello", 0).unwrap();
        }
        let v: Vec<u8> = (1..=8).flat_map(|i| (i as f32).to_le_bytes()).collect();
        fs.setxattr(&c, victim, b"user.vexfs.vector.docs", &v, 0).unwrap();
        fs.setxattr(&c, ok, b"user.vexfs.vector.img", &v[..12], 0).unwrap();
        drop(fs);
        let g = Image::open(&path, Mode::ReadOnly).unwrap().geometry().clone();
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        Hostile { tmp, path, mnt, g }
    }

    pub fn open(&self) -> Image {
        Image::open(&self.path, Mode::ReadOnly).unwrap()
    }

    pub fn ino(&self, path: &str) -> vexfs::format::inode::InodeNo {
        self.open().resolve(path).unwrap()
    }

    /// Image offset of the inode of `path`.
    pub fn inode_at(&self, path: &str) -> u64 {
        self.g.inode_offset(self.ino(path))
    }

    /// Physical block of logical block `l` of inode `n`.
    pub fn block_of(&self, n: u32, l: u64) -> u64 {
        let img = self.open();
        let ino = img.inode_no(n).unwrap();
        let runs = img.mappings(ino, &img.inode(ino).unwrap()).unwrap();
        let m = runs.iter().find(|m| m.logical <= l && l < m.logical + m.len).unwrap();
        m.physical + (l - m.logical)
    }

    /// First block of a file's data or of a directory.
    pub fn data_block(&self, path: &str) -> u64 {
        self.block_of(self.ino(path).get(), 0)
    }

    pub fn xattr_block(&self, path: &str) -> u64 {
        self.open().inode(self.ino(path)).unwrap().xattr_block()
    }

    /// Interior and leaf blocks of a file's extent tree.
    pub fn tree_blocks(&self, path: &str) -> Vec<u64> {
        let (img, ino) = (self.open(), self.ino(path));
        img.extent_tree_blocks(ino, &img.inode(ino).unwrap()).unwrap()
    }

    pub fn seed(&self) -> u32 {
        self.g.csum_seed.unwrap()
    }

    pub fn edit(&self, off: u64, len: usize, f: impl FnOnce(&mut [u8])) {
        patch_bytes(&self.path, off, len, f);
    }

    pub fn read_u32(&self, off: u64) -> u32 {
        let mut c = [0u8; 4];
        self.edit(off, 4, |b| c.copy_from_slice(b));
        u32::from_le_bytes(c)
    }

    /// Change the inode of `path` and reseal its checksum: only `f`'s
    /// damage is left for a reader to find.
    pub fn edit_inode(&self, path: &str, f: impl FnOnce(&mut [u8])) {
        let (ino, seed) = (self.ino(path).get(), self.seed());
        self.edit(self.inode_at(path), 256, |b| {
            f(b);
            vexfs::format::inode::seal_inode(b, ino, seed);
        });
    }

    /// Change directory block `blk` of `dir` and reseal its tail.
    pub fn edit_dir_block(&self, dir: &str, blk: u64, f: impl FnOnce(&mut [u8])) {
        let (ino, seed) = (self.ino(dir).get(), self.seed());
        self.edit(blk * 4096, 4096, |b| {
            f(b);
            vexfs::format::dir::seal_leaf_tail(b, blk, ino, seed);
        });
    }

    /// `p` under the mount point.
    pub fn at(&self, p: &str) -> PathBuf {
        self.mnt.join(p)
    }

    pub fn mount(&self) -> fuse::Mounted {
        fuse::mount(&self.path, &self.mnt)
    }

    /// The mount daemon's stderr (written by [`fuse::mount`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.mnt.with_extension("log")).unwrap()
    }

    /// The daemon logged a corruption of `field` of `structure` at `offset`.
    pub fn assert_logged(&self, structure: &'static str, offset: u64, field: &'static str) {
        let (want, log) = (corrupt_at(structure, offset, field), self.log());
        assert!(log.contains(&want), "'{want}' not in the daemon's log:\n{log}");
    }

    /// Through the mount, the parts no test damages: ok.txt's bytes and
    /// xattr, /e/z, and the listings of / and /e.
    pub fn assert_rest_readable(&self) {
        let read = |p: &str| std::fs::read(self.at(p)).unwrap();
        assert_eq!(read("ok.txt"), hostile_pattern(1, HOSTILE_OK_LEN));
        assert_eq!(xattr::get(self.at("ok.txt"), "user.note").unwrap().unwrap(), b"hello");
        assert_eq!(dir_names(&self.at("e")).unwrap(), ["z"]);
        assert_eq!(read("e/z"), b"zz");
        assert_eq!(
            dir_names(&self.mnt).unwrap(),
            ["a", "d", "e", "ok.txt", "sparse", "victim"]
        );
    }

    /// The mount fails with status 32 and exactly the core's error `e`.
    pub fn assert_refused(&self, e: vexfs::error::FsError) {
        let (code, err) = mount_refused(&self.path, &self.mnt);
        let image = std::fs::canonicalize(&self.path).unwrap();
        let want = format!("mount.vexfs: cannot open {}: {e}\n", image.display());
        assert_eq!(code, Some(32), "{err}");
        assert!(err.ends_with(&want), "expected '{want}' in '{err}'");
    }
}
