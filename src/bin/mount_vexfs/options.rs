//! The `-o` mount options: what mount(8) and fstab may pass, what each
//! sets, and the fuser configuration they make.

use fuser::{MountOption, SessionACL};
use std::collections::BTreeMap;
use vexfs::fuse::server::{default_threads, parse_threads, session_config};

/// What the -o options asked for.
#[derive(Debug)]
pub(crate) struct Opts {
    pub(crate) read_only: bool,
    pub(crate) acl: SessionACL,
    pub(crate) default_permissions: bool,
    pub(crate) debug: bool,
    pub(crate) threads: usize,
    pub(crate) fsname: Option<String>,
    /// Kernel mount flags by group (dev, suid, exec, atime, sync): the last
    /// one given wins, as with mount(8).
    pub(crate) flags: BTreeMap<&'static str, MountOption>,
    pub(crate) dirsync: bool,
    /// Record semantic events (events=off turns them off).
    pub(crate) events: bool,
    /// Record searches as events too.
    pub(crate) log_searches: bool,
    /// Ask for the kernel's writeback cache.
    pub(crate) writeback_cache: bool,
    /// Dirty-page limit of the mount's bdi, percent (see vexfs::fuse::bdi).
    pub(crate) max_dirty: Option<u8>,
}

/// The dirty-page limit a writeback-cache mount gets unless `max_dirty=`
/// says otherwise: the kernel's default vm.dirty_ratio, instead of the 1%
/// strict limit FUSE mounts start with.
pub(crate) const WRITEBACK_MAX_DIRTY: u8 = 20;

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            read_only: false,
            acl: SessionACL::Owner,
            default_permissions: false,
            debug: false,
            threads: default_threads(),
            fsname: None,
            flags: BTreeMap::new(),
            dirsync: false,
            events: true,
            log_searches: false,
            writeback_cache: false,
            max_dirty: None,
        }
    }
}

/// Options mount(8) or fstab may pass that mean nothing to a FUSE mount.
fn ignored(o: &str) -> bool {
    const IGNORED: &[&str] = &[
        "defaults",
        "auto",
        "noauto",
        "user",
        "users",
        "nouser",
        "owner",
        "group",
        "_netdev",
        "nofail",
        "loop",
        "relatime",
        "norelatime",
        "strictatime",
        "nostrictatime",
        "lazytime",
        "nolazytime",
        "diratime",
        "nodiratime",
        "iversion",
        "noiversion",
        "mand",
        "nomand",
        "silent",
        "loud",
    ];
    IGNORED.contains(&o)
        || o.starts_with("x-")
        || o.starts_with("comment=")
        || o.starts_with("helper=")
        || o.starts_with("subtype=")
}

pub(crate) fn parse_options(lists: &[String], sloppy: bool) -> Result<Opts, String> {
    let mut o = Opts::default();
    for opt in lists.iter().flat_map(|l| l.split(',')).filter(|s| !s.is_empty()) {
        let flag = |group: &'static str, m: MountOption| (group, m);
        let set = match opt {
            "ro" => {
                o.read_only = true;
                None
            }
            "rw" => {
                o.read_only = false;
                None
            }
            "allow_other" => {
                o.acl = SessionACL::All;
                None
            }
            "allow_root" => {
                o.acl = SessionACL::RootAndOwner;
                None
            }
            "default_permissions" => {
                o.default_permissions = true;
                None
            }
            "debug" => {
                o.debug = true;
                None
            }
            "dirsync" => {
                o.dirsync = true;
                None
            }
            "events=on" | "events" => {
                o.events = true;
                None
            }
            "events=off" | "noevents" => {
                o.events = false;
                None
            }
            "log_searches" => {
                o.log_searches = true;
                None
            }
            "writeback_cache" => {
                o.writeback_cache = true;
                None
            }
            "no_writeback_cache" => {
                o.writeback_cache = false;
                None
            }
            _ if opt.starts_with("max_dirty=") => {
                o.max_dirty = Some(
                    opt["max_dirty=".len()..]
                        .parse()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| format!("bad option '{opt}': max_dirty= takes a percentage from 1 to 100"))?,
                );
                None
            }
            "dev" => Some(flag("dev", MountOption::Dev)),
            "nodev" => Some(flag("dev", MountOption::NoDev)),
            "suid" => Some(flag("suid", MountOption::Suid)),
            "nosuid" => Some(flag("suid", MountOption::NoSuid)),
            "exec" => Some(flag("exec", MountOption::Exec)),
            "noexec" => Some(flag("exec", MountOption::NoExec)),
            "atime" => Some(flag("atime", MountOption::Atime)),
            "noatime" => Some(flag("atime", MountOption::NoAtime)),
            "sync" => Some(flag("sync", MountOption::Sync)),
            "async" => Some(flag("sync", MountOption::Async)),
            _ if opt.starts_with("threads=") => {
                o.threads = parse_threads(opt)?;
                None
            }
            _ if opt.starts_with("fsname=") => {
                o.fsname = Some(opt["fsname=".len()..].to_string());
                None
            }
            _ if opt.starts_with("uid=") || opt.starts_with("gid=") => {
                return Err(format!(
                    "option '{opt}' is not supported: VexFS stores the owner of every file (use chown)"
                ));
            }
            _ if ignored(opt) => None,
            _ if sloppy => None,
            _ => return Err(format!("unknown mount option '{opt}' (see mount.vexfs --help)")),
        };
        if let Some((group, m)) = set {
            o.flags.insert(group, m);
        }
    }
    Ok(o)
}

/// The fuser configuration for these options.
pub(crate) fn fuse_config(o: &Opts, fsname: &str) -> fuser::Config {
    let mut mount_options = vec![
        MountOption::FSName(fsname.to_string()),
        // Sent as a kernel option so that a direct mount(2) shows
        // "fuse.vexfs" too (fuser's Subtype only reaches fusermount).
        MountOption::CUSTOM("subtype=vexfs".into()),
        if o.read_only { MountOption::RO } else { MountOption::RW },
    ];
    if o.default_permissions {
        mount_options.push(MountOption::DefaultPermissions);
    }
    if o.dirsync {
        mount_options.push(MountOption::DirSync);
    }
    mount_options.extend(o.flags.values().cloned());
    session_config(mount_options, o.acl, o.threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(s: &str) -> Result<Opts, String> {
        parse_options(&[s.to_string()], false)
    }

    #[test]
    fn generic_options_are_accepted() {
        let o = opts("defaults,noatime,nodev,nosuid,user,x-systemd.automount,_netdev,rw").unwrap();
        assert!(!o.read_only);
        assert_eq!(o.flags.len(), 3);
        assert!(opts("ro,allow_other,default_permissions").unwrap().read_only);
    }

    #[test]
    fn the_last_of_a_pair_wins() {
        let o = opts("ro,rw,nodev,dev").unwrap();
        assert!(!o.read_only);
        assert_eq!(o.flags["dev"], MountOption::Dev);
        let cfg = fuse_config(&o, "/img");
        assert!(cfg.mount_options.contains(&MountOption::RW));
        assert!(!cfg.mount_options.contains(&MountOption::RO));
    }

    #[test]
    fn unknown_and_owner_options_are_refused() {
        assert!(opts("bogus").unwrap_err().contains("unknown mount option 'bogus'"));
        assert!(parse_options(&["bogus".into()], true).is_ok());
        assert!(opts("uid=1000").unwrap_err().contains("not supported"));
        assert!(opts("threads=0").is_err());
        assert_eq!(opts("threads=3").unwrap().threads, 3);
    }
}
