#!/usr/bin/env bash
# Runs the jobs Worker's scheduled handler once against the local Workers
# state, as a Cron Trigger would (`make jobs`).
#   tools/run-jobs.sh PORT STATE_DIR
# A short-lived `wrangler dev` of the jobs Worker alone, on the same state
# as `make dev` (which may keep running): wrangler dev's trigger endpoint
# reaches only the first Worker of a session, and under `make dev` that is
# the front door. PORT is left to `make dev`.
set -euo pipefail
state=$2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -f functions/jobs/build/index.js ] || tools/build-worker.sh jobs --no-opt
free=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
log=$(mktemp)
registry=$(mktemp -d)
# Its own dev registry: this session must not take over `make dev`'s.
# Its own process group (set -m), stopped whole: wrangler and its workerd.
set -m
WRANGLER_REGISTRY_PATH=$registry node_modules/.bin/wrangler dev -c functions/jobs/wrangler.toml --ip 127.0.0.1 --port "$free" \
  --persist-to "$state" --show-interactive-dev-session=false >"$log" 2>&1 &
pid=$!
set +m
trap 'kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$registry"' EXIT
for _ in $(seq 1 240); do
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$free/" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.5
done
status=$(curl -sS --max-time 900 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$free/cdn-cgi/handler/scheduled?cron=*+*+*+*+*")
sleep 1
grep -F '"job":"retention"' "$log" || true
if [ "$status" != 200 ]; then
  echo "jobs: the scheduled handler failed (HTTP $status):" >&2
  cat "$log" >&2
  exit 1
fi
