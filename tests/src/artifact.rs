//! Binaries of other workspace packages for the tests that run them. Cargo
//! hands a test crate no other package's binary, so each is `$ENV` if set,
//! else built once with `cargo build -q -p <package> <args>` (a no-op when up
//! to date) and taken from the target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace_artifact(env: &str, package: &str, args: &[&str], rel: &str) -> PathBuf {
    if let Ok(bin) = std::env::var(env) {
        return PathBuf::from(bin);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", package])
        .args(args)
        .current_dir(&root)
        .status()
        .unwrap_or_else(|e| panic!("running cargo build for {package}: {e}"));
    assert!(status.success(), "building {package} {args:?} failed");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    target.join("debug").join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_cli_and_the_checkout_example_build() {
        for (env, args, rel) in [
            ("IDEM_CLI_BIN", ["--bin", "idem", "--features", "cli"], "idem"),
            ("CHECKOUT_BIN", ["--example", "checkout", "--features", "layer"], "examples/checkout"),
        ] {
            let path = workspace_artifact(env, "idem-client", &args, rel);
            assert!(path.is_file(), "{} is missing", path.display());
        }
    }
}
