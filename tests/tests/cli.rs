//! The `idem` binary against a real cluster: every command, `--json` and the
//! readable output, and every exit code its `--help` documents.

use std::process::Command;

use idem_tests::{workspace_artifact, TestCluster};
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", self.stdout))
    }
}

/// Runs `idem` with `IDEM_ENDPOINTS` set to `endpoints`.
fn idem(endpoints: &str, args: &[&str]) -> Run {
    let bin = workspace_artifact("IDEM_CLI_BIN", "idem-client", &["--bin", "idem", "--features", "cli"], "idem");
    let out = Command::new(bin).args(args).env("IDEM_ENDPOINTS", endpoints).output().expect("running idem");
    Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts the exit code and returns the run.
fn expect(endpoints: &str, code: i32, args: &[&str]) -> Run {
    let run = idem(endpoints, args);
    assert_eq!(run.code, code, "idem {args:?}\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
    run
}

#[tokio::test]
async fn key_commands_and_their_exit_codes() {
    let c = TestCluster::start(3).await;
    let e = &c.urls().join(",");
    let key = "order/7 é";

    let first =
        expect(e, 0, &["--json", "claim", "pay", key, "--lease", "30s", "--fingerprint", "f", "--claim-id", "c1"]);
    let first = first.json();
    assert_eq!(first["outcome"], "acquired");
    let token = first["token"].as_u64().expect("token");
    let t = &token.to_string();
    assert_eq!(first["record"]["key"], key);
    // The same claim id: the same call, exit 0 and the same token.
    let again = expect(e, 0, &["--json", "claim", "pay", key, "--fingerprint", "f", "--claim-id", "c1"]).json();
    assert_eq!(again["token"], token);
    let busy = expect(e, 3, &["--json", "claim", "pay", key, "--fingerprint", "f"]).json();
    assert_eq!((busy["outcome"].as_str(), busy["token"].as_u64()), (Some("in_progress"), Some(token)));
    expect(e, 6, &["claim", "pay", key, "--fingerprint", "other"]);

    expect(e, 4, &["checkpoint", "pay", key, "--token", &(token + 100).to_string(), "--stage", "s"]);
    let cp = expect(
        e,
        0,
        &[
            "--json",
            "checkpoint",
            "pay",
            key,
            "--token",
            t,
            "--stage",
            "charged",
            "--data",
            r#"{"psp":"ch_1"}"#,
            "--lease",
            "1m",
        ],
    );
    assert_eq!(cp.json()["checkpoint"]["data"]["psp"], "ch_1");
    let done = expect(
        e,
        0,
        &["--json", "complete", "pay", key, "--token", t, "--result", r#"{"ok":true}"#, "--retention", "1h"],
    );
    assert_eq!(done.json()["state"], "completed");
    expect(e, 4, &["complete", "pay", key, "--token", &(token + 100).to_string(), "--result", "1"]);

    let replay = expect(e, 0, &["claim", "pay", key, "--fingerprint", "f"]);
    assert!(replay.stdout.starts_with("completed"), "{}", replay.stdout);
    assert!(replay.stdout.contains(r#"result={"ok":true}"#), "{}", replay.stdout);
    let read = expect(e, 0, &["--json", "get", "pay", key]).json();
    assert_eq!(read["result"]["ok"], true);
    let stale = expect(e, 0, &["get", "pay", key, "--stale", "--wait", "500ms"]);
    assert!(stale.stdout.contains("completed token="), "{}", stale.stdout);

    let held = expect(e, 0, &["claim", "pay", "held", "--owner", "ops"]);
    assert!(held.stdout.starts_with("acquired token="), "{}", held.stdout);
    let held_token = expect(e, 0, &["--json", "get", "pay", "held"]).json()["token"].to_string();
    expect(e, 4, &["release", "pay", "held", "--token", "1"]);
    expect(e, 0, &["release", "pay", "held", "--token", &held_token]);
    expect(e, 5, &["release", "pay", "held", "--token", &held_token]);
    expect(e, 5, &["get", "pay", "held"]);

    expect(e, 0, &["delete", "pay", key]);
    expect(e, 5, &["get", "pay", key]);
    expect(e, 5, &["delete", "pay", key]);
}

#[tokio::test]
async fn cluster_commands() {
    let mut c = TestCluster::start(3).await;
    let e = &c.urls().join(",");
    let status = expect(e, 0, &["--json", "cluster", "status"]).json();
    assert_eq!(status["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(status["leader_id"], c.leader().await);
    let human = expect(e, 0, &["cluster", "status"]);
    assert_eq!(human.stdout.matches(" voter").count(), 3, "{}", human.stdout);

    let new = c.add_node().await;
    let (id, addr) = (new.to_string(), c.addr(new));
    let learner = expect(e, 0, &["--json", "cluster", "add-learner", &id, &addr]).json();
    assert!(learner["members"].as_array().unwrap().iter().any(|m| m["id"] == new && m["voter"] == false));
    let voters = expect(e, 0, &["cluster", "voters", &format!("1,2,3,{new}")]);
    assert_eq!(voters.stdout.matches(" voter").count(), 4, "{}", voters.stdout);
    expect(e, 2, &["cluster", "voters", "1,2,99"]);
}

#[tokio::test]
async fn usage_errors_unavailability_and_help() {
    let c = TestCluster::start(1).await;
    let e = &c.url(1);
    expect(e, 2, &["frobnicate"]);
    expect(e, 2, &["claim", "pay"]);
    expect(e, 2, &["claim", "pay", "k", "--lease", "30"]);
    expect(e, 2, &["claim", "pay", "k", "--lease", "1ms"]);
    expect(e, 2, &["claim", "bad/ns", "k"]);
    expect(e, 2, &["complete", "pay", "k", "--token", "1", "--result", "{not json"]);

    // The flag wins over the environment; nothing listens on port 1.
    let down = expect(e, 1, &["--endpoints", "http://127.0.0.1:1", "--timeout", "1s", "cluster", "status"]);
    assert!(down.stderr.contains("transport"), "{}", down.stderr);
    expect("http://127.0.0.1:1", 1, &["--timeout", "500ms", "get", "pay", "k"]);

    let help = expect(e, 0, &["--help"]);
    for line in [
        "0  success",
        "1  registry unavailable",
        "2  bad usage",
        "3  in progress",
        "4  fenced",
        "5  not found",
        "6  fingerprint mismatch",
    ] {
        assert!(help.stdout.contains(line), "--help lacks {line:?}:\n{}", help.stdout);
    }
    assert!(help.stdout.contains("IDEM_ENDPOINTS"), "{}", help.stdout);
}

#[tokio::test]
async fn list_prints_a_line_per_record_or_json_lines_and_finds_abandoned_claims() {
    let c = TestCluster::start(1).await;
    let e = &c.urls().join(",");
    for key in ["a1", "a2", "b1"] {
        expect(e, 0, &["claim", "inv", key, "--lease", "1h"]);
    }
    expect(e, 0, &["claim", "inv", "gone", "--lease", "100ms"]);
    let all = expect(e, 0, &["list", "inv"]).stdout;
    assert_eq!(
        all.lines().map(|l| l.split(' ').next().unwrap()).collect::<Vec<_>>(),
        ["inv/a1", "inv/a2", "inv/b1", "inv/gone"]
    );
    let json = expect(e, 0, &["--json", "list", "inv", "--prefix", "a", "--limit", "1"]).stdout;
    let records: Vec<Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 1);
    assert_eq!((records[0]["key"].as_str(), records[0]["state"].as_str()), (Some("a1"), Some("in_progress")));
    // The replicated clock passes the short lease within a tick or two.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let abandoned = expect(e, 0, &["list", "inv", "--abandoned"]).stdout;
        if !abandoned.is_empty() {
            assert!(abandoned.starts_with("inv/gone in_progress") && abandoned.lines().count() == 1, "{abandoned}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the claim never counted as abandoned");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    expect(e, 2, &["list", "inv", "--limit", "0"]);
}
