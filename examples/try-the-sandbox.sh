#!/usr/bin/env bash
# "A day with the sandbox" from the README, end to end: no credentials, no network.
# Run it from an empty folder with marketsync installed:  bash /path/to/examples/try-the-sandbox.sh
#
# The README has you type the sandbox's commands into its terminal; this script plays that terminal
# through two named pipes instead. It waits on nothing but the sandbox's own output: its "sandbox
# running" line (printed once the .env lines are in sandbox.env), then one answer per command.
set -euo pipefail
examples="$(cd "$(dirname "$0")" && pwd)"

# --- terminal 1: both marketplaces on 127.0.0.1, seeded with the demo store --------------------
rm -f sandbox.in sandbox.out
mkfifo sandbox.in sandbox.out
marketsync sandbox --bricklink-port 0 --brickowl-port 0 > sandbox.env < sandbox.in 2> sandbox.out &
sandbox_pid=$!
stop_sandbox() {
    exec 3>&- 4<&-
    kill "$sandbox_pid" 2>/dev/null || true
    wait "$sandbox_pid" 2>/dev/null || true
    rm -f sandbox.in sandbox.out
}
trap stop_sandbox EXIT
exec 3> sandbox.in 4< sandbox.out
ready=""
until [[ $ready == "# sandbox running"* ]]; do  # the sandbox's own "ready" line: sandbox.env is complete
    read -r ready <&4
    echo "$ready"
done

in_sandbox() {  # type one command into the sandbox's terminal, print its one-line answer
    echo "sandbox> $*"
    echo "$*" >&3
    read -r answer <&4
    echo "$answer"
    case $answer in error:*) exit 1 ;; esac
}
run() { echo "$ $1"; eval "$1"; }  # show a command as the README has it, then run it

# --- terminal 2 ----------------------------------------------------------------------------------
run 'set -a; . ./sandbox.env; set +a'
run 'marketsync inventory import "$examples"/inventory.csv'
run 'marketsync sync --push && marketsync stock | grep E08'
in_sandbox order bricklink 3001 85 5 E08
run 'marketsync sync --push && marketsync stock | grep E08'
in_sandbox order brickowl 417962-50 2 E08
run 'marketsync sync --push && marketsync stock | grep E08'
in_sandbox status brickowl 7919586 Cancelled
run 'marketsync sync --push && marketsync stock | grep E08'
run 'marketsync inventory list --location E08'
run 'marketsync picklist --order bricklink:23216754'
run 'marketsync pick bricklink:23216754'
run 'marketsync orders --open --limit 3'
