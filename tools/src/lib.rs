//! Shared code of the VexFS command-line tools.

pub mod bench;
pub mod bench_events;
pub mod bench_fs;
pub mod bench_fsync;
pub mod benchsys;
pub mod floor;
pub mod inspect;
pub mod vecfile;
pub mod vexctl;
