//! What a run did and whether it passed, in a few lines a person reads: counts
//! of operations and outcomes, each fault with the longest time without a
//! successful write after it, and the verdicts (violations in full).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use crate::checker::linear::Linearizability;
use crate::checker::KeyVerdict;
use crate::history::{Call, Fault, History, Outcome, FINAL_PROCESS};

fn secs(us: u64) -> String {
    format!("{:.2}s", us as f64 / 1e6)
}

/// For each fault, the longest stretch without a successful write completing,
/// from the fault's start until the next fault (or the end of the workload).
fn write_gaps(history: &History) -> Vec<(&Fault, u64)> {
    let mut done: Vec<u64> = history
        .ops
        .iter()
        .filter(|op| op.process != FINAL_PROCESS && op.is_successful_write())
        .map(|op| op.return_us)
        .collect();
    done.sort_unstable();
    let end_of_workload = history.healed_at_us.or_else(|| done.last().copied()).unwrap_or(0);
    let mut faults: Vec<&Fault> = history.faults.iter().collect();
    faults.sort_by_key(|f| f.start_us);
    faults
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let until = faults.get(i + 1).map_or(end_of_workload, |next| next.start_us).max(f.end_us);
            let mut last = f.start_us;
            let mut longest = 0;
            for &t in done.iter().filter(|t| (f.start_us..until).contains(t)) {
                longest = longest.max(t - last);
                last = t;
            }
            (*f, longest.max(until - last))
        })
        .collect()
}

fn median(sorted: &[u64]) -> u64 {
    sorted[sorted.len() / 2]
}

/// Print the report; whether every key passed.
pub fn print(out: &mut impl Write, history: &History, verdicts: &[KeyVerdict]) -> io::Result<bool> {
    let ops = &history.ops;
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for op in ops {
        let kind = match op.call {
            Call::Claim { .. } => "claim",
            Call::Checkpoint { .. } => "checkpoint",
            Call::Complete { .. } => "complete",
            Call::Release { .. } => "release",
            Call::Read if op.process == FINAL_PROCESS => "final read",
            Call::Read => "read",
        };
        *by_kind.entry(kind).or_default() += 1;
    }
    let count = |f: fn(&Outcome) -> bool| ops.iter().filter(|op| f(&op.outcome)).count();
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for op in ops {
        if let Outcome::Fail { status, code } = &op.outcome {
            *refusals.entry(format!("{status} {code}")).or_default() += 1;
        }
    }
    let refusals: Vec<String> = refusals.iter().map(|(k, n)| format!("{n} {k}")).collect();
    writeln!(out, "== idem chaos report ==")?;
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    writeln!(out, "operations: {} ({})", ops.len(), kinds.join(", "))?;
    writeln!(
        out,
        "outcomes: {} definite ({} ok; failed: {}), {} unknown, {} not sent",
        count(Outcome::is_definite),
        count(|o| matches!(o, Outcome::Ok { .. })),
        if refusals.is_empty() { "none".to_owned() } else { refusals.join(", ") },
        count(|o| matches!(o, Outcome::Unknown { .. })),
        count(|o| matches!(o, Outcome::NotSent { .. })),
    )?;
    writeln!(out, "successful writes: {}", ops.iter().filter(|op| op.is_successful_write()).count())?;

    let gaps = write_gaps(history);
    writeln!(out, "faults injected: {}", gaps.len())?;
    for (f, gap) in &gaps {
        writeln!(
            out,
            "  at {:>8} for {:>6}  {:<9} {}  | longest without a successful write: {}",
            secs(f.start_us),
            secs(f.end_us - f.start_us),
            f.nemesis,
            f.detail,
            secs(*gap)
        )?;
    }
    let mut leader_loss: Vec<u64> = gaps.iter().filter(|(f, _)| f.leader_loss).map(|(_, g)| *g).collect();
    leader_loss.sort_unstable();
    if let Some(worst) = leader_loss.last() {
        writeln!(
            out,
            "unavailability after leader loss ({} faults): median {}, worst {}",
            leader_loss.len(),
            secs(median(&leader_loss)),
            secs(*worst)
        )?;
    }

    let failed: Vec<&KeyVerdict> = verdicts.iter().filter(|v| !v.passed()).collect();
    let inconclusive =
        verdicts.iter().filter(|v| matches!(v.linearizability, Linearizability::Inconclusive { .. })).count();
    writeln!(
        out,
        "keys: {} checked, {} linearizable with every invariant held, {} failed ({} of them inconclusive)",
        verdicts.len(),
        verdicts.len() - failed.len(),
        failed.len(),
        inconclusive
    )?;
    for v in &failed {
        writeln!(out, "key {}: {} ops, {} unknown: {}", v.key, v.ops, v.unknown, verdict_word(v))?;
        for line in v.violations.iter().chain(&v.explanation) {
            writeln!(out, "    {line}")?;
        }
    }
    writeln!(out, "VERDICT: {}", if failed.is_empty() { "PASS" } else { "FAIL" })?;
    Ok(failed.is_empty())
}

fn verdict_word(v: &KeyVerdict) -> String {
    match &v.linearizability {
        Linearizability::Linearizable if v.violations.is_empty() => "ok".into(),
        Linearizability::Linearizable => "linearizable, but invariants broken".into(),
        Linearizability::Violation(_) => "NOT linearizable".into(),
        Linearizability::Inconclusive { explored } => format!("inconclusive after {explored} states"),
    }
}

/// One line per key: `key verdict ops unknown`.
pub fn print_verdicts(out: &mut impl Write, verdicts: &[KeyVerdict]) -> io::Result<()> {
    for v in verdicts {
        writeln!(out, "{} {} ops={} unknown={}", v.key, verdict_word(v), v.ops, v.unknown)?;
    }
    Ok(())
}

/// How long the check took, for the report's last line.
pub fn took(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}
