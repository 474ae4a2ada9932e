#!/bin/bash
# Runs every bad input of ARCHITECTURE.md's "Bad input" table in a fresh sealed HOME and prints what the
# user sees (exit code, stderr, stdout). Usage: bench/bad-input.sh [BIN_DIR] (default target/release,
# built with --features test-fakes by shell/bench).
B=${1:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
REPO=$(cd "$(dirname "$0")/.." && pwd)
ALL=$(mktemp -d "${TMPDIR:-/tmp}/hs-bad.XXXXXX")
trap 'rm -rf "$ALL"' EXIT
fresh() {
  W=$(mktemp -d "$ALL/case.XXXXXX"); export HOME=$W/home; mkdir -p $HOME/.codex
  export XDG_CONFIG_HOME=$HOME/.config XDG_STATE_HOME=$HOME/.local/state PATH=$B:/usr/bin:/bin TZ=UTC LANG=C.UTF-8
  unset CODEX_HOME CODEX_HOTSWAP_REAL_CODEX
  for a in acc1 acc2; do hs-vault add $a >/dev/null; python3 -c "
import sys; sys.path.insert(0,'$REPO/bench'); import bench
open('$HOME/.codex-$a/auth.json','w').write(bench.fake_auth_json('$a'))"; chmod 600 $HOME/.codex-$a/auth.json; done
  C=$XDG_CONFIG_HOME/codex-hotswap; S=$XDG_STATE_HOME/codex-hotswap
  mkdir -p $S; hs-rotate status >/dev/null
}
show() { # title; command...
  local t=$1; shift
  "$@" > $W/out 2> $W/err; code=$?
  printf '### %s\n$ %s\nexit %s\nstderr: %s\nstdout: %s\n\n' "$t" "$*" "$code" "$(head -3 $W/err | sed "s|$W|<tmp>|g")" "$(head -4 $W/out | cut -c1-200 | sed "s|$W|<tmp>|g")"
}
fresh; printf '{"version":1,"accounts":[{"name":"acc1",' > $C/accounts.json
show "accounts.json truncated" hs-vault list
show "accounts.json truncated (other tool)" hs-rotate status
fresh; printf '{"version":1,"accounts":[}' > $C/accounts.json
show "accounts.json corrupt" hs-vault add acc3
fresh; sed -i 's/"version": *1/"version":99/' $C/accounts.json
show "accounts.json unknown version" hs-vault list
fresh; printf 'garbage' > $S/rotation.json
show "rotation.json corrupt" hs-rotate next
fresh; printf '{"version":7,"current":"acc1","accounts":{}}' > $S/rotation.json
show "rotation.json unknown version" hs-rotate status
fresh; printf '{"version":1,"current":"ghost","accounts":{}}' > $S/rotation.json
show "rotation.json names an unknown current account" hs-rotate current
fresh; printf '{"version":1,"default_cooldown":"1h",' > $C/config.json
show "config.json truncated" hs-config show
show "config.json truncated: hs-run" hs-run --codex /bin/true -- exec x
show "config.json truncated: passthrough still works" hs-run --codex /bin/echo -- --version
fresh; printf '{"version":1,"polcy":"order"}' > $C/config.json
show "config.json unknown field (typo)" hs-rotate next
fresh; printf '{"version":2}' > $C/config.json
show "config.json unknown version" hs-config get policy
fresh
show "unknown account" hs-rotate use nope
show "unknown account (hs-run)" hs-run --codex /bin/true --account nope -- exec x
show "unknown account (exhaust)" hs-rotate exhaust nope --for 1h
show "bad account name" hs-vault add ../x
fresh; rm -rf $HOME/.codex-acc1
show "missing vault: list" hs-vault list
show "missing vault: hs-run" hs-run --codex /bin/true --account acc1 -- exec x
fresh; rm $HOME/.codex-acc1/auth.json
show "vault without login: hs-run" hs-run --codex /bin/true --account acc1 -- exec x
fresh; printf '{"auth_mode":"chatgpt","tokens":{' > $HOME/.codex-acc1/auth.json
show "corrupt vault auth.json: show" hs-vault show acc1
fresh; export PATH=$B:/usr/bin:/bin
show "codex not installed" hs-run -- exec x
show "--codex not executable" hs-run --codex /nonexistent -- exec x
fresh; mkdir -p $W/lone; cp $B/hs-run $W/lone/; export PATH=/usr/bin:/bin
show "sibling tool missing" $W/lone/hs-run --codex /bin/true -- exec x
fresh
show "bad duration" hs-rotate exhaust acc1 --for 2x
show "bad time" hs-rotate exhaust acc1 --until tomorrow
show "bad duration (config)" hs-config set default_cooldown soon
show "bad policy (config)" hs-config set policy random
show "no real codex installed" hs-config codex
show "real_codex names a missing file" bash -c 'hs-config set real_codex /nowhere/codex >/dev/null; hs-config codex'
show "garbage limit event" bash -c 'echo "{\"type\":\"limit\",\"kind\":42}" | hs-rotate exhaust --event -'
show "no event on stdin" bash -c 'echo hello | hs-rotate exhaust --event -'
show "garbage on hs-detect stdin" bash -c 'head -c 1000000 /dev/urandom | hs-detect'
show "unknown hs-detect format" hs-detect --format xml
show "hs-detect size 1x80 (known bug)" bash -c "hs-detect --format tui --size 1x80 < $REPO/tests/fixtures/detect/real/tui-long-answer-30x100.bin"
fresh
show "failed state write (file size limit)" bash -c 'ulimit -f 0; trap "" XFSZ; hs-rotate exhaust acc1 --for 1h'
show "failed registry write (file size limit)" bash -c 'ulimit -f 0; trap "" XFSZ; hs-vault add acc3'
fresh; chmod 500 $S
show "state folder read-only (root: without its override capabilities)" setpriv --bounding-set=-dac_override,-dac_read_search -- hs-rotate exhaust acc1 --for 1h
chmod 700 $S
fresh
hs-overlay create --account acc1 --owner-pid 1 > $W/ov.json 2>/dev/null; id=$(python3 -c "import json;print(json.load(open('$W/ov.json'))['id'])")
printf 'nonsense' > $S/runtime/$id/.hs-overlay.json
show "overlay metadata corrupt: list" hs-overlay list
show "overlay metadata corrupt: gc" hs-overlay gc
echo "runtime after gc: [$(ls $S/runtime)]"
fresh; mkdir -p $S/runtime; chmod 700 $S/runtime; ln -s $HOME/.codex-acc1 $S/runtime/20261124-000000-evil1; ln -s $HOME/.codex $S/runtime/20261124-000000-evil2
show "symlink in the runtime root into a vault / the shared store: gc" hs-overlay gc
echo "runtime after gc: [$(ls $S/runtime)]; vault: [$(ls $HOME/.codex-acc1)]; shared store: [$(ls -A $HOME/.codex)]"
show "symlink in the runtime root: destroy" hs-overlay destroy 20261124-000000-evil1
fresh; mkdir -p $W/elsewhere $S; ln -s $W/elsewhere $S/runtime
show "runtime root is a symlink" hs-overlay create --account acc1
show "runtime root is a symlink: gc" hs-overlay gc
fresh; hs-rotate exhaust acc1 --for 1h >/dev/null; printf '{"version":1,"current":"acc1","accounts":{"acc1":{"exhausted_until":"not a time"}}}' > $S/rotation.json
show "rotation.json with a bad time" hs-rotate status
fresh; printf '{"type":"swap"\nnot json\n' >> $S/events.jsonl
show "events.jsonl damaged: log" $REPO/shell/codex-hotswap log
