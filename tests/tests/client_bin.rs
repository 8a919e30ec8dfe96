//! Finds a binary of `idem-client` for the tests that run it, as the harness
//! finds the node: an environment variable, else `cargo build` once and the
//! target directory. Included by `cli.rs` and `checkout.rs`; its own test
//! checks that both artifacts build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `$env` if set; else builds with `cargo build -q -p idem-client <args>`
/// and returns `target/debug/<rel>`.
pub fn client_artifact(env: &str, args: &[&str], rel: &str) -> PathBuf {
    if let Ok(bin) = std::env::var(env) {
        return PathBuf::from(bin);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "idem-client"])
        .args(args)
        .current_dir(&root)
        .status()
        .expect("running cargo build for idem-client");
    assert!(status.success(), "building idem-client {args:?} failed");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    target.join("debug").join(rel)
}

#[test]
fn the_cli_and_the_example_build() {
    for (env, args, rel) in [
        ("IDEM_CLI_BIN", ["--bin", "idem"], "idem"),
        ("CHECKOUT_BIN", ["--example", "checkout"], "examples/checkout"),
    ] {
        let path = client_artifact(env, &args, rel);
        assert!(path.is_file(), "{} is missing", path.display());
    }
}
