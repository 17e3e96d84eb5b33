//! Shared code of the VexFS command-line tools.

pub mod bench;
pub mod inspect;
pub mod vecfile;
pub mod vexctl;
