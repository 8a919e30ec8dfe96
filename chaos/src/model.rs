//! The registry of `shared/API.md` for one key, as a sequential specification
//! that the linearizability search steps through.
//!
//! The model is exact for the workload that `workload` runs, which keeps three
//! things out of play so that time need not be modelled:
//! - leases are long (an hour) and runs are short, so a live holder's lease never
//!   expires: a claim with another `claim_id` must answer 409, and a takeover is
//!   never legal (one that happens is reported as a violation);
//! - retention is a day, and nothing is deleted, so a record never disappears
//!   except by `release`; once completed it stays completed;
//! - every claim of a key sends no fingerprint, so 422 is never legal.
//!
//! Tokens are Raft log indexes the model cannot predict. It keeps, per key, a
//! floor that every new acquisition's token must exceed (tokens strictly
//! increase), and a token it has not seen yet (an acquisition by a claim whose
//! answer was lost) as "above the floor" until an answer reveals it. A call
//! with a token above that floor may or may not be the unseen holder's: both
//! branches are explored, and the model does not remember that a token was
//! ruled out, which can only make it more permissive, never raise a false
//! alarm. Strings
//! (claim ids, stages, results) are interned to [`Sym`]s so states hash cheaply.

use std::collections::HashMap;

use idem_client::proto::{Record, RecordState};
use serde_json::Value;

/// An interned string of one key's history.
pub type Sym = u32;

/// Interns the strings of one key's history.
#[derive(Debug, Default)]
pub struct Symbols {
    ids: HashMap<String, Sym>,
    names: Vec<String>,
}

impl Symbols {
    pub fn sym(&mut self, s: &str) -> Sym {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.names.len() as Sym;
        self.names.push(s.to_owned());
        self.ids.insert(s.to_owned(), id);
        id
    }

    fn name(&self, sym: Sym) -> &str {
        &self.names[sym as usize]
    }

    /// A model state in the words of the history, for reports.
    pub fn describe(&self, state: &State) -> String {
        let opt = |s: Option<Sym>| s.map_or("none".to_owned(), |s| self.name(s).to_owned());
        let rec = match &state.rec {
            Rec::Absent => "absent".to_owned(),
            Rec::Held { token, claim_id, stage } => {
                let token = match token {
                    Token::Known(t) => t.to_string(),
                    Token::Above(b) => format!("unseen (> {b})"),
                };
                format!("in_progress token {token} claim_id {} stage {}", self.name(*claim_id), opt(*stage))
            }
            Rec::Done { token, claim_id, stage, result } => format!(
                "completed token {token} claim_id {} stage {} result {}",
                self.name(*claim_id),
                opt(*stage),
                self.name(*result)
            ),
        };
        format!("{rec}; next token must exceed {}", state.floor)
    }

    /// A stored result: the workload stores JSON strings; anything else is
    /// interned by its JSON text, so it can only match if someone wrote it.
    fn result(&mut self, v: &Value) -> Option<Sym> {
        match v {
            Value::Null => None,
            Value::String(s) => Some(self.sym(s)),
            other => Some(self.sym(&other.to_string())),
        }
    }

    /// What of a record the model can judge.
    pub fn view(&mut self, r: &Record) -> View {
        View {
            completed: r.state == RecordState::Completed,
            token: r.token,
            attempt: r.attempt,
            claim_id: r.claim_id.as_deref().map(|c| self.sym(c)),
            stage: r.checkpoint.as_ref().map(|c| self.sym(&c.stage)),
            result: self.result(&r.result),
        }
    }
}

/// One call, with interned arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Claim { claim_id: Sym },
    Checkpoint { token: u64, stage: Sym },
    Complete { token: u64, result: Sym },
    Release { token: u64 },
    Read,
}

/// The parts of a record the model predicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub completed: bool,
    pub token: u64,
    pub attempt: u32,
    pub claim_id: Option<Sym>,
    pub stage: Option<Sym>,
    pub result: Option<Sym>,
}

/// What the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// No answer: any effect the model allows, or none.
    Unknown,
    /// Claim 201.
    Acquired {
        token: u64,
        takeover: bool,
        view: View,
    },
    /// Claim 200: the key is completed.
    Replayed(View),
    /// Claim 409: someone else holds the key.
    Busy(View),
    /// 200 of checkpoint, complete, release or read.
    Record(View),
    NotFound,
    Fenced,
    /// Any other definite answer (422, 400, ...): never legal in this workload.
    Refused(String),
}

