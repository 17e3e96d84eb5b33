//! One event (format-spec/11 §11.3-11.4): the owned form, its on-disk
//! encoding and its JSON form.

use crate::error::{Expected, FsError, Result};
use crate::format::events::{op_name, record_checksum, EventRecord, EVENT_ALIGN, EVENT_MAGIC, OPS};
use crate::format::inode::Timestamp;
use crate::format::MAX_NAME_LEN;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Operation codes (§11.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Op {
    Create = 1,
    Mkdir = 2,
    Mknod = 3,
    Symlink = 4,
    Link = 5,
    Unlink = 6,
    Rmdir = 7,
    Rename = 8,
    Write = 9,
    Truncate = 10,
    Setattr = 11,
    Setxattr = 12,
    Removexattr = 13,
    VectorAttach = 14,
    VectorDetach = 15,
    CollectionCreate = 16,
    CollectionDrop = 17,
    Search = 18,
    Mount = 19,
    Unmount = 20,
}

impl Op {
    pub fn name(self) -> &'static str {
        op_name(self as u16)
    }

    /// The code of an operation name ("create", "vector_attach", ...).
    pub fn code_of(name: &str) -> Option<u16> {
        OPS.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }
}

/// An event as readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub seq: u64,
    pub op: u16,
    pub time: Timestamp,
    pub uid: u32,
    pub pid: u32,
    pub ino: u64,
    pub parent: u64,
    pub name: Vec<u8>,
    pub ino2: u64,
    pub parent2: u64,
    pub name2: Vec<u8>,
    pub aux: u64,
}

impl Event {
    /// A new event of `op` on `ino` (other fields set by the caller).
    pub fn new(op: Op, ino: u64) -> Event {
        Event {
            op: op as u16,
            ino,
            ..Event::default()
        }
    }

    pub fn with_name(mut self, parent: u64, name: &[u8]) -> Event {
        self.parent = parent;
        self.name = name[..name.len().min(MAX_NAME_LEN)].to_vec();
        self
    }

    pub fn with_second(mut self, ino2: u64, parent2: u64, name2: &[u8]) -> Event {
        (self.ino2, self.parent2) = (ino2, parent2);
        self.name2 = name2[..name2.len().min(MAX_NAME_LEN)].to_vec();
        self
    }

    pub fn with_aux(mut self, aux: u64) -> Event {
        self.aux = aux;
        self
    }

    /// `ev_len` of this event.
    pub fn encoded_len(&self) -> usize {
        (88 + self.name.len() + self.name2.len()).div_ceil(EVENT_ALIGN) * EVENT_ALIGN
    }

    /// The record bytes, sealed with the checksum (seq must be set).
    pub fn encode(&self, seed: u32) -> Vec<u8> {
        let len = self.encoded_len();
        let mut r = EventRecord::new_zeroed();
        r.ev_magic.set(EVENT_MAGIC);
        r.ev_len.set(len as u16);
        r.ev_op.set(self.op);
        r.ev_seq.set(self.seq);
        r.ev_time_sec.set(self.time.sec as u64);
        r.ev_time_nsec.set(self.time.nsec);
        r.ev_uid.set(self.uid);
        r.ev_pid.set(self.pid);
        r.ev_name_len.set(self.name.len() as u16);
        r.ev_name2_len.set(self.name2.len() as u16);
        r.ev_ino.set(self.ino);
        r.ev_parent.set(self.parent);
        r.ev_ino2.set(self.ino2);
        r.ev_parent2.set(self.parent2);
        r.ev_aux.set(self.aux);
        let mut out = vec![0u8; len];
        out[..88].copy_from_slice(r.as_bytes());
        out[88..88 + self.name.len()].copy_from_slice(&self.name);
        out[88 + self.name.len()..88 + self.name.len() + self.name2.len()].copy_from_slice(&self.name2);
        let c = record_checksum(&out, self.seq, seed);
        out[80..84].copy_from_slice(&c.to_le_bytes());
        out
    }

