//! CPU time of processes, from `/proc/<pid>/stat`: what the servers and the
//! load generator each spend per claim, so a comparison says what its
//! throughput costs and whether the load generator could be the limit.

use anyhow::Context;

/// CPU seconds, user and system, all threads: of the servers together (when
/// their pids were given) and of the bench itself. Read at one instant by
/// [`Usage::read`]; the difference of two readings by [`Usage::since`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub servers: Option<f64>,
    pub loadgen: f64,
}

impl Usage {
    /// The CPU time used so far by `pids` (summed) and by this process, read
    /// together so the two are as close in time as can be.
    pub fn read(pids: &[u32]) -> anyhow::Result<Usage> {
        let servers = if pids.is_empty() {
            None
        } else {
            Some(pids.iter().map(|p| seconds(Some(*p))).sum::<anyhow::Result<f64>>()?)
        };
        Ok(Usage { servers, loadgen: seconds(None)? })
    }

    /// What was used between `before` and `self`.
    pub fn since(self, before: Usage) -> Usage {
        Usage { servers: self.servers.zip(before.servers).map(|(a, b)| a - b), loadgen: self.loadgen - before.loadgen }
    }
}

/// CPU seconds the process `pid` has used; `None` for this process.
fn seconds(pid: Option<u32>) -> anyhow::Result<f64> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let line = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = ticks(&line).with_context(|| format!("parsing {path}"))?;
    Ok(ticks as f64 / ticks_per_second())
}

/// utime + stime of a `stat` line, in clock ticks. The command name (field 2)
/// is in parentheses and may hold spaces and ')', so fields are counted after
/// the last ')': state is then field 3, utime 14 and stime 15.
fn ticks(line: &str) -> anyhow::Result<u64> {
    let rest = &line[line.rfind(')').context("no ')' after the command name")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        let f = fields.get(n - 3).with_context(|| format!("no field {n}"))?;
        f.parse().with_context(|| format!("field {n}: '{f}'"))
    };
    Ok(field(14)? + field(15)?)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_found_after_a_command_name_with_spaces_and_parens() {
        let line = "4242 (idem node) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 2 3";
        assert_eq!(ticks(line).unwrap(), 325);
        assert!(ticks("4242 no parens at all").is_err());
        assert!(ticks("4242 (x) S 1 2").is_err(), "too few fields");
    }

    #[test]
    fn this_process_uses_more_cpu_after_a_busy_loop() {
        let before = seconds(None).unwrap();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while seconds(None).unwrap() <= before && started.elapsed().as_secs() < 10 {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        assert!(seconds(None).unwrap() > before);
        let mine = Usage::read(&[std::process::id()]).unwrap();
        assert!(mine.servers.unwrap() > 0.0 && mine.loadgen > 0.0);
        assert_eq!(Usage::read(&[]).unwrap().servers, None, "no servers given, none read");
        let used = Usage { servers: Some(3.0), loadgen: 1.5 }.since(Usage { servers: Some(1.0), loadgen: 1.0 });
        assert_eq!(used, Usage { servers: Some(2.0), loadgen: 0.5 });
    }
}
