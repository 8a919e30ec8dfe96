//! Listing a namespace's live records in key order, a page at a time.
//!
//! A page is a walk of one key range from a cursor (the last key the walk
//! reached), so records that exist throughout a paged walk are each listed
//! exactly once however writes interleave, as with etcd's range reads by key.
//! Every listing walks the namespace's records: a filter on the state reads
//! only the state of a record it does not want (`codec::record_state`), and
//! there is no index of the claims in progress to walk instead, since every
//! sled key a claim writes costs the write path (`old_index`). Every page
//! examines at most [`EXAMINE_MAX`] entries and then ends early with a
//! cursor: no request turns into a scan of the whole state.

use super::codec::{decode, record_state};
use super::layout;
use super::view::StateView;
use crate::registry::{RecordState, StoredRecord};
use crate::types::StorageError;

/// Records one page looks at, at most.
pub const EXAMINE_MAX: usize = 10_000;
/// Entries read from the state per step of a page's walk.
const STEP: usize = 256;

/// Which of a namespace's records a listing wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only keys that start with it.
    pub prefix: String,
    pub state: Option<RecordState>,
    /// Only claims in progress whose lease the replicated clock has run out.
    pub abandoned: bool,
}

impl Filter {
    /// The records of a state this filter never wants.
    fn passes_over(&self, state: RecordState) -> bool {
        let wanted = if self.abandoned { Some(RecordState::InProgress) } else { self.state };
        wanted.is_some_and(|w| w != state)
    }

    fn wants(&self, record: &StoredRecord, clock_ms: u64) -> bool {
        record.is_live(clock_ms)
            && self.state.is_none_or(|s| s == record.state)
            && (!self.abandoned || record.is_abandoned(clock_ms))
    }
}

/// Records of one page with their keys, and the key the walk stopped at
/// when there may be more.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    pub records: Vec<(String, StoredRecord)>,
    pub next: Option<String>,
}

impl StateView {
    /// Up to `limit` live records of `ns` that `filter` wants, after the key
    /// `after`, judged by the replicated clock as of the call.
    pub fn list(&self, ns: &str, filter: &Filter, after: Option<&str>, limit: usize) -> Result<Page, StorageError> {
        self.list_within(ns, filter, after, limit, EXAMINE_MAX)
    }

    fn list_within(
        &self,
        ns: &str,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
        examine_max: usize,
    ) -> Result<Page, StorageError> {
        let clock = self.clock_ms();
        let mut range = layout::ns_range(ns, &filter.prefix, after);
        let mut page = Page::default();
        let mut examined = 0;
        loop {
            let step = STEP.min(examine_max - examined);
            let entries = self.read_overlay().scan(None, range.clone(), step)?;
            for (key, value) in &entries {
                examined += 1;
                if let Some(record) = candidate(value, filter, clock)? {
                    page.records.push((key_of(key)?, record));
                }
                if page.records.len() == limit || examined == examine_max {
                    page.next = Some(key_of(key)?);
                    return Ok(page);
                }
            }
            match entries.last() {
                Some((last, _)) if entries.len() == step => range.0 = std::ops::Bound::Excluded(last.clone()),
                _ => return Ok(page),
            }
        }
    }
}

/// The record stored as `value`, if the filter wants it: what a listing page
/// and the abandoned-claims walk ([`StateView::abandoned_after`]) both ask.
pub(super) fn candidate(value: &[u8], filter: &Filter, clock: u64) -> Result<Option<StoredRecord>, StorageError> {
    if filter.passes_over(record_state(value)?) {
        return Ok(None);
    }
    let record: StoredRecord = decode(value)?;
    Ok(filter.wants(&record, clock).then_some(record))
}