    /// Decode and validate the record at the start of `bytes` (§11.9),
    /// found at image offset `at`. `Ok(None)` at the end of a block.
    pub fn decode(bytes: &[u8], at: u64, seed: u32) -> Result<Option<Event>> {
        let Ok((r, _)) = EventRecord::ref_from_prefix(bytes) else {
            return Ok(None);
        };
        if r.ev_magic.get() == 0 {
            return Ok(None);
        }
        let bad = |off: u64, field, exp, act: u64| FsError::corrupt("event record", at + off, field, exp, act);
        if r.ev_magic.get() != EVENT_MAGIC {
            return Err(bad(
                0,
                "ev_magic",
                Expected::Eq(EVENT_MAGIC.into()),
                r.ev_magic.get().into(),
            ));
        }
        let (n1, n2) = (usize::from(r.ev_name_len.get()), usize::from(r.ev_name2_len.get()));
        if n1 > MAX_NAME_LEN || n2 > MAX_NAME_LEN {
            return Err(bad(
                36,
                "ev_name_len",
                Expected::AtMost(MAX_NAME_LEN as u64),
                n1.max(n2) as u64,
            ));
        }
        let len = (88 + n1 + n2).div_ceil(EVENT_ALIGN) * EVENT_ALIGN;
        if usize::from(r.ev_len.get()) != len || len > bytes.len() {
            return Err(bad(2, "ev_len", Expected::Eq(len as u64), r.ev_len.get().into()));
        }
        let want = record_checksum(&bytes[..len], r.ev_seq.get(), seed);
        if r.ev_checksum.get() != want {
            return Err(bad(
                80,
                "ev_checksum",
                Expected::Eq(want.into()),
                r.ev_checksum.get().into(),
            ));
        }
        Ok(Some(Event {
            seq: r.ev_seq.get(),
            op: r.ev_op.get(),
            time: Timestamp {
                sec: r.ev_time_sec.get() as i64,
                nsec: r.ev_time_nsec.get(),
            },
            uid: r.ev_uid.get(),
            pid: r.ev_pid.get(),
            ino: r.ev_ino.get(),
            parent: r.ev_parent.get(),
            name: bytes[88..88 + n1].to_vec(),
            ino2: r.ev_ino2.get(),
            parent2: r.ev_parent2.get(),
            name2: bytes[88 + n1..88 + n1 + n2].to_vec(),
            aux: r.ev_aux.get(),
        }))
    }

    /// One JSON object (names as UTF-8, lossy).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "seq": self.seq,
            "op": op_name(self.op),
            "time": format!("{}.{:09}", self.time.sec, self.time.nsec),
            "uid": self.uid,
            "pid": self.pid,
            "ino": self.ino,
        });
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if self.parent != 0 || !self.name.is_empty() {
            v["parent"] = self.parent.into();
            v["name"] = text(&self.name).into();
        }
        if self.ino2 != 0 || self.parent2 != 0 || !self.name2.is_empty() {
            v["ino2"] = self.ino2.into();
            v["parent2"] = self.parent2.into();
            v["name2"] = text(&self.name2).into();
        }
        v["aux"] = self.aux.into();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_one_flipped_byte_is_caught() {
        let mut e = Event::new(Op::Rename, 12)
            .with_name(1, b"a.txt")
            .with_second(0, 7, b"b.txt");
        e.seq = 42;
        e.aux = 1;
        let bytes = e.encode(0x1234);
        assert_eq!(bytes.len(), 104);
        assert_eq!(Event::decode(&bytes, 0, 0x1234).unwrap(), Some(e));
        let mut bad = bytes.clone();
        bad[90] ^= 1;
        let err = Event::decode(&bad, 4096, 0x1234).unwrap_err().to_string();
        assert!(err.contains("ev_checksum") && err.contains("4176"), "{err}");
        assert_eq!(
            Event::decode(&[0u8; 100], 0, 1).unwrap(),
            None,
            "zero magic ends a block"
        );
    }
}
