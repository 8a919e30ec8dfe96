//! The history of a chaos run: every operation a client invoked, when it was
//! invoked and when it returned, and what it answered; plus the faults the
//! nemesis injected and the replicated clock it sampled. One JSON object per
//! line, so a run that dies half-way still leaves a readable prefix.
//!
//! Times are microseconds on one monotonic clock of the workload process, so
//! invoke and return times of different clients are comparable. This module
//! only records; it never judges (that is `checker`).

use std::io::{BufRead, BufReader, BufWriter, Read, Write};

use idem_client::proto::{ClaimResponse, Record};
use serde::{Deserialize, Serialize};

/// Index of a workload client; the final reads after healing use [`FINAL_PROCESS`].
pub type Process = u32;

/// The process that performs the final reads after the cluster is healed.
pub const FINAL_PROCESS: Process = u32::MAX;

/// What a client asked of one key, with exactly the arguments the checker needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Call {
    Claim {
        claim_id: String,
    },
    Checkpoint {
        token: u64,
        stage: String,
    },
    Complete {
        token: u64,
        result: String,
    },
    Release {
        token: u64,
    },
    /// A linearizable `GET`.
    Read,
}

impl Call {
    /// Whether the call can change the record (a read cannot).
    pub fn is_write(&self) -> bool {
        !matches!(self, Call::Read)
    }
}

/// A successful answer, as the wire types of `idem_client::proto` decode it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Any answer of a claim: 201 acquired, 200 completed, 409 in progress.
    Claim(ClaimResponse),
    /// The record that checkpoint, complete, release or read answered with.
    Record(Record),
}

/// How an operation ended, from the client's point of view. Most operations end
/// `Ok`, so boxing the large variant would only add an allocation to each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outcome {
    /// The registry answered, and the answer is what happened.
    Ok { status: u16, answer: Answer },
    /// A definite refusal that changed nothing: 404, 409 `fenced`, 422, 400...
    Fail { status: u16, code: String },
    /// No answer or a 5xx (timeout, reset, 503): the operation may take effect
    /// at any time after its invocation, or never.
    Unknown { reason: String },
    /// The connection was refused: the request never left the client, so it
    /// can have had no effect and the checker ignores it.
    NotSent { reason: String },
}

impl Outcome {
    pub fn is_definite(&self) -> bool {
        matches!(self, Outcome::Ok { .. } | Outcome::Fail { .. })
    }
}

/// One operation of one client on one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub process: Process,
    /// The node the request was sent to (1-based), for reading failures.
    pub node: u32,
    pub key: String,
    pub call: Call,
    pub invoke_us: u64,
    /// When the client stopped waiting; for an unknown outcome this is not when
    /// the operation took effect, which may be any later time.
    pub return_us: u64,
    pub outcome: Outcome,
}

impl Op {
    /// A write the registry acknowledged: it certainly took effect.
    pub fn is_successful_write(&self) -> bool {
        self.call.is_write()
            && match &self.outcome {
                Outcome::Ok { answer: Answer::Claim(c), .. } => matches!(c, ClaimResponse::Acquired { .. }),
                Outcome::Ok { .. } => true,
                _ => false,
            }
    }
}

/// A fault the nemesis injected, from injection to heal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// `kill`, `pause`, `partition` or `clock`.
    pub nemesis: String,
    /// What exactly was done, e.g. `kill -9 leader n2` or `isolate leader n1 from n2,n3`.
    pub detail: String,
    /// Whether the fault took the leader away (what "unavailability after leader loss" measures).
    pub leader_loss: bool,
    pub start_us: u64,
    pub end_us: u64,
}

/// One line of a history file; nearly all are `Op`s, hence no boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Op(Op),
    Fault(Fault),
    /// The nemesis has healed everything; reads invoked after this are the final reads.
    Healed {
        at_us: u64,
    },
}

/// A whole history, split by kind of event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub ops: Vec<Op>,
    pub faults: Vec<Fault>,
    pub healed_at_us: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading the history: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line} of the history: {source}")]
    Parse { line: usize, source: serde_json::Error },
}

impl History {
    pub fn push(&mut self, event: Event) {
        match event {
            Event::Op(op) => self.ops.push(op),
            Event::Fault(f) => self.faults.push(f),
            Event::Healed { at_us } => self.healed_at_us = Some(at_us),
        }
    }

    /// Reads JSON lines; blank lines are skipped, and so is a last line cut
    /// short (a run killed while writing leaves one).
    pub fn read(from: impl Read) -> Result<History, HistoryError> {
        let mut history = History::default();
        let mut lines = BufReader::new(from).lines().enumerate().peekable();
        while let Some((i, line)) = lines.next() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(&line) {
                Ok(event) => history.push(event),
                Err(e) if e.is_eof() && lines.peek().is_none() => break,
                Err(source) => return Err(HistoryError::Parse { line: i + 1, source }),
            }
        }
        Ok(history)
    }
}

/// Appends events to a history file as they happen.
pub struct Recorder<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> Recorder<W> {
    pub fn new(out: W) -> Self {
        Recorder { out: BufWriter::new(out) }
    }

    pub fn record(&mut self, event: &Event) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_json_lines() {
        let op = Op {
            process: 3,
            node: 2,
            key: "k1".into(),
            call: Call::Complete { token: 7, result: "r-3-1".into() },
            invoke_us: 10,
            return_us: 2_000_010,
            outcome: Outcome::Unknown { reason: "timeout".into() },
        };
        let fault = Fault {
            nemesis: "kill".into(),
            detail: "kill -9 leader n1".into(),
            leader_loss: true,
            start_us: 5,
            end_us: 9,
        };
        let mut buf = Vec::new();
        let mut rec = Recorder::new(&mut buf);
        for e in [Event::Op(op.clone()), Event::Fault(fault.clone()), Event::Healed { at_us: 11 }] {
            rec.record(&e).unwrap();
        }
        rec.flush().unwrap();
        drop(rec);
        let h = History::read(&buf[..]).unwrap();
        assert_eq!(h, History { ops: vec![op.clone()], faults: vec![fault.clone()], healed_at_us: Some(11) });
        // A run killed mid-line leaves a readable prefix.
        let cut = buf.len() - 5;
        let h = History::read(&buf[..cut]).unwrap();
        assert_eq!(h, History { ops: vec![op], faults: vec![fault], healed_at_us: None });
    }
}
