#!/usr/bin/env bash
# A walk-through against the built-in sandbox marketplaces: no credentials, no network.
# Run from an empty folder with marketsync installed:  bash /path/to/examples/try-the-sandbox.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# 1. Start both emulated marketplaces (demo store) and keep their .env lines.
marketsync sandbox --bricklink-port 0 --brickowl-port 0 > sandbox.env &
sandbox_pid=$!
trap 'kill $sandbox_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q BRICKOWL_API_URL sandbox.env 2>/dev/null && break; sleep 0.1; done
set -a; . ./sandbox.env; set +a

# 2. Your stock, then the first sync of both marketplaces.
marketsync inventory import "$here/inventory.csv"
marketsync sync || true            # the demo store has unmatched lines: they are reported on stderr

# 3. What you would look at.
marketsync orders --open -n 10
marketsync status
marketsync inventory list --reserved | head -15

# 4. A second sync costs one API call per marketplace and changes nothing.
marketsync sync
marketsync reserve --check && echo "ledger invariants hold"
