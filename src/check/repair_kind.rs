//! What kind of problem a check found, with the data a repair needs: the
//! check records one [`Kind`] beside each problem's message, and the repair
//! ([`super::repair`]) is driven by these alone.

/// Where a directory entry is: its directory, block and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryAt {
    pub dir: u32,
    pub block: u64,
    pub offset: usize,
}

/// The structured side of a [`super::Problem`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Kind {
    /// A problem fsck does not repair (left uncorrected).
    #[default]
    Other,
    /// An allocated inode that does not parse, has no file type, or whose
    /// block map cannot be read: the blocks it owns are unknown.
    DamagedInode { ino: u32 },
    /// A directory whose entries could not be read (or a missing root): the
    /// tree below it was not walked.
    DamagedDir { ino: u32 },
    /// The catalogue or a collection's hidden files could not be read: the
    /// references to hidden files were not all counted.
    Catalogue,
    /// The orphan chain is broken: which inodes are orphans is unknown.
    OrphanChain,
    /// Blocks `start..end` are marked in use but owned by nothing.
    LeakedBlocks { start: u64, end: u64 },
    /// Blocks `start..end` are in use but marked free.
    UnmarkedBlocks { start: u64, end: u64 },
    /// A bitmap or summary block that fails validation (checksum, bt_free).
    BitmapBlock { block: u64 },
    /// The summary bit of leaf `leaf` (of the inode bitmap when `inodes`)
    /// disagrees with the leaf.
    SummaryBit { inodes: bool, leaf: u64 },
    /// The superblock's free block counter.
    FreeBlocks,
    /// The superblock's free inode counter.
    FreeInodes,
    /// An inode marked in use in the inode bitmap whose `i_mode` is 0.
    LeakedInode { ino: u32 },
    /// An inode in use (it parses, a directory names it) but marked free.
    UnmarkedInode { ino: u32 },
    /// `i_blocks` differs from the blocks the inode owns (in sectors).
    BlocksCount { ino: u32, sectors: u64 },
    /// `i_links_count` differs from the references found.
    LinkCount { ino: u32, refs: u32 },
    /// A directory entry naming an out-of-range, free or (`damaged`)
    /// allocated but unreadable inode.
    BadEntry { at: EntryAt, target: u32, damaged: bool },
    /// A "." or ".." entry naming the wrong inode (should be `target`).
    DotEntry { at: EntryAt, target: u32 },
    /// An entry whose file type differs from its inode's (`file_type`).
    EntryType { at: EntryAt, target: u32, file_type: u8 },
    /// An inode in use that no directory names.
    Unreachable { ino: u32 },
    /// The backup superblock (last block) is damaged or describes another
    /// image; the primary is valid.
    BackupSuperblock,
    /// The primary superblock is damaged; the image was read through the
    /// backup, which a read-write open copies over the primary.
    PrimarySuperblock,
    /// The event ring header fails validation.
    EventRingHeader,
    /// The event ring's records do not match its header.
    EventRing,
    /// A collection's graph (lists, reachability, degrees, header
    /// counters, free chain) is wrong; its vectors are not in question.
    Graph { collection: String },
    /// Anything else wrong in a collection (records, owners, files): its
    /// vectors or references are in question, so its graph is not rebuilt.
    CollectionDamage { collection: String },
}

impl Kind {
    /// Whether `fsck -y` has a repair for this kind.
    pub fn repairable(&self) -> bool {
        !matches!(
            self,
            Kind::Other
                | Kind::DamagedInode { .. }
                | Kind::DamagedDir { .. }
                | Kind::Catalogue
                | Kind::OrphanChain
                | Kind::CollectionDamage { .. }
        )
    }

    /// Whether `fsck -p` may repair it without asking: counters, bitmaps
    /// and summaries, link and block counts, entry types and the event ring
    /// header. Nothing that removes a name, moves a file or rebuilds an index.
    pub fn preen_safe(&self) -> bool {
        matches!(
            self,
            Kind::LeakedBlocks { .. }
                | Kind::UnmarkedBlocks { .. }
                | Kind::BitmapBlock { .. }
                | Kind::SummaryBit { .. }
                | Kind::FreeBlocks
                | Kind::FreeInodes
                | Kind::LeakedInode { .. }
                | Kind::UnmarkedInode { .. }
                | Kind::BlocksCount { .. }
                | Kind::LinkCount { .. }
                | Kind::EntryType { .. }
                | Kind::EventRingHeader
        )
    }

    /// Some blocks in use may not have been seen: freeing "leaked" blocks
    /// (or allocating new ones) could destroy data.
    pub(crate) fn hides_blocks(&self) -> bool {
        matches!(self, Kind::DamagedInode { .. } | Kind::UnmarkedInode { .. })
    }

    /// Some references may not have been counted: link counts and
    /// reachability are not known.
    pub(crate) fn hides_references(&self) -> bool {
        self.hides_blocks() || matches!(self, Kind::DamagedDir { .. } | Kind::Catalogue | Kind::OrphanChain)
    }
}
