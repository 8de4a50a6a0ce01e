#!/usr/bin/env bash
# The whole test suite: unit, integration (real PostgreSQL + pgvector, Redis, model).
set -u
cd "$(dirname "$0")/.."
bash scripts/ensure-redis.sh || exit 1
bash scripts/ensure-chromium.sh || exit 1
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "ERROR: pytest collected no tests; that is a failure, not a pass." >&2
  exit 1
fi
exit "$status"
