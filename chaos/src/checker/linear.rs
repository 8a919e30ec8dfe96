//! Linearizability of one key's operations: the Wing–Gong search with
//! Lowe's/Porcupine's memoisation of (linearized set, model state).
//!
//! An operation may be linearized next when no other pending operation returned
//! before it was invoked. An operation whose outcome is unknown never returned:
//! it may be linearized at any point after its invocation, or never, which is
//! why the search is done once every *definite* operation is placed. The search
//! is bounded by a budget of explored states, so a pathological key cannot
//! stall a run; running out is reported as inconclusive, never as a pass.
//!
//! Two reductions keep keys with many lost answers tractable, both exact: a
//! client's retries of one call are tried in invocation order only, and an
//! unknown operation is never placed where it would change nothing.

use std::collections::HashSet;

use crate::model::{Input, Output, State};

/// One operation as the search sees it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Index of the operation in the key's list of operations, for reports.
    pub op: usize,
    pub input: Input,
    pub output: Output,
    pub invoke_us: u64,
    /// `None` when the outcome is unknown: the operation never returned.
    pub return_us: Option<u64>,
}

/// Where the search got furthest before every continuation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// Operations (by `Entry::op`) of the longest linearizable prefix found, in order.
    pub prefix: Vec<usize>,
    /// The model state after that prefix.
    pub state: State,
    /// The operations that could have come next, none of which fit.
    pub candidates: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linearizability {
    Linearizable,
    Violation(Stuck),
    /// The budget of explored states ran out before an answer.
    Inconclusive {
        explored: usize,
    },
}

/// Decide whether `entries` (of one key) have a linearization from the empty record.
pub fn check(entries: &[Entry], budget: usize) -> Linearizability {
    let mut entries = entries.to_vec();
    entries.sort_by_key(|e| e.invoke_us);
    let definite = entries.iter().filter(|e| e.return_us.is_some()).count();
    let mut search = Search { entries: &entries, definite, memo: HashSet::new(), budget, path: Vec::new(), best: None };
    let mut done = vec![false; entries.len()];
    match search.dfs(&mut done, 0, &State::default()) {
        Ok(true) => Linearizability::Linearizable,
        Ok(false) => Linearizability::Violation(search.best.expect("a failed search records where it stopped").1),
        Err(Exhausted) => Linearizability::Inconclusive { explored: search.memo.len() },
    }
}

struct Exhausted;

struct Search<'a> {
    entries: &'a [Entry],
    definite: usize,
    memo: HashSet<(Vec<bool>, State)>,
    budget: usize,
    /// Indexes into `entries` of the current partial linearization.
    path: Vec<usize>,
    best: Option<(usize, Stuck)>,
}

impl Search<'_> {
    /// `placed` counts the definite operations in `done`.
    fn dfs(&mut self, done: &mut Vec<bool>, placed: usize, state: &State) -> Result<bool, Exhausted> {
        if placed == self.definite {
            return Ok(true);
        }
        if !self.memo.insert((done.clone(), state.clone())) {
            return Ok(false);
        }
        if self.memo.len() > self.budget {
            return Err(Exhausted);
        }
        let pending = || self.entries.iter().enumerate().filter(|(i, _)| !done[*i]);
        let horizon = pending().filter_map(|(_, e)| e.return_us).min().unwrap_or(u64::MAX);
        // Pending unknown operations with the same input (a client's retries) are
        // interchangeable, and the earliest invoked can go wherever a later one
        // can: only it is tried.
        let mut unknown_inputs = Vec::new();
        let candidates: Vec<usize> = pending()
            .filter(|(_, e)| e.invoke_us <= horizon)
            .filter(|(_, e)| {
                let duplicate = e.return_us.is_none() && unknown_inputs.contains(&e.input);
                if e.return_us.is_none() {
                    unknown_inputs.push(e.input);
                }
                !duplicate
            })
            .map(|(i, _)| i)
            .collect();
        for &i in &candidates {
            let e = &self.entries[i];
            let now_placed = placed + usize::from(e.return_us.is_some());
            for next in state.step(e.input, &e.output) {
                // An unknown operation that changes nothing here is better left
                // pending: it may still take effect later, or never.
                if e.return_us.is_none() && next == *state {
                    continue;
                }
                done[i] = true;
                self.path.push(i);
                let found = self.dfs(done, now_placed, &next);
                self.path.pop();
                done[i] = false;
                if found? {
                    return Ok(true);
                }
            }
        }
        if !matches!(self.best, Some((depth, _)) if depth >= placed) {
            let op = |i: &usize| self.entries[*i].op;
            let stuck = Stuck {
                prefix: self.path.iter().map(op).collect(),
                state: state.clone(),
                candidates: candidates.iter().map(op).collect(),
            };
            self.best = Some((placed, stuck));
        }
        Ok(false)
    }
}