/// The token of the current holder: seen, or only known to exceed the floor
/// that was in force when it was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    Known(u64),
    Above(u64),
}

/// The record of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Rec {
    #[default]
    Absent,
    Held {
        token: Token,
        claim_id: Sym,
        stage: Option<Sym>,
    },
    Done {
        token: u64,
        claim_id: Sym,
        stage: Option<Sym>,
        result: Sym,
    },
}

/// The model state of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct State {
    pub rec: Rec,
    /// Every acquisition from now on must have a larger token than this.
    pub floor: u64,
}

/// What the model answers, with the record the answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Acquired(Rec),
    Replayed(Rec),
    Busy(Rec),
    Record(Rec),
    NotFound,
    Fenced,
}

impl State {
    /// Learn that the holder's unseen token is `t`.
    fn bind(&self, t: u64) -> State {
        let rec = match &self.rec {
            Rec::Held { token: Token::Above(_), claim_id, stage } => {
                Rec::Held { token: Token::Known(t), claim_id: *claim_id, stage: *stage }
            }
            other => other.clone(),
        };
        State { rec, floor: self.floor.max(t) }
    }

    /// The ways the holder's token can relate to `t`: (state, holder is `t`).
    /// An unseen token may be `t` (if `t` is above its floor) or not.
    fn holder_is(&self, held: Token, t: u64) -> Vec<(State, bool)> {
        match held {
            Token::Known(k) => vec![(self.clone(), k == t)],
            Token::Above(b) if t > b => vec![(self.bind(t), true), (self.clone(), false)],
            Token::Above(_) => vec![(self.clone(), false)],
        }
    }

    /// Every (next state, answer) the registry may produce for `input`.
    fn apply(&self, input: Input) -> Vec<(State, Reply)> {
        let same = |reply| vec![(self.clone(), reply)];
        let with = |rec: Rec, floor| State { rec, floor };
        match (input, &self.rec) {
            (Input::Read, Rec::Absent) => same(Reply::NotFound),
            (Input::Read, rec) => same(Reply::Record(rec.clone())),

            (Input::Claim { claim_id }, Rec::Absent) => {
                let rec = Rec::Held { token: Token::Above(self.floor), claim_id, stage: None };
                vec![(with(rec.clone(), self.floor), Reply::Acquired(rec))]
            }
            (Input::Claim { claim_id }, rec @ Rec::Held { claim_id: holder, .. }) if *holder == claim_id => {
                same(Reply::Acquired(rec.clone()))
            }
            (Input::Claim { .. }, rec @ Rec::Held { .. }) => same(Reply::Busy(rec.clone())),
            (Input::Claim { .. }, rec @ Rec::Done { .. }) => same(Reply::Replayed(rec.clone())),

            (Input::Complete { token, .. }, rec @ Rec::Done { token: done, .. }) if *done == token => {
                same(Reply::Record(rec.clone()))
            }
            (Input::Checkpoint { .. } | Input::Complete { .. } | Input::Release { .. }, Rec::Absent) => {
                same(Reply::NotFound)
            }
            (Input::Checkpoint { .. } | Input::Complete { .. } | Input::Release { .. }, Rec::Done { .. }) => {
                same(Reply::Fenced)
            }
            (Input::Checkpoint { token, stage }, Rec::Held { token: held, claim_id, .. }) => {
                self.fenced_unless_holder(*held, token, |s| {
                    let rec = Rec::Held { token: Token::Known(token), claim_id: *claim_id, stage: Some(stage) };
                    (with(rec.clone(), s.floor), Reply::Record(rec))
                })
            }
            (Input::Complete { token, result }, Rec::Held { token: held, claim_id, stage }) => self
                .fenced_unless_holder(*held, token, |s| {
                    let rec = Rec::Done { token, claim_id: *claim_id, stage: *stage, result };
                    (with(rec.clone(), s.floor), Reply::Record(rec))
                }),
            (Input::Release { token }, Rec::Held { token: held, .. }) => {
                self.fenced_unless_holder(*held, token, |s| (with(Rec::Absent, s.floor), Reply::Record(s.rec.clone())))
            }
        }
    }

