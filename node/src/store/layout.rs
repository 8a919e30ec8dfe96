//! The on-disk layout of `DESIGN.md`'s table: tree names, the keys inside
//! them, and their encodings. Log indexes and expiry times are big-endian so
//! sled's byte order is numeric order.

use crate::registry::RecordId;

/// The Raft log's own directory under the data dir (its format: `DESIGN.md`).
pub const LOG_DIR: &str = "raft-log";

/// Where sled held the Raft log before `LOG_DIR` existed; read only to import
/// an older data dir, then dropped. Entries keyed by big-endian index.
pub const LOG_TREE: &str = "log";
/// The old vote, committed log id and last purged log id (same import).
pub const RAFT_META_TREE: &str = "raft_meta";
/// Which state-machine tree is current, and the current snapshot.
pub const ROOT_TREE: &str = "root";
/// State-machine trees are named with this prefix; one is current at a time.
pub const SM_TREE_PREFIX: &str = "sm.";

pub const VOTE: &[u8] = b"vote";
pub const COMMITTED: &[u8] = b"committed";
pub const LAST_PURGED: &[u8] = b"last_purged";

pub const CURRENT_SM: &[u8] = b"current_sm";
pub const CURRENT_SNAPSHOT: &[u8] = b"current_snapshot";

/// In a state-machine tree: records, expiry index, and the applied metadata.
pub const RECORD_PREFIX: u8 = b'r';
pub const EXPIRY_PREFIX: u8 = b'x';
pub const APPLIED: &[u8] = b"m.applied";
pub const MEMBERSHIP: &[u8] = b"m.membership";
pub const SM_META: &[u8] = b"m.meta";

pub fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The big-endian u64 at the start of `bytes` (a log index, or an expiry time).
pub fn be_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(buf)
}

/// `ns \0 key`: a namespace never holds a NUL, so the first NUL splits the two.
fn push_id(out: &mut Vec<u8>, id: &RecordId) {
    out.extend_from_slice(id.ns.as_bytes());
    out.push(0);
    out.extend_from_slice(id.key.as_bytes());
}

fn parse_id(bytes: &[u8]) -> Option<RecordId> {
    let nul = bytes.iter().position(|b| *b == 0)?;
    let ns = std::str::from_utf8(&bytes[..nul]).ok()?;
    let key = std::str::from_utf8(&bytes[nul + 1..]).ok()?;
    Some(RecordId::new(ns, key))
}

pub fn record_key(id: &RecordId) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + id.ns.len() + id.key.len());
    out.push(RECORD_PREFIX);
    push_id(&mut out, id);
    out
}

pub fn expiry_key(at_ms: u64, id: &RecordId) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + id.ns.len() + id.key.len());
    out.push(EXPIRY_PREFIX);
    out.extend_from_slice(&at_ms.to_be_bytes());
    push_id(&mut out, id);
    out
}

/// The first expiry key after every entry due at or before `at_ms`.
pub fn expiry_bound(at_ms: u64) -> Vec<u8> {
    match at_ms.checked_add(1) {
        Some(next) => {
            let mut out = vec![EXPIRY_PREFIX];
            out.extend_from_slice(&next.to_be_bytes());
            out
        }
        None => vec![EXPIRY_PREFIX + 1],
    }
}

pub fn parse_expiry_key(key: &[u8]) -> Option<(u64, RecordId)> {
    if key.len() < 10 || key[0] != EXPIRY_PREFIX {
        return None;
    }
    Some((be_u64(&key[1..9]), parse_id(&key[9..])?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_numerically() {
        assert!(log_key(255) < log_key(256));
        assert_eq!(be_u64(&log_key(1 << 40)), 1 << 40);
    }

    #[test]
    fn expiry_keys_round_trip_and_sort_by_time() {
        let id = RecordId::new("ns", "a\0b/c");
        let k = expiry_key(42, &id);
        assert_eq!(parse_expiry_key(&k), Some((42, id.clone())));
        assert!(expiry_key(41, &id) < expiry_key(42, &RecordId::new("a", "a")));
        assert!(k < expiry_bound(42) && expiry_bound(41) <= k);
        assert!(expiry_key(u64::MAX, &id) < expiry_bound(u64::MAX));
    }
}
