//! The bytes of the Raft log, and nothing else: the `FORMAT` marker, segment
//! file names, the segment header and the record frame. Every byte a segment
//! holds is framed and checked here, so `DESIGN.md`'s format table has exactly
//! one implementation. Parsing never panics on what it reads: damage is an
//! answer ([`Frame::Damaged`], [`Header::Damaged`]), never a crash.

use std::fs;
use std::io;
use std::path::Path;

/// The version marker file in the log directory, and the one text it may hold.
pub const MARKER_FILE: &str = "FORMAT";
pub const MARKER_TEXT: &str = "idem-raft-log 1\n";

pub const MAGIC: [u8; 8] = *b"IDEMRLOG";
pub const VERSION: u32 = 1;
pub const SEGMENT_HEADER_LEN: usize = 32;
pub const RECORD_HEADER_LEN: usize = 20;
/// A length above this in a record header is damage, not a record: it keeps a
/// flipped bit from asking for gigabytes.
pub const MAX_PAYLOAD_LEN: usize = 1 << 30;

/// What a record means. The values are on disk: never renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Log-wide, first record of every segment: each group's vote, committed
    /// and purged ids as of that point, so deleting older segments loses none.
    Checkpoint = 1,
    /// One `openraft::Entry`.
    Entry = 2,
    Vote = 3,
    Committed = 4,
    /// Entries from this log id's index on are gone.
    Truncate = 5,
    /// Entries up to this log id are gone.
    Purge = 6,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Checkpoint,
            2 => Kind::Entry,
            3 => Kind::Vote,
            4 => Kind::Committed,
            5 => Kind::Truncate,
            6 => Kind::Purge,
            _ => return None,
        })
    }
}

/// Segments are named by their sequence number in fixed-width hex, so a
/// directory listing sorts in log order.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:016x}.log")
}

pub fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".log")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut out = [0u8; 4];
    out.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(out)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    out.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(out)
}

/// `magic, version u32, 0u32, seq u64, crc32 of bytes 0..24, 0u32`, little-endian.
pub fn segment_header(seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

#[derive(Debug, PartialEq, Eq)]
pub enum Header {
    Valid {
        seq: u64,
    },
    /// Never written: the segment holds nothing.
    Zero,
    /// Intact (its checksum holds) but of a version this code does not know.
    UnknownVersion(u32),
    Damaged(&'static str),
}

pub fn parse_segment_header(bytes: &[u8]) -> Header {
    let Some(h) = bytes.get(..SEGMENT_HEADER_LEN) else {
        return if bytes.iter().all(|b| *b == 0) {
            Header::Zero
        } else {
            Header::Damaged("file shorter than a header")
        };
    };
    if h.iter().all(|b| *b == 0) {
        return Header::Zero;
    }
    if h[..8] != MAGIC {
        return Header::Damaged("not an idem raft log segment (bad magic)");
    }
    if crc32fast::hash(&h[..24]) != le_u32(h, 24) {
        return Header::Damaged("segment header checksum mismatch");
    }
    match le_u32(h, 8) {
        VERSION => Header::Valid { seq: le_u64(h, 16) },
        other => Header::UnknownVersion(other),
    }
}

/// `crc32 u32, payload length u32, kind u8, 3 zero bytes, group u64, payload`,
/// little-endian; the checksum covers everything after itself.
pub fn record(kind: Kind, group: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[4..]);
    out[..4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// What starts at some offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// An intact record, `len` bytes long with its header.
    Record {
        kind: Kind,
        group: u64,
        payload: &'a [u8],
        len: usize,
    },
    /// A zero header (or the end of the file): nothing was written here.
    End,
    Damaged(String),
}

pub fn parse_record(bytes: &[u8]) -> Frame<'_> {
    let Some(h) = bytes.get(..RECORD_HEADER_LEN) else {
        return if bytes.iter().all(|b| *b == 0) {
            Frame::End
        } else {
            Frame::Damaged("record header cut short".into())
        };
    };
    if h.iter().all(|b| *b == 0) {
        return Frame::End;
    }
    let len = le_u32(h, 4) as usize;
    if len > MAX_PAYLOAD_LEN {
        return Frame::Damaged(format!("record length {len} is implausible"));
    }
    let Some(body) = bytes.get(4..RECORD_HEADER_LEN + len) else {
        return Frame::Damaged(format!("record of {len} bytes runs past the end of the file"));
    };
    if crc32fast::hash(body) != le_u32(h, 0) {
        return Frame::Damaged("record checksum mismatch".into());
    }
    let Some(kind) = Kind::from_byte(h[8]) else {
        return Frame::Damaged(format!("unknown record kind {}", h[8]));
    };
    if h[9..12] != [0, 0, 0] {
        return Frame::Damaged("reserved header bytes are not zero".into());
    }
    Frame::Record { kind, group: le_u64(h, 12), payload: &body[RECORD_HEADER_LEN - 4..], len: RECORD_HEADER_LEN + len }
}

/// Write the marker durably; the caller syncs the directory that holds it.
pub fn write_marker(dir: &Path) -> io::Result<()> {
    let mut file = fs::File::create(dir.join(MARKER_FILE))?;
    io::Write::write_all(&mut file, MARKER_TEXT.as_bytes())?;
    file.sync_all()
}

/// Refuse a log directory whose marker this code does not know.
pub fn check_marker(dir: &Path) -> Result<(), super::LogError> {
    let path = dir.join(MARKER_FILE);
    let found = fs::read(&path).map_err(|e| super::LogError::Io(io::Error::new(e.kind(), format!("{path:?}: {e}"))))?;
    if found != MARKER_TEXT.as_bytes() {
        let found = String::from_utf8_lossy(&found).trim().to_string();
        return Err(super::LogError::UnknownFormat { path, found, expected: MARKER_TEXT.trim() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_every_flipped_bit_is_caught() {
        let rec = record(Kind::Vote, 7, b"payload");
        assert_eq!(
            parse_record(&rec),
            Frame::Record { kind: Kind::Vote, group: 7, payload: b"payload", len: rec.len() }
        );
        for byte in 0..rec.len() {
            let mut bad = rec.clone();
            bad[byte] ^= 0x10;
            assert!(matches!(parse_record(&bad), Frame::Damaged(_)), "flip in byte {byte} went unnoticed");
        }
    }

    #[test]
    fn zeros_end_a_segment_and_a_short_tail_is_damage() {
        assert_eq!(parse_record(&[0; 64]), Frame::End);
        assert_eq!(parse_record(&[]), Frame::End);
        let rec = record(Kind::Entry, 0, &[1; 100]);
        assert!(matches!(parse_record(&rec[..50]), Frame::Damaged(_)));
        assert!(matches!(parse_record(&rec[..10]), Frame::Damaged(_)));
    }

    #[test]
    fn segment_headers_and_names() {
        assert_eq!(parse_segment_header(&segment_header(42)), Header::Valid { seq: 42 });
        assert_eq!(parse_segment_header(&[0; 40]), Header::Zero);
        let mut h = segment_header(42);
        h[17] ^= 1;
        assert!(matches!(parse_segment_header(&h), Header::Damaged(_)));
        let mut future = segment_header(1);
        future[8] = 9;
        let crc = crc32fast::hash(&future[..24]);
        future[24..28].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(parse_segment_header(&future), Header::UnknownVersion(9));
        assert_eq!(parse_segment_name(&segment_name(0xabc)), Some(0xabc));
        assert!(segment_name(9) < segment_name(10));
        assert_eq!(parse_segment_name("FORMAT"), None);
    }
}
