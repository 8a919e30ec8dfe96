#!/usr/bin/env bash
# Build the `idem-node:latest` image: a statically linked release binary
# (glibc, crt-static) in an image FROM scratch. Usage: deploy/docker/build.sh [TAG]
# Environment: IDEM_SRC, the source tree to build (default: this repository;
# the container tests point it at an older commit's worktree); CARGO_TARGET_DIR,
# whose `static/` subdirectory holds the build (default: the tree's `target/`),
# so that trees sharing a target directory share the compiled dependencies.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$(cd "${IDEM_SRC:-$ROOT}" && pwd)"
TAG="${1:-idem-node:latest}"
TARGET=x86_64-unknown-linux-gnu
TARGET_DIR="${CARGO_TARGET_DIR:-$SRC/target}/static"

echo "== building a static idem-node (release, $TARGET) from $SRC"
(cd "$SRC" && RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols" \
  cargo build --release --locked -p idem-node --target "$TARGET" --target-dir "$TARGET_DIR")

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$ROOT/deploy/docker/Dockerfile" "$TARGET_DIR/$TARGET/release/idem-node" "$context/"
echo "== docker build -t $TAG"
docker build -q -t "$TAG" "$context"
