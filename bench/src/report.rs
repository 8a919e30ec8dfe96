//! What one run measured, as a summary line and a CSV row; and `table`,
//! which turns the CSV of a whole comparison into markdown tables.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::idem::Counters;
use crate::load::Tally;

/// One run: one system at one concurrency.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub label: String,
    pub clients: usize,
    pub seconds: f64,
    pub ops: u64,
    pub errors: u64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The leader's counters over the run (idem, leader addressed directly).
    pub leader: Option<Counters>,
    /// CPU seconds per 1,000 claims of the servers (all nodes together), when
    /// their pids were given.
    pub server_cpu_per_1k: Option<f64>,
    /// CPU seconds per 1,000 claims of the bench itself.
    pub loadgen_cpu_per_1k: f64,
}

/// The CSV's columns, also the names in the summary line.
const COLUMNS: [&str; 16] = [
    "label",
    "clients",
    "seconds",
    "ops",
    "errors",
    "claims_per_sec",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    "leader_claims",
    "leader_fsyncs",
    "leader_entries_applied",
    "leader_snapshots_built",
    "server_cpu_s_per_1k",
    "loadgen_cpu_s_per_1k",
];

impl Summary {
    pub fn new(label: String, clients: usize, tally: &Tally, leader: Option<Counters>) -> Summary {
        let h = &tally.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let per_1k = |seconds: f64| seconds * 1000.0 / h.len().max(1) as f64;
        Summary {
            label,
            clients,
            seconds: tally.seconds,
            ops: h.len(),
            errors: tally.errors,
            per_sec: h.len() as f64 / tally.seconds,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            leader,
            server_cpu_per_1k: tally.cpu.servers.map(per_1k),
            loadgen_cpu_per_1k: per_1k(tally.cpu.loadgen),
        }
    }

    /// The values of [`COLUMNS`]; the leader's are empty when not read.
    fn values(&self) -> [String; 16] {
        let c = self.leader;
        let leader = |f: fn(Counters) -> u64| c.map_or(String::new(), |c| f(c).to_string());
        [
            self.label.clone(),
            self.clients.to_string(),
            format!("{:.3}", self.seconds),
            self.ops.to_string(),
            self.errors.to_string(),
            format!("{:.1}", self.per_sec),
            format!("{:.3}", self.p50_ms),
            format!("{:.3}", self.p90_ms),
            format!("{:.3}", self.p99_ms),
            format!("{:.3}", self.max_ms),
            leader(|c| c.claims),
            leader(|c| c.fsyncs),
            leader(|c| c.applied),
            leader(|c| c.snapshots),
            self.server_cpu_per_1k.map_or(String::new(), |v| format!("{v:.4}")),
            format!("{:.4}", self.loadgen_cpu_per_1k),
        ]
    }

    /// The one-line summary on stdout: `name=value` for every known value.
    pub fn line(&self) -> String {
        let pairs = COLUMNS.iter().zip(self.values()).filter(|(_, v)| !v.is_empty());
        pairs.map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    }

    fn from_csv(line: &str) -> anyhow::Result<Summary> {
        let f: Vec<&str> = line.split(',').collect();
        anyhow::ensure!(f.len() == COLUMNS.len(), "expected the columns {}", COLUMNS.join(","));
        let num = |i: usize| f[i].parse::<f64>().with_context(|| format!("column {i}: '{}'", f[i]));
        let int = |i: usize| f[i].parse::<u64>().with_context(|| format!("column {i}: '{}'", f[i]));
        let leader = if f[10].is_empty() {
            None
        } else {
            Some(Counters { claims: int(10)?, fsyncs: int(11)?, applied: int(12)?, snapshots: int(13)? })
        };
        Ok(Summary {
            label: f[0].to_owned(),
            clients: int(1)? as usize,
            seconds: num(2)?,
            ops: int(3)?,
            errors: int(4)?,
            per_sec: num(5)?,
            p50_ms: num(6)?,
            p90_ms: num(7)?,
            p99_ms: num(8)?,
            max_ms: num(9)?,
            leader,
            server_cpu_per_1k: if f[14].is_empty() { None } else { Some(num(14)?) },
            loadgen_cpu_per_1k: num(15)?,
        })
    }

