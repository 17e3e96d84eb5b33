//! The parts of `bench-fsync` (tools/src/bin/bench_fsync.rs): the system interface and cleanup
//! guards, the fsync'd-transaction workload, and the crash-recovery measurement.

pub mod recovery;
pub mod sys;
pub mod workload;
