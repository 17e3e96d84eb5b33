//! Semantic events (format-spec/11-events.md): every change to the
//! filesystem appends one record to the event ring *in the transaction of
//! the change*, so after a crash an event exists exactly when its change
//! survived. Readers see only committed events, identified by gap-free
//! sequence numbers that survive remounts and are never reused.
//!
//! [`record`] encodes and decodes one record, [`ring`] appends and reads
//! the ring through a transaction, [`follow`] is the API that readers use
//! (positions, missed counts, waiting for new events, filters).

pub mod follow;
pub mod record;
pub mod ring;

pub use follow::{EventBatch, Filter};
pub use record::{Event, Op};
