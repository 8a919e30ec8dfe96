//! The state machine's data as readers see it: the sled tree under the layers
//! of writes that are applied but not yet written into it.
//!
//! Applies add their writes to the `active` layer in memory; the write-back
//! thread (`writeback`) seals that layer every so often and writes it into
//! sled in one atomic batch, which is what keeps sled off the apply path. A
//! reader looks in `active`, then in the `sealed` layer being written, then
//! in the tree, so it sees every applied write whatever the write-back is
//! doing. Between write-backs the tree does not change, which is what lets
//! a snapshot stream it while applies go on.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;

use super::codec::io;
use crate::types::StorageError;

/// Writes by key; `None` marks a removal.
pub type Layer = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

pub struct Overlay {
    tree: sled::Tree,
    /// Applied since the last seal. Only the state machine adds to it.
    active: Layer,
    /// Sealed and being written into `tree` by the write-back thread.
    sealed: Option<Arc<Layer>>,
}

/// A key range: bounds as sled and `BTreeMap` take them.
pub type Range = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Keys and values in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One layer's (or the tree's) entries of a range, in key order.
type Source<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Option<Vec<u8>>), StorageError>> + 'a>;

impl Overlay {
    pub fn new(tree: sled::Tree) -> Self {
        Overlay { tree, active: Layer::new(), sealed: None }
    }

    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// The value of `key`, looking through `newer` (an apply's own writes) first.
    pub fn get(&self, newer: Option<&Layer>, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        for layer in newer.into_iter().chain([&self.active]).chain(self.sealed.as_deref()) {
            if let Some(v) = layer.get(key) {
                return Ok(v.clone());
            }
        }
        Ok(self.tree.get(key).map_err(io)?.map(|v| v.to_vec()))
    }

    /// Up to `limit` live keys and values in `range`, in key order, each from
    /// the newest layer (`newer` first) that holds it.
    pub fn scan(&self, newer: Option<&Layer>, range: Range, limit: usize) -> Result<Pairs, StorageError> {
        let mut sources: Vec<Peekable<Source<'_>>> = Vec::with_capacity(4);
        for l in newer.into_iter().chain([&self.active]).chain(self.sealed.as_deref()) {
            let layer: Source<'_> = Box::new(l.range(range.clone()).map(|(k, v)| Ok((k.clone(), v.clone()))));
            sources.push(layer.peekable());
        }
        let tree = self.tree.range(range).map(|kv| kv.map(|(k, v)| (k.to_vec(), Some(v.to_vec()))).map_err(io));
        sources.push((Box::new(tree) as Source<'_>).peekable());
        let mut out = Vec::new();
        while out.len() < limit {
            // The smallest next key of any source; on a tie the newest source wins.
            let mut next: Option<(usize, Vec<u8>)> = None;
            for (i, s) in sources.iter_mut().enumerate() {
                match s.peek() {
                    Some(Ok((k, _))) if next.as_ref().is_none_or(|(_, n)| k < n) => next = Some((i, k.clone())),
                    Some(Err(_)) => return Err(s.next().and_then(Result::err).expect("peeked an error")),
                    _ => {}
                }
            }
            let Some((winner, key)) = next else { break };
            let mut value = None;
            for (i, s) in sources.iter_mut().enumerate() {
                if s.peek().is_some_and(|r| r.as_ref().is_ok_and(|(k, _)| *k == key)) {
                    let (_, v) = s.next().expect("peeked")?;
                    if i == winner {
                        value = v;
                    }
                }
            }
            if let Some(v) = value {
                out.push((key, v));
            }
        }
        Ok(out)
    }

    /// Add an apply's writes on top of everything applied before.
    pub fn merge(&mut self, writes: Layer) {
        if self.active.is_empty() {
            self.active = writes;
        } else {
            self.active.extend(writes);
        }
    }

    /// Writes applied since the last seal, if any.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// Seal the active layer for writing into the tree; `None` when there is
    /// nothing to write or a sealed layer is still being written.
    pub fn seal(&mut self) -> Option<(sled::Tree, Arc<Layer>)> {
        if self.active.is_empty() || self.sealed.is_some() {
            return None;
        }
        let sealed = Arc::new(std::mem::take(&mut self.active));
        self.sealed = Some(sealed.clone());
        Some((self.tree.clone(), sealed))
    }

    /// The sealed layer is in the tree now: stop looking in it.
    pub fn unseal(&mut self) {
        self.sealed = None;
    }

    /// Readers see `tree` from now on, with nothing on top (a snapshot
    /// installed); returns the tree it replaces.
    pub fn reset(&mut self, tree: sled::Tree) -> sled::Tree {
        self.active.clear();
        self.sealed = None;
        std::mem::replace(&mut self.tree, tree)
    }
}

/// Write `layer` into `tree` in one atomic batch.
pub fn write_into(tree: &sled::Tree, layer: &Layer) -> Result<(), StorageError> {
    let mut batch = sled::Batch::default();
    for (k, v) in layer {
        match v {
            Some(v) => batch.insert(k.as_slice(), v.as_slice()),
            None => batch.remove(k.as_slice()),
        }
    }
    tree.apply_batch(batch).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(pairs: &[(&str, Option<&str>)]) -> Layer {
        pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()))).collect()
    }

    fn all() -> Range {
        (Bound::Unbounded, Bound::Unbounded)
    }

    fn strings(kvs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(String, String)> {
        kvs.into_iter().map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())).collect()
    }

    #[test]
    fn newer_layers_shadow_older_ones_and_removals_hide_keys() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        for k in ["a", "b", "c", "d"] {
            tree.insert(k, "tree").unwrap();
        }
        let mut o = Overlay::new(tree);
        o.merge(layer(&[("b", Some("sealed")), ("c", None), ("e", Some("sealed"))]));
        let (tree, sealed) = o.seal().expect("something to seal");
        assert!(o.seal().is_none(), "one sealed layer at a time");
        o.merge(layer(&[("a", None), ("e", Some("active"))]));
        let pending = layer(&[("d", Some("pending")), ("f", Some("pending"))]);
        let expect = [("b", "sealed"), ("d", "pending"), ("e", "active"), ("f", "pending")];
        let expect: Vec<_> = expect.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(strings(o.scan(Some(&pending), all(), usize::MAX).unwrap()), expect);
        assert_eq!(strings(o.scan(Some(&pending), all(), 2).unwrap()), expect[..2]);
        assert_eq!(o.get(None, b"c").unwrap(), None);
        assert_eq!(o.get(None, b"a").unwrap(), None);
        assert_eq!(o.get(Some(&pending), b"d").unwrap().as_deref(), Some(&b"pending"[..]));
        // Written back, the sealed layer reads the same from the tree.
        write_into(&tree, &sealed).unwrap();
        o.unseal();
        assert_eq!(strings(o.scan(Some(&pending), all(), usize::MAX).unwrap()), expect);
        let range = (Bound::Included(b"c".to_vec()), Bound::Excluded(b"f".to_vec()));
        assert_eq!(
            strings(o.scan(None, range, usize::MAX).unwrap()),
            [("d".into(), "tree".into()), ("e".into(), "active".into())]
        );
    }
}
