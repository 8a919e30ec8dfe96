//! The one printer: the server's JSON with `--json`, else a readable line.
//! Errors go to stderr in both modes; the exit code carries the verdict.

use idem_client::proto::Record;
use idem_client::Error;
use serde::Serialize;

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// Prints `value` as JSON, or `human()` as text.
    pub fn print(&self, value: &impl Serialize, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string(value).expect("answers are JSON"));
        } else {
            println!("{}", human());
        }
    }

    pub fn record(&self, record: &Record) {
        self.print(record, || summary(record));
    }

    /// Reports `e` and returns its exit code.
    pub fn error(&self, e: &Error) -> u8 {
        eprintln!("idem: {e}");
        crate::exit::code(e)
    }
}

/// One line per record: what an operator looks for first.
pub fn summary(r: &Record) -> String {
    let state = serde_json::to_value(r.state).expect("a state is JSON");
    let mut line =
        format!("{}/{} {} token={} attempt={}", r.namespace, r.key, state.as_str().unwrap_or("?"), r.token, r.attempt);
    if let Some(c) = &r.checkpoint {
        line.push_str(&format!(" checkpoint={}", c.stage));
    }
    if !r.result.is_null() {
        line.push_str(&format!(" result={}", r.result));
    }
    line
}
