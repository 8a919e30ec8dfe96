//! The on-disk layout of `DESIGN.md`'s table: tree names, the keys inside
//! them, and their encodings. Log indexes and expiry times are big-endian so
//! sled's byte order is numeric order.

use std::ops::Bound;

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

/// In a state-machine tree: records, the expiry index, and the applied metadata.
pub const RECORD_PREFIX: u8 = b'r';
pub const EXPIRY_PREFIX: u8 = b'x';
/// `p ns \0 key` of every record in progress, its lease end as value: the
/// in-progress index earlier versions kept, removed on open (`old_index`).
pub const OLD_IN_PROGRESS_PREFIX: u8 = b'p';
pub const APPLIED: &[u8] = b"m.applied";
/// The applied log id the old in-progress index was kept in step with;
/// removed with it.
pub const OLD_INDEXED: &[u8] = b"m.indexed";
pub const MEMBERSHIP: &[u8] = b"m.membership";
pub const SM_META: &[u8] = b"m.meta";
/// Where the walk that finds expired records has got to ([`Sweep`](crate::registry::Sweep));
/// absent until the cluster switches to it. Kept apart from `m.meta` so that
/// `m.meta` and the snapshot header keep the format earlier versions decode.
pub const SWEEP: &[u8] = b"m.sweep";

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

fn prefixed_id(prefix: u8, id: &RecordId) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + id.ns.len() + id.key.len());
    out.push(prefix);
    push_id(&mut out, id);
    out
}

pub fn record_key(id: &RecordId) -> Vec<u8> {
    prefixed_id(RECORD_PREFIX, id)
}

/// The id a record key (`RECORD_PREFIX`) names.
pub fn parse_id_key(key: &[u8]) -> Option<RecordId> {
    parse_id(key.get(1..)?)
}

/// The record keys of namespace `ns` whose key starts with `key_prefix`,
/// from the first, or from after the key `after` when that is further on.
/// Keys are UTF-8, which never holds the byte 0xFF, so every key that starts
/// with `key_prefix` sorts below `key_prefix` followed by 0xFF.
pub fn ns_range(ns: &str, key_prefix: &str, after: Option<&str>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let at = |key: &[u8]| {
        let mut out = Vec::with_capacity(3 + ns.len() + key.len());
        out.push(RECORD_PREFIX);
        out.extend_from_slice(ns.as_bytes());
        out.push(0);
        out.extend_from_slice(key);
        out
    };
    let first = at(key_prefix.as_bytes());
    let mut end = first.clone();
    end.push(0xFF);
    match after.map(|a| at(a.as_bytes())) {
        // A cursor past every key with the prefix: an empty range, written so
        // that `BTreeMap::range` (which panics on a start above the end) takes it.
        Some(a) if a >= end => (Bound::Included(end.clone()), Bound::Excluded(end)),
        Some(a) if a >= first => (Bound::Excluded(a), Bound::Excluded(end)),
        _ => (Bound::Included(first), Bound::Excluded(end)),
    }
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

    fn inside_of((start, end): &(Bound<Vec<u8>>, Bound<Vec<u8>>), k: &Vec<u8>) -> bool {
        (match start {
            Bound::Included(s) => k >= s,
            Bound::Excluded(s) => k > s,
            Bound::Unbounded => true,
        }) && matches!(end, Bound::Excluded(e) if k < e)
    }

    #[test]
    fn a_namespace_range_holds_exactly_its_keys_with_the_prefix_after_the_cursor() {
        let range = ns_range("ns", "ab", None);
        let inside = |k: &Vec<u8>| inside_of(&range, k);
        let key = |ns: &str, k: &str| record_key(&RecordId::new(ns, k));
        assert!(inside(&key("ns", "ab")) && inside(&key("ns", "abc\u{10FFFF}")) && inside(&key("ns", "ab\0")));
        assert!(!inside(&key("ns", "aa")) && !inside(&key("ns", "ac")) && !inside(&key("ns2", "ab")));
        assert!(!inside(&key("n", "sab")) && !inside(&expiry_key(0, &RecordId::new("ns", "ab"))));
        let (after, _) = ns_range("ns", "ab", Some("abc"));
        assert_eq!(after, Bound::Excluded(key("ns", "abc")));
        let (before_prefix, _) = ns_range("ns", "ab", Some("a"));
        assert_eq!(before_prefix, Bound::Included(key("ns", "ab")), "a cursor before the prefix starts at it");
        assert_eq!(parse_id_key(&key("ns", "a\0b")), Some(RecordId::new("ns", "a\0b")));
        // A cursor past the prefix's keys (a client may send any valid key as
        // one) is an empty range that a BTreeMap accepts without panicking.
        let past = ns_range("ns", "ab", Some("b"));
        let map = std::collections::BTreeMap::from([(key("ns", "abc"), ()), (key("ns", "b"), ())]);
        assert_eq!(map.range(past.clone()).count(), 0);
        assert!(!inside_of(&past, &key("ns", "b")) && !inside_of(&past, &key("ns", "abz")));
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
