#!/usr/bin/env bash
# Build the `idem-node:latest` image: a statically linked release binary
# (glibc, crt-static) in an image FROM scratch. Usage: deploy/docker/build.sh [TAG]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TAG="${1:-idem-node:latest}"
TARGET=x86_64-unknown-linux-gnu

echo "== building a static idem-node (release, $TARGET)"
(cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols" \
  cargo build --release --locked -p idem-node --target "$TARGET" --target-dir "$ROOT/target/static")

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$ROOT/deploy/docker/Dockerfile" "$ROOT/target/static/$TARGET/release/idem-node" "$context/"
echo "== docker build -t $TAG"
docker build -q -t "$TAG" "$context"