    /// `then` applied to the state where `token` holds the key; `fenced` otherwise.
    fn fenced_unless_holder(
        &self,
        held: Token,
        token: u64,
        then: impl Fn(&State) -> (State, Reply),
    ) -> Vec<(State, Reply)> {
        self.holder_is(held, token)
            .into_iter()
            .map(|(s, holds)| if holds { then(&s) } else { (s, Reply::Fenced) })
            .collect()
    }

    /// The states the key may be in after `input` answered `output`; empty when
    /// the answer is impossible from this state.
    pub fn step(&self, input: Input, output: &Output) -> Vec<State> {
        self.apply(input)
            .into_iter()
            .filter_map(|(next, reply)| match observe(&reply, output)? {
                Some(t) => Some(next.bind(t)),
                None => Some(next),
            })
            .collect()
    }
}

/// Whether `output` is what `reply` looks like: `None` if not, else the token it
/// reveals for an unseen holder token (`Some(None)` when it reveals nothing).
fn observe(reply: &Reply, output: &Output) -> Option<Option<u64>> {
    match (reply, output) {
        (_, Output::Unknown) => Some(None),
        (Reply::Acquired(rec), Output::Acquired { token, takeover: false, view }) if *token == view.token => {
            view_matches(rec, view)
        }
        (Reply::Replayed(rec), Output::Replayed(view))
        | (Reply::Busy(rec), Output::Busy(view))
        | (Reply::Record(rec), Output::Record(view)) => view_matches(rec, view),
        (Reply::NotFound, Output::NotFound) | (Reply::Fenced, Output::Fenced) => Some(None),
        _ => None,
    }
}

fn view_matches(rec: &Rec, v: &View) -> Option<Option<u64>> {
    let (token, claim_id, stage, result) = match rec {
        Rec::Absent => return None,
        Rec::Held { token, claim_id, stage } => (*token, claim_id, stage, None),
        Rec::Done { token, claim_id, stage, result } => (Token::Known(*token), claim_id, stage, Some(*result)),
    };
    let fields = v.completed == result.is_some()
        && v.attempt == 1
        && v.claim_id == Some(*claim_id)
        && v.stage == *stage
        && v.result == result;
    match token {
        _ if !fields => None,
        Token::Known(k) => (k == v.token).then_some(None),
        Token::Above(b) => (v.token > b).then_some(Some(v.token)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(token: u64, claim_id: Sym) -> View {
        View { completed: false, token, attempt: 1, claim_id: Some(claim_id), stage: None, result: None }
    }

    #[test]
    fn a_claim_on_an_absent_key_acquires_above_the_floor() {
        let s = State { rec: Rec::Absent, floor: 10 };
        let out = Output::Acquired { token: 11, takeover: false, view: held(11, 0) };
        let next = s.step(Input::Claim { claim_id: 0 }, &out);
        assert_eq!(
            next,
            vec![State { rec: Rec::Held { token: Token::Known(11), claim_id: 0, stage: None }, floor: 11 }]
        );
        let stale = Output::Acquired { token: 9, takeover: false, view: held(9, 0) };
        assert!(s.step(Input::Claim { claim_id: 0 }, &stale).is_empty(), "token must exceed the floor");
    }

    #[test]
    fn an_unseen_token_is_bound_by_the_first_answer_that_shows_it() {
        let s = State::default().step(Input::Claim { claim_id: 0 }, &Output::Unknown).pop().unwrap();
        assert_eq!(s.rec, Rec::Held { token: Token::Above(0), claim_id: 0, stage: None });
        let busy = s.step(Input::Claim { claim_id: 1 }, &Output::Busy(held(5, 0)));
        assert_eq!(busy[0].rec, Rec::Held { token: Token::Known(5), claim_id: 0, stage: None });
        // A complete with a token nobody saw may or may not be the holder's.
        let done = s.step(Input::Complete { token: 7, result: 2 }, &Output::Unknown);
        assert_eq!(done.len(), 2);
    }

    #[test]
    fn takeover_and_fingerprint_refusals_are_never_legal() {
        let s = State { rec: Rec::Held { token: Token::Known(3), claim_id: 0, stage: None }, floor: 3 };
        let takeover = Output::Acquired { token: 4, takeover: true, view: held(4, 1) };
        assert!(s.step(Input::Claim { claim_id: 1 }, &takeover).is_empty());
        assert!(s.step(Input::Claim { claim_id: 1 }, &Output::Refused("fingerprint_mismatch".into())).is_empty());
    }
}
