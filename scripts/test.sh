#!/usr/bin/env bash
# Runs every test of the project: Go (vet, race detector, a short fuzz of the
# minion answer decoder, the static build the Dockerfile makes) and Python
# (the Salt modules). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

# Fuzz budgets are counts of runs, not durations: with a duration, Go's
# fuzzing coordinator can report its own deadline as a failure on a busy
# machine (go.dev/issue/75804, fixed in Go 1.27).
echo "== fuzz the minion answer decoder (300 000 runs)"
go test -run '^$' -fuzz '^FuzzDecodeMinion$' -fuzztime 300000x ./triage

echo "== fuzz the parallel reading of saved evidence against the sequential one (15 000 runs)"
go test -run '^$' -fuzz '^FuzzReadParallel$' -fuzztime 15000x -fuzzminimizetime 10x ./triage

echo "== static build, as in the Dockerfile"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /dev/null ./cmd/sift

echo "== python tests of the Salt modules"
py=""
for candidate in python3 /usr/bin/python3; do
  if "$candidate" -c 'import pytest' 2>/dev/null; then py=$candidate; break; fi
done
if [ -z "$py" ]; then
  echo "pytest is missing: install it (Debian: apt-get install -y python3-pytest git) and run again" >&2
  exit 1
fi
"$py" -m pytest -q salt/tests