    /// Appends the row to `path`, with the header if the file is new.
    pub fn append_csv(&self, path: &Path) -> anyhow::Result<()> {
        let fresh = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        if fresh {
            writeln!(f, "{}", COLUMNS.join(","))?;
        }
        writeln!(f, "{}", self.values().join(","))?;
        Ok(())
    }
}

/// Every run of a results CSV written with `--csv`.
pub fn read(path: &Path) -> anyhow::Result<Vec<Summary>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(Summary::from_csv)
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("parsing {}", path.display()))
}

/// The markdown of a results CSV: every run; then the first system against
/// each other one at every concurrency (throughput ratio first/other, p99
/// ratio first/other, each one's servers' CPU per 1,000 claims); then the
/// leader's counters where they were read; last, how lean the load generator
/// was on a machine of `cores` cores ([`loadgen_line`]).
pub fn table(path: &Path, cores: usize) -> anyhow::Result<String> {
    let runs = read(path)?;
    let first = runs.first().context("no runs in the results")?;
    let mut out = String::from(
        "| system | clients | claims/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU s/1k | bench CPU s/1k |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &runs {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {:.3} |",
            r.label,
            r.clients,
            r.per_sec,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.errors,
            cpu_cell(r.server_cpu_per_1k),
            r.loadgen_cpu_per_1k
        );
    }
    let mut others: Vec<&str> = runs.iter().map(|r| r.label.as_str()).filter(|l| *l != first.label).collect();
    others.dedup();
    for other in others {
        let (a, b) = (&first.label, other);
        let _ = write!(
            out,
            "\n| clients | {a} claims/s | {a} p50 ms | {a} p99 ms | {b} claims/s | {b} p50 ms | {b} p99 ms \
             | claims/s {a}/{b} | p99 {a}/{b} | server CPU s/1k {a} | server CPU s/1k {b} |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
        );
        for x in runs.iter().filter(|r| r.label == *a) {
            let Some(y) = runs.iter().find(|r| r.label == b && r.clients == x.clients) else { continue };
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
                x.clients,
                x.per_sec,
                x.p50_ms,
                x.p99_ms,
                y.per_sec,
                y.p50_ms,
                y.p99_ms,
                x.per_sec / y.per_sec,
                x.p99_ms / y.p99_ms,
                cpu_cell(x.server_cpu_per_1k),
                cpu_cell(y.server_cpu_per_1k)
            );
        }
    }
    let led: Vec<_> = runs.iter().filter_map(|r| Some((r, r.leader?))).collect();
    if !led.is_empty() {
        out.push_str(
            "\n| system | clients | claims | of them answered by the leader | leader log fsyncs | claims per leader fsync \
             | entries applied | snapshots built |\n|---|---|---|---|---|---|---|---|\n",
        );
        // Every claim of the run went through the leader's log, wherever the
        // client sent it; the leader counts as acquired only those it answered.
        for (r, c) in led {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.1} | {} | {} |",
                r.label,
                r.clients,
                r.ops,
                c.claims,
                c.fsyncs,
                r.ops as f64 / c.fsyncs.max(1) as f64,
                c.applied,
                c.snapshots
            );
        }
    }
    if let Some(line) = loadgen_line(&runs, cores) {
        let _ = write!(out, "\n{line}\n");
    }
    Ok(out)
}

