//! Argument parsers shared by the subcommands: human durations and JSON.

use std::time::Duration;

use serde_json::Value;

/// `500ms`, `30s`, `24h`, `1h 30m` (humantime).
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 30s, 24h)"))
}

pub fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

pub fn json(s: &str) -> Result<Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_human() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert!(duration("30").is_err());
        assert!(duration("soon").is_err());
    }

    #[test]
    fn json_values_parse() {
        assert_eq!(json(r#"{"a":1}"#), Ok(serde_json::json!({"a": 1})));
        assert_eq!(json("7"), Ok(serde_json::json!(7)));
        assert!(json("{a").is_err());
    }
}
