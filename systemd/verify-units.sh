#!/bin/bash
# verify-units.sh BINDIR: check llmd's systemd units.
#
# Renders the .in templates with @bindir@ = BINDIR (which must hold the llmd
# binary: verify checks that ExecStart= and ExecReload= name executables),
# then:
#   1. creates the llmd user from llmd.sysusers in a scratch root, never on
#      this machine, and checks the entry;
#   2. runs `systemd-analyze verify` on the system units and, with
#      `--user`, on the user units; any output at all, warnings included, fails;
#      and checks that the man pages Documentation= names are in man/;
#   3. runs `systemd-analyze security --offline=true` on the system service,
#      prints the overall exposure line and fails above MAX_EXPOSURE_TENTHS.
#
# Quiet on success but for the exposure line. Exit status 0 when all passes,
# 1 when a check fails, 64 for bad usage.
#
# Deterministic: systemd-analyze runs with a clean environment and the C
# locale, and loads units only from the scratch directory and the
# distribution's unit directory, so nothing installed in /etc, /run or a home
# directory (an old llmd.service, a drop-in) takes part.

set -euo pipefail

# Exposure in tenths, as `systemd-analyze security --threshold=` takes it:
# 12 is the 1.2 these units reach. Lower it when the sandbox tightens; raise
# it only with a reason.
MAX_EXPOSURE_TENTHS=12

usage() {
    echo "usage: $0 BINDIR" >&2
    echo "  BINDIR: directory holding the llmd binary, substituted for @bindir@" >&2
    exit 64
}

fail() {
    echo "verify-units: $*" >&2
    exit 1
}

[[ $# -eq 1 ]] || usage
[[ -x $1/llmd && -f $1/llmd ]] || fail "$1/llmd: no such executable"
bindir=$(cd "$1" && pwd -P)
# ExecStart= would need quoting for these, and sed below escaping.
[[ $bindir != *[[:space:]\\\&\|]* ]] || fail "$bindir: unsupported characters in BINDIR"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found"
command -v systemd-sysusers >/dev/null || fail "systemd-sysusers not found"
command -v systemd-path >/dev/null || fail "systemd-path not found"
system_unit_dir=$(systemd-path systemd-system-unit)
user_unit_dir=$(systemd-path systemd-user-unit)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/llmd-verify-units.XXXXXX")
trap 'rm -rf -- "$scratch"' EXIT
mkdir -p "$scratch/system" "$scratch/user" "$scratch/runtime" "$scratch/root/etc"
chmod 0700 "$scratch/runtime"

# Runs systemd-analyze and friends without the caller's environment.
clean() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C SYSTEMD_COLORS=0 SYSTEMD_LOG_LEVEL=info "$@"
}

# render TEMPLATE OUTPUT
render() {
    sed "s|@bindir@|$bindir|g" "$here/$1" >"$scratch/$2"
    if grep -n '@[A-Za-z_]*@' "$scratch/$2" >&2; then
        fail "$1: placeholder left after substitution"
    fi
}
render llmd.service.in system/llmd.service
render llmd.socket.in system/llmd.socket
render llmd-http.socket.in system/llmd-http.socket
render user/llmd.service.in user/llmd.service
render user/llmd.socket.in user/llmd.socket
render user/llmd-http.socket.in user/llmd-http.socket

# 1. The user the units run as. The host need not have it: systemd-analyze
# verify does not resolve User=, Group=, SocketUser= or SocketGroup=.
if ! out=$(clean systemd-sysusers --root="$scratch/root" "$here/llmd.sysusers" 2>&1); then
    printf '%s\n' "$out" >&2
    fail "llmd.sysusers: systemd-sysusers failed"
fi
if unexpected=$(printf '%s\n' "$out" | grep -v -e '^$' -e "^Creating group 'llmd' with GID [0-9]*\.$" \
    -e "^Creating user 'llmd' (llmd LLM conversation daemon) with UID [0-9]* and GID [0-9]*\.$"); then
    printf '%s\n' "$unexpected" >&2
    fail "llmd.sysusers: unexpected output from systemd-sysusers"
fi
grep -q '^llmd:x:[0-9]*:[0-9]*:llmd LLM conversation daemon:/var/lib/llmd:' "$scratch/root/etc/passwd" ||
    fail "llmd.sysusers: no user llmd with home /var/lib/llmd"
grep -q '^llmd:x:[0-9]*:' "$scratch/root/etc/group" || fail "llmd.sysusers: no group llmd"

# 2. verify. --man=no: verify would ask man(1) for the pages Documentation=
# names, which are installed with the units, not where this runs; check
# instead that each is a page in this tree's man/. The user manager needs a
# runtime directory of its own even to load units offline.
for unit in "$scratch"/system/* "$scratch"/user/*; do
    while read -ra docs; do
        for doc in "${docs[@]}"; do
            if [[ $doc =~ ^man:([^()]+)\(([0-9])\)$ ]]; then
                page=${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
                [[ -f $here/../man/$page ]] || fail "${unit#"$scratch"/}: Documentation=$doc: no man/$page"
            fi
        done
    done < <(sed -n 's/^Documentation=//p' "$unit")
done
if ! out=$(clean SYSTEMD_UNIT_PATH="$scratch/system:$system_unit_dir" \
    systemd-analyze verify --man=no --generators=no \
    "$scratch/system/llmd.socket" "$scratch/system/llmd-http.socket" "$scratch/system/llmd.service" 2>&1) || [[ -n $out ]]; then
    printf '%s\n' "${out:-systemd-analyze verify failed without output}" >&2
    fail "system units: systemd-analyze verify is not clean"
fi
if ! out=$(clean SYSTEMD_UNIT_PATH="$scratch/user:$user_unit_dir" XDG_RUNTIME_DIR="$scratch/runtime" \
    systemd-analyze --user verify --man=no --generators=no \
    "$scratch/user/llmd.socket" "$scratch/user/llmd-http.socket" "$scratch/user/llmd.service" 2>&1) || [[ -n $out ]]; then
    printf '%s\n' "${out:-systemd-analyze --user verify failed without output}" >&2
    fail "user units: systemd-analyze --user verify is not clean"
fi

# 3. security.
status=0
out=$(clean SYSTEMD_UNIT_PATH="$scratch/system:$system_unit_dir" \
    systemd-analyze security --offline=true --no-pager --threshold="$MAX_EXPOSURE_TENTHS" \
    "$scratch/system/llmd.service" 2>"$scratch/security.err") || status=$?
score=$(printf '%s\n' "$out" | grep 'Overall exposure level for llmd.service:' || true)
if [[ -z $score || -s $scratch/security.err ]]; then
    printf '%s\n' "$out" >&2
    cat "$scratch/security.err" >&2
    fail "system llmd.service: systemd-analyze security failed"
fi
printf '%s\n' "$score"
if ((status != 0)); then
    # The rows that add to the exposure ("-" in the C locale).
    printf '%s\n' "$out" | grep '^- ' >&2 || printf '%s\n' "$out" >&2
    fail "system llmd.service: exposure above $((MAX_EXPOSURE_TENTHS / 10)).$((MAX_EXPOSURE_TENTHS % 10))"
fi
