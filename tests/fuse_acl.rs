//! POSIX ACLs through a real mount: the kernel enforces them (FUSE_POSIX_ACL),
//! the core keeps them in step with the mode, inherits default ACLs in
//! place of the umask, and they persist across a remount.

mod common;

use common::fuse::{fuse_usable, mount_with, unmount};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

const MIB: u64 = 1 << 20;
const ACCESS: &str = "system.posix_acl_access";
const DEFAULT: &str = "system.posix_acl_default";
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// The kernel's posix_acl_xattr form of `entries` (tag, perm, id); entries
/// without a qualifier carry ACL_UNDEFINED_ID, as the kernel writes them.
fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        let id = if tag == USER { id } else { u32::MAX };
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

/// Entries of an ACL xattr value as (tag, perm).
fn entries(v: &[u8]) -> Vec<(u16, u16)> {
    v[4..]
        .chunks(8)
        .map(|e| (u16::from_le_bytes([e[0], e[1]]), u16::from_le_bytes([e[2], e[3]])))
        .collect()
}

/// Run `sh -c script` as uid/gid 1000 (or `uid`); true when it succeeded.
fn as_user(uid: u32, script: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .uid(uid)
        .gid(uid)
        .status()
        .unwrap()
        .success()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn acls_are_enforced_synced_with_the_mode_inherited_and_kept() {
    if !fuse_usable() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let image = common::make_image(tmp.path(), "fs.img", 32 * MIB, false);
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let m = mount_with(&image, &mnt, &["-o", "allow_other"]);
    fs::set_permissions(&mnt, fs::Permissions::from_mode(0o755)).unwrap();
    let shared = mnt.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o750)).unwrap();

    // Mode bits alone shut uid 1000 out; an ACL entry lets it in, not 1001.
    assert!(!as_user(1000, &format!("echo x > {}/a", shared.display())));
    let grant = acl(&[
        (USER_OBJ, 7, 0),
        (USER, 7, 1000),
        (GROUP_OBJ, 5, 0),
        (MASK, 7, 0),
        (OTHER, 0, 0),
    ]);
    xattr::set(&shared, ACCESS, &grant).unwrap();
    assert_eq!(mode(&shared), 0o770, "the group bits show the mask");
    assert!(as_user(1000, &format!("echo x > {}/a", shared.display())));
    assert!(!as_user(1001, &format!("ls {}", shared.display())));

    // chmod rewrites the mask: uid 1000 loses write.
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o750)).unwrap();
    let now = xattr::get(&shared, ACCESS).unwrap().unwrap();
    assert!(entries(&now).contains(&(MASK, 5)), "{:?}", entries(&now));
    assert!(!as_user(1000, &format!("echo y > {}/b", shared.display())));

    // A minimal ACL is the mode: nothing stored.
    let dir2 = mnt.join("plain");
    fs::create_dir(&dir2).unwrap();
    xattr::set(
        &dir2,
        ACCESS,
        &acl(&[(USER_OBJ, 7, 0), (GROUP_OBJ, 0, 0), (OTHER, 0, 0)]),
    )
    .unwrap();
    assert_eq!(mode(&dir2), 0o700);
    assert_eq!(xattr::get(&dir2, ACCESS).unwrap(), None);

    // A default ACL is inherited instead of the umask; directories keep it.
    let inherit = mnt.join("inherit");
    fs::create_dir(&inherit).unwrap();
    let def = acl(&[
        (USER_OBJ, 7, 0),
        (USER, 7, 1000),
        (GROUP_OBJ, 5, 0),
        (MASK, 7, 0),
        (OTHER, 5, 0),
    ]);
    xattr::set(&inherit, DEFAULT, &def).unwrap();
    let created = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 077 && echo z > {0}/f && mkdir {0}/d && echo z > {1}/g",
            inherit.display(),
            mnt.display()
        ))
        .status()
        .unwrap();
    assert!(created.success());
    assert_eq!(
        mode(&inherit.join("f")),
        0o664,
        "0666 under the default ACL, not the umask"
    );
    let f_acl = xattr::get(inherit.join("f"), ACCESS)
        .unwrap()
        .expect("inherited access ACL");
    assert!(entries(&f_acl).contains(&(USER, 7)) && entries(&f_acl).contains(&(MASK, 6)));
    assert_eq!(xattr::get(inherit.join("d"), DEFAULT).unwrap(), Some(def.clone()));
    assert_eq!(mode(&mnt.join("g")), 0o600, "no default ACL: the umask applies");
    assert!(as_user(1000, &format!("echo w >> {}/f", inherit.display())));

    unmount(m);
    let m = mount_with(&image, &mnt, &["-o", "allow_other"]);
    assert_eq!(xattr::get(inherit.join("d"), DEFAULT).unwrap(), Some(def));
    assert!(as_user(1000, &format!("cat {}/a", shared.display())));
    unmount(m);
    let r = common::fsck(&image).unwrap();
    assert!(r.is_clean(), "{:#?}", r.problems);
}