/// Whether the load generator was lean enough not to be the limit: its CPU
/// per 1,000 claims beside the servers', over every run whose servers were
/// read; and in the run where it was busiest, the cores it and the servers
/// kept busy. `None` when no run read the servers' CPU.
fn loadgen_line(runs: &[Summary], cores: usize) -> Option<String> {
    let read: Vec<(&Summary, f64)> = runs.iter().filter_map(|r| Some((r, r.server_cpu_per_1k?))).collect();
    let claims: u64 = read.iter().map(|(r, _)| r.ops).sum();
    let total =
        |per_1k: &dyn Fn(&Summary, f64) -> f64| read.iter().map(|(r, s)| per_1k(r, *s) * r.ops as f64).sum::<f64>();
    let (bench, servers) = (total(&|r, _| r.loadgen_cpu_per_1k), total(&|_, s| s));
    if claims == 0 || servers == 0.0 {
        return None;
    }
    let busy = |r: &Summary, per_1k: f64| per_1k * r.ops as f64 / 1000.0 / r.seconds;
    let (busiest, server_cpu) =
        read.iter().max_by(|a, b| busy(a.0, a.0.loadgen_cpu_per_1k).total_cmp(&busy(b.0, b.0.loadgen_cpu_per_1k)))?;
    Some(format!(
        "load generator: {:.3} CPU s per 1,000 claims against the servers' {:.3} ({:.0}% of theirs); \
         at its busiest ({} at {} clients) it kept {:.2} of {cores} cores busy, the servers {:.2}",
        bench / claims as f64,
        servers / claims as f64,
        100.0 * bench / servers,
        busiest.label,
        busiest.clients,
        busy(busiest, busiest.loadgen_cpu_per_1k),
        busy(busiest, *server_cpu),
    ))
}

/// A CPU figure's table cell: blank when the servers were not read.
fn cpu_cell(v: Option<f64>) -> String {
    v.map_or_else(|| "".into(), |v| format!("{v:.3}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(label: &str, clients: usize, per_sec: f64, p99_ms: f64, leader: Option<Counters>) -> Summary {
        Summary {
            label: label.into(),
            clients,
            seconds: 10.0,
            ops: (per_sec * 10.0) as u64,
            errors: 0,
            per_sec,
            p50_ms: 1.0,
            p90_ms: 2.0,
            p99_ms,
            max_ms: 9.0,
            leader,
            server_cpu_per_1k: Some(per_sec / 1000.0),
            loadgen_cpu_per_1k: 0.05,
        }
    }

    #[test]
    fn rows_survive_the_csv_and_the_table_compares_first_to_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let counters = Counters { claims: 8000, fsyncs: 100, applied: 120, snapshots: 1 };
        let rows = [run("idem", 64, 800.0, 4.0, Some(counters)), run("etcd", 64, 200.0, 8.0, None)];
        for r in &rows {
            r.append_csv(&path).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let back: Vec<_> = text.lines().skip(1).map(|l| Summary::from_csv(l).unwrap()).collect();
        assert_eq!(back, rows);
        let md = table(&path, 2).unwrap();
        assert!(md.contains("| server CPU s/1k idem | server CPU s/1k etcd |"), "{md}");
        assert!(md.contains("| 64 | 800 | 1.00 | 4.00 | 200 | 1.00 | 8.00 | 4.00 | 0.50 | 0.800 | 0.200 |"), "{md}");
        assert!(md.contains("| idem | 64 | 800 | 1.00 | 2.00 | 4.00 | 9.00 | 0 | 0.800 | 0.050 |"), "{md}");
        assert!(md.contains("| idem | 64 | 8000 | 8000 | 100 | 80.0 | 120 | 1 |"), "{md}");
        // 0.05 s per 1k claims for the bench against 0.8 and 0.2 for the
        // servers, weighted by 8000 and 2000 claims; busiest at 8000 claims
        // in 10 s: 0.04 cores for the bench, 0.64 for idem's servers.
        assert!(
            md.contains(
                "load generator: 0.050 CPU s per 1,000 claims against the servers' 0.680 (7% of theirs); \
                 at its busiest (idem at 64 clients) it kept 0.04 of 2 cores busy, the servers 0.64"
            ),
            "{md}"
        );
    }

    #[test]
    fn claims_per_leader_fsync_count_the_claims_other_nodes_answered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let answered_by_leader = Counters { claims: 2000, fsyncs: 1000, applied: 1000, snapshots: 0 };
        run("idem", 1, 600.0, 2.0, Some(answered_by_leader)).append_csv(&path).unwrap();
        let md = table(&path, 2).unwrap();
        assert!(md.contains("| idem | 1 | 6000 | 2000 | 1000 | 6.0 | 1000 | 0 |"), "{md}");
    }

    #[test]
    fn no_loadgen_line_without_the_servers_cpu() {
        let mut r = run("idem", 1, 600.0, 2.0, None);
        r.server_cpu_per_1k = None;
        assert_eq!(loadgen_line(&[r], 2), None);
    }
}
