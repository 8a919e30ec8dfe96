#!/usr/bin/env bash
# Try the container deployment end to end: the `smoke` test of test.sh (build
# the image, claim, complete, read through another node, kill the leader's
# container, SIGTERM every container and start them again with every record
# kept). Kept for the habit; test.sh runs it with the others.
#   deploy/docker/smoke.sh [--no-build]
exec "$(dirname "${BASH_SOURCE[0]}")/test.sh" "$@" smoke
