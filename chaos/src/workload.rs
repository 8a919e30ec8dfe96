//! Concurrent clients that use idem the way a service would, recording every
//! operation into the journal.
//!
//! Each client repeatedly picks a key from a small window of contended keys,
//! claims it with a fresh `claim_id`, and if it acquires, maybe checkpoints,
//! then completes (usually) or releases; some turns are plain linearizable
//! reads instead. A call with an unknown outcome is retried with the same
//! arguments (the same `claim_id`, token and result), as a real client must.
//! Every request goes to the next node in turn, so all nodes serve and forward.
//! Now and then a client acts as a stale holder: it checkpoints or completes
//! with the token of a claim it already finished, which must be fenced (or
//! be the harmless repeat of its own completion).
//!
//! The window of keys rolls forward as turns are taken, so each key sees a few
//! dozen operations: enough contention to matter, few enough that the
//! per-key linearizability search stays small.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use idem_client::proto::ClaimResponse;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::{sleep, Instant};

use crate::api::Api;
use crate::history::{Answer, Call, Event, Op, Outcome, Process, FINAL_PROCESS};
use crate::journal::Journal;

/// How the clients behave.
#[derive(Debug, Clone)]
pub struct Settings {
    pub clients: u32,
    /// Keys contended at any moment.
    pub window: u64,
    /// Turns (across all clients) after which the window moves on by one key.
    pub roll_every: u64,
    /// Attempts of a call whose outcome stays unknown, before the client gives up.
    pub attempts: u32,
    /// Share of turns that are a read rather than a claim.
    pub read_share: f64,
    /// Pause between turns of one client, so the history stays a readable size.
    pub think: Duration,
    pub seed: u64,
}

/// Share of turns in which a client replays its last finished claim's token.
const STALE_SHARE: f64 = 0.05;

/// The rolling window of keys.
struct Keys {
    window: u64,
    roll_every: u64,
    turns: AtomicU64,
    highest: AtomicU64,
}

impl Keys {
    fn pick(&self, rng: &mut StdRng) -> String {
        let turn = self.turns.fetch_add(1, Ordering::Relaxed);
        let i = turn / self.roll_every + rng.gen_range(0..self.window);
        self.highest.fetch_max(i, Ordering::Relaxed);
        key_name(i)
    }

    /// Every key a client may have touched.
    fn touched(&self) -> Vec<String> {
        (0..=self.highest.load(Ordering::Relaxed)).map(key_name).collect()
    }
}

fn key_name(i: u64) -> String {
    format!("k{i:06}")
}

/// One client: its process id, the node it talks to next, and its randomness.
struct Client {
    process: Process,
    api: Api,
    journal: Arc<Journal>,
    next_node: u32,
    attempts: u32,
    /// The key and token of this client's last claim, which it has finished:
    /// replayed later as a stale holder that wakes up, which must be fenced.
    finished: Option<(String, u64)>,
}

impl Client {
    fn new(process: Process, api: Api, journal: Arc<Journal>, attempts: u32) -> Client {
        let next_node = process % api.node_count() as u32;
        Client { process, api, journal, next_node, attempts, finished: None }
    }

    /// One request, through the next node, recorded.
    async fn op(&mut self, key: &str, call: &Call) -> Outcome {
        let node = self.next_node + 1;
        self.next_node = (self.next_node + 1) % self.api.node_count() as u32;
        let invoke_us = self.journal.now_us();
        let outcome = self.api.call(node, &format!("p{}", self.process), key, call).await;
        let return_us = self.journal.now_us();
        let op =
            Op { process: self.process, node, key: key.to_owned(), call: call.clone(), invoke_us, return_us, outcome };
        self.journal.record(Event::Op(op.clone()));
        op.outcome
    }

    /// `call` until its outcome is definite or the attempts run out, backing off.
    async fn retried(&mut self, key: &str, call: &Call) -> Outcome {
        let mut attempt = 0;
        loop {
            let outcome = self.op(key, call).await;
            attempt += 1;
            if outcome.is_definite() || attempt >= self.attempts {
                return outcome;
            }
            // 200 ms doubling to 1.6 s: the attempts span an election, as a
            // patient client's would.
            sleep(Duration::from_millis(100 << attempt.min(4))).await;
        }
    }

    async fn turn(&mut self, keys: &Keys, settings: &Settings, rng: &mut StdRng, turn: u64) {
        let tag = format!("{}-{turn}", self.process);
        if rng.gen_bool(STALE_SHARE) {
            if let Some((key, token)) = self.finished.take() {
                let stale = if rng.gen_bool(0.5) {
                    Call::Checkpoint { token, stage: format!("z-{tag}") }
                } else {
                    Call::Complete { token, result: format!("z-{tag}") }
                };
                self.op(&key, &stale).await;
                return;
            }
        }
        let key = keys.pick(rng);
        if rng.gen_bool(settings.read_share) {
            self.op(&key, &Call::Read).await;
            return;
        }
        let claim = self.retried(&key, &Call::Claim { claim_id: format!("c-{tag}") }).await;
        let Outcome::Ok { answer: Answer::Claim(ClaimResponse::Acquired { token, .. }), .. } = claim else {
            return;
        };
        if rng.gen_bool(0.5) {
            self.retried(&key, &Call::Checkpoint { token, stage: format!("s-{tag}") }).await;
        }
        let finish = if rng.gen_bool(0.8) {
            Call::Complete { token, result: format!("r-{tag}") }
        } else {
            Call::Release { token }
        };
        self.retried(&key, &finish).await;
        self.finished = Some((key, token));
    }
}

/// Run the clients until `deadline`; returns the keys they may have touched.
pub async fn run(api: &Api, journal: &Arc<Journal>, settings: &Settings, deadline: Instant) -> Vec<String> {
    let keys = Arc::new(Keys {
        window: settings.window.max(1),
        roll_every: settings.roll_every.max(1),
        turns: AtomicU64::new(0),
        highest: AtomicU64::new(0),
    });
    let tasks: Vec<_> = (0..settings.clients)
        .map(|p| {
            let mut client = Client::new(p, api.clone(), journal.clone(), settings.attempts);
            let (keys, settings) = (keys.clone(), settings.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(settings.seed ^ u64::from(p).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let mut turn = 0;
                while Instant::now() < deadline {
                    turn += 1;
                    client.turn(&keys, &settings, &mut rng, turn).await;
                    sleep(settings.think).await;
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    keys.touched()
}

/// After healing: read every key until a definite answer (or the attempts run
/// out), so every acknowledged completion is checked for durability.
pub async fn final_reads(api: &Api, journal: &Arc<Journal>, keys: Vec<String>, attempts: u32, readers: usize) {
    let per_reader = keys.len().div_ceil(readers.max(1)).max(1);
    let tasks: Vec<_> = keys
        .chunks(per_reader)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let mut reader = Client::new(FINAL_PROCESS, api.clone(), journal.clone(), attempts);
            tokio::spawn(async move {
                for key in chunk {
                    reader.retried(&key, &Call::Read).await;
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}
