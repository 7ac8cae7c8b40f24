#!/usr/bin/env bash
# The demo: start llmd on a private socket, talk to it with llmctl, stop it cleanly.
set -euo pipefail
bin=${1:?usage: demo.sh BINDIR}
work=$(mktemp -d /tmp/llmd-demo-XXXXXX)
daemon_pid=
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

socket=$work/llmd.sock
: > "$work/llmd.conf"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
fail() { printf 'demo: %s\n' "$*" >&2; exit 1; }

step "llmd --version"
"$bin/llmd" --version

# Its own state directory too: the demo's sessions and ledger are not the user's (nor, as
# root, the system instance's in /var/lib/llmd), and every demo starts from nothing.
step "llmd --socket $socket --state-dir $work/state &"
"$bin/llmd" --socket "$socket" --config "$work/llmd.conf" --state-dir "$work/state" &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.05; done

step "llmctl status"
"$bin/llmctl" status --socket "$socket"

step "llmctl ping"
"$bin/llmctl" ping --socket "$socket"

step "llmctl status --json"
"$bin/llmctl" status --json --socket "$socket"

# With OPENAI_API_KEY set, llmd calls OpenAI; without, its offline 'fake' provider answers.
step "llmctl send 'Hi! I need a birthday bouquet for my mother.'"
"$bin/llmctl" send --socket "$socket" "Hi! I need a birthday bouquet for my mother."

step "llmctl send --json -p fake 'Do you remember why I came?'"
"$bin/llmctl" send --socket "$socket" --json -p fake "Do you remember why I came?"

# The flower-shop conversation of LangChain's memory tutorial under each memory strategy,
# inside a usage scope: get_openai_callback for a whole command.
step "llmctl scope -- llmctl compare-memory -p fake --svg memory-comparison.svg   # the chart goes to ./memory-comparison.svg"
"$bin/llmctl" scope --socket "$socket" -- "$bin/llmctl" compare-memory --socket "$socket" -p fake --svg memory-comparison.svg

step "llmctl usage --by session   # the ledger: every call, its tokens and cost"
"$bin/llmctl" usage --socket "$socket" --by session

step "llmctl tokens -m gpt-4o 'Do you remember why I came yesterday?'"
"$bin/llmctl" tokens --socket "$socket" -m gpt-4o "Do you remember why I came yesterday?"

step "kill -TERM $daemon_pid   # graceful shutdown"
kill -TERM "$daemon_pid"
status=0
wait "$daemon_pid" || status=$?
daemon_pid=
echo "llmd exited with status $status; socket removed: $([ -e "$socket" ] && echo no || echo yes)"
[ "$status" -eq 0 ] || fail "llmd exited with status $status, not 0"
[ ! -e "$socket" ] || fail "llmd left its socket behind"

step "llmctl status   # no daemon now"
status=0
"$bin/llmctl" status --socket "$socket" || status=$?
echo "(exit status $status)"
[ "$status" -eq 69 ] || fail "llmctl status exited $status with no daemon, not 69 (EX_UNAVAILABLE)"
echo
echo "demo: every step passed"