/// The key (within its namespace) of the record stored under `key`.
fn key_of(key: &[u8]) -> Result<String, StorageError> {
    let id = layout::parse_id_key(key).ok_or_else(|| {
        super::codec::io(std::io::Error::other(format!("a state key without namespace and key: {key:?}")))
    })?;
    Ok(id.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{apply, Command, Meta, Op, RecordId, Request};
    use crate::store::pending::Pending;

    /// A view over a temporary tree with `ops` applied at clock `clock_ms`.
    fn view_with(entries: &[(u64, Vec<Op>)]) -> StateView {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let view = StateView::new(db.open_tree("sm.0").unwrap(), &Meta::default(), None);
        let mut meta = Meta::default();
        for (i, (stamp_ms, ops)) in entries.iter().enumerate() {
            let writes = {
                let overlay = view.read_overlay();
                let mut tables = Pending::new(&overlay);
                apply(
                    &mut tables,
                    &mut meta,
                    i as u64 + 1,
                    &Request { stamp_ms: *stamp_ms, cmd: Command::Ops(ops.clone()) },
                );
                tables.into_writes().unwrap()
            };
            view.write_overlay().merge(writes);
        }
        view.publish(&meta, None);
        view
    }

    fn claim(key: &str, lease_ms: u64) -> Op {
        Op::Claim {
            id: RecordId::new("ns", key),
            lease_ms,
            retention_ms: 1_000_000,
            fingerprint: None,
            owner: None,
            claim_id: None,
        }
    }

    fn keys(page: &Page) -> Vec<&str> {
        page.records.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// At clock 1000: a1 completed, a2 abandoned (lease 100 ms), a3 held
    /// (lease 1 h), b1 completed; `other` namespace has a1 in progress.
    fn sample() -> StateView {
        let mut claims = vec![claim("a1", 100), claim("a2", 100), claim("a3", 3_600_000), claim("b1", 100)];
        claims.push(Op::Claim {
            id: RecordId::new("other", "a1"),
            lease_ms: 100,
            retention_ms: 1_000_000,
            fingerprint: None,
            owner: None,
            claim_id: None,
        });
        let complete = |key: &str, position| Op::Complete {
            id: RecordId::new("ns", key),
            token: crate::registry::token(1, position),
            result_json: "1".into(),
            retention_ms: None,
        };
        view_with(&[(100, claims), (200, vec![complete("a1", 0), complete("b1", 3)]), (1_000, vec![])])
    }

    #[test]
    fn filters_pick_by_prefix_state_and_abandonment() {
        let view = sample();
        let list = |filter: Filter| view.list("ns", &filter, None, 100).unwrap();
        assert_eq!(keys(&list(Filter::default())), ["a1", "a2", "a3", "b1"]);
        assert_eq!(keys(&list(Filter { prefix: "a".into(), ..Filter::default() })), ["a1", "a2", "a3"]);
        let done = Filter { state: Some(RecordState::Completed), ..Filter::default() };
        assert_eq!(keys(&list(done)), ["a1", "b1"]);
        let busy = Filter { state: Some(RecordState::InProgress), ..Filter::default() };
        assert_eq!(keys(&list(busy)), ["a2", "a3"]);
        assert_eq!(keys(&list(Filter { abandoned: true, ..Filter::default() })), ["a2"]);
        assert_eq!(list(Filter::default()).next, None, "the walk is over");
    }

    #[test]
    fn a_filter_passes_over_records_of_a_state_it_never_wants() {
        use RecordState::{Completed, InProgress};
        let over = |filter: Filter| [InProgress, Completed].map(|state| filter.passes_over(state));
        assert_eq!(over(Filter::default()), [false, false]);
        assert_eq!(over(Filter { prefix: "a".into(), ..Filter::default() }), [false, false]);
        assert_eq!(over(Filter { state: Some(InProgress), ..Filter::default() }), [false, true]);
        assert_eq!(over(Filter { state: Some(Completed), ..Filter::default() }), [true, false]);
        assert_eq!(over(Filter { abandoned: true, ..Filter::default() }), [false, true]);
    }

    #[test]
    fn pages_follow_the_cursor_and_end_early_at_the_examined_bound() {
        let view = sample();
        let all = Filter::default();
        let first = view.list("ns", &all, None, 2).unwrap();
        assert_eq!((keys(&first), first.next.as_deref()), (vec!["a1", "a2"], Some("a2")));
        let second = view.list("ns", &all, first.next.as_deref(), 2).unwrap();
        assert_eq!(keys(&second), ["a3", "b1"]);
        let done = Filter { state: Some(RecordState::Completed), ..Filter::default() };
        let bounded = view.list_within("ns", &done, None, 100, 2).unwrap();
        assert_eq!((keys(&bounded), bounded.next.as_deref()), (vec!["a1"], Some("a2")), "stopped after two looked at");
        let rest = view.list_within("ns", &done, bounded.next.as_deref(), 100, 2).unwrap();
        assert_eq!((keys(&rest), rest.next.as_deref()), (vec!["b1"], Some("b1")));
    }

    #[test]
    fn expired_and_released_records_are_not_listed() {
        let release = Op::Release { id: RecordId::new("ns", "a2"), token: crate::registry::token(1, 1) };
        let view = view_with(&[(100, vec![claim("a1", 100), claim("a2", 100)]), (150, vec![release])]);
        let busy = Filter { state: Some(RecordState::InProgress), ..Filter::default() };
        assert_eq!(keys(&view.list("ns", &busy, None, 10).unwrap()), ["a1"]);
        let later = view_with(&[(100, vec![claim("a1", 100)]), (2_000_000, vec![])]);
        assert!(later.list("ns", &Filter::default(), None, 10).unwrap().records.is_empty(), "expired");
    }
}
