# shellcheck shell=bash
# Shared helpers for the scripts in scripts/. Source it; do not execute it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Safe under `set -euo pipefail`. Defines:
#   repo_root              absolute path of the repository (symlinks resolved)
#   venv_dir, venv_bin, venv_python
#   host_python            python3 (or $PYTHON) used to create the venv; set on first use
#   die MSG...             print "<script>: error: MSG" to stderr and exit 1
#   log MSG...             print "<script>: MSG" to stderr
#   ensure_venv            create .venv and install requirements.lock (hash-checked) when
#                          it or requirements.txt changed
#   free_port              print a free TCP port on 127.0.0.1
#   wait_for_http URL SECONDS [PID]
#                          wait until URL gives any HTTP answer; fail on timeout
#                          (or as soon as process PID, if given, has exited)
#   pid_alive PID          true while PID runs (a zombie counts as gone)
#   stop_pid PID [SECONDS] SIGTERM, wait up to SECONDS (default 10), then SIGKILL
#   on_exit CMD            run CMD (a string, eval'd) when the script exits, also on
#                          Ctrl-C/SIGTERM; last registered runs first. Use it
#                          instead of `trap ... EXIT`, which would replace it.
#   start_emulator [PORT] [LOGFILE]
#                          start scripts/emulator.py in the background (free port
#                          if PORT is empty), wait for it, and stop it on exit;
#                          sets emulator_pid, emulator_port, emulator_url.
#   emulator_env URL       export AWS_ENDPOINT_URL=URL and dummy credentials/region
#                          (keeps values already set, except AWS_ENDPOINT_URL)
#   aws_local ARGS...      .venv/bin/aws with --endpoint-url $AWS_ENDPOINT_URL: AWS
#                          CLI v1 ignores AWS_ENDPOINT_URL for sqs (it forces
#                          queue.amazonaws.com & co. unless --endpoint-url is given)
#   ensure_client_js       npm ci in client-js/ when node_modules is missing or older
#                          than package-lock.json
#   ensure_root_npm        the same in the repository root (osls, the IAM evaluator)
#   cargo_target_dir       print cargo's target directory ($CARGO_TARGET_DIR or target/)
#   sqs_push_bin           build the `sqs-push` CLI (crates/cli) if needed and print its
#                          path; $SQS_PUSH_BIN, when set, is used as is (no build)

if [[ -n "${_sqs_push_common_sh_loaded:-}" ]]; then
    return 0
fi
_sqs_push_common_sh_loaded=1

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
venv_dir="$repo_root/.venv"
venv_bin="$venv_dir/bin"
venv_python="$venv_bin/python"

die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

log() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# Sets host_python: the interpreter that creates the venv and runs the small
# helpers below ($PYTHON, else python3; 3.10 or newer).
host_python=""
_resolve_host_python() {
    [[ -n "$host_python" ]] && return 0
    local py="${PYTHON:-python3}"
    command -v "$py" >/dev/null 2>&1 ||
        die "$py not found; install Python 3.10 or newer (or set PYTHON=/path/to/python3)"
    "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
        die "$py is Python $("$py" -c 'import platform; print(platform.python_version())'); 3.10 or newer is needed"
    host_python="$py"
}

# Create $repo_root/.venv if needed and install requirements.lock into it, every file checked
# against the lock's sha256 hashes (pip --require-hashes), but only when requirements.txt,
# requirements.lock (or the venv's Python) changed since the last successful install. The
# lock must pin what requirements.txt pins; regenerate it as its header says. Quiet when there
# is nothing to do; the pip log is kept in .venv/pip-install.log and its tail is shown on
# failure.
ensure_venv() {
    local req="$repo_root/requirements.txt"
    local lock="$repo_root/requirements.lock"
    local stamp="$venv_dir/.requirements.sha256"
    local pip_log="$venv_dir/pip-install.log"
    [[ -f "$req" ]] || die "missing $req"
    [[ -f "$lock" ]] || die "missing $lock (generate it as requirements.txt says)"

    _resolve_host_python
    local py="$host_python" want have=""
    # The stamp: both files' hash and the Python version. Fails (exit 3) when the lock does
    # not pin exactly what requirements.txt pins.
    local rc=0
    want="$("$py" - "$req" "$lock" <<'PY'
import hashlib, platform, re, sys

def pins(path):
    found = {}
    for line in open(path, encoding="utf-8"):
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s\\;#]+)", line)
        if match:
            found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return found

wanted, locked = pins(sys.argv[1]), pins(sys.argv[2])
stale = [f"{name}=={version}" for name, version in wanted.items() if locked.get(name) != version]
if stale:
    print("requirements.lock does not pin " + ", ".join(stale), file=sys.stderr)
    sys.exit(3)
digest = hashlib.sha256()
for path in sys.argv[1:]:
    digest.update(open(path, "rb").read())
print(digest.hexdigest(), platform.python_version())
PY
)" || rc=$?
    ((rc == 0)) || die "requirements.lock is out of date with requirements.txt; regenerate it (its header says how)"

    # Fast path: stamp matches and the venv's interpreter still runs.
    if [[ -f "$stamp" ]] && [[ -x "$venv_python" ]] && "$venv_python" -c '' 2>/dev/null; then
        have="$(<"$stamp")"
        [[ "$have" == "$want" ]] && return 0
    fi

    mkdir -p "$venv_dir"
    # Serialise concurrent callers (e.g. scripts/dev and scripts/test started together).
    local lock_fd=""
    if command -v flock >/dev/null 2>&1; then
        exec {lock_fd}>"$venv_dir/.install.lock"
        flock "$lock_fd"
        # Someone else may have finished the install while we waited.
        if [[ -f "$stamp" ]] && [[ "$(<"$stamp")" == "$want" ]] && "$venv_python" -c '' 2>/dev/null; then
            exec {lock_fd}>&-
            return 0
        fi
    fi

    if [[ -e "$venv_python" ]] && ! "$venv_python" -c '' 2>/dev/null; then
        log "the Python in .venv no longer runs; recreating .venv"
        find "$venv_dir" -mindepth 1 -maxdepth 1 ! -name .install.lock -exec rm -rf {} +
    fi
    if [[ ! -x "$venv_python" ]]; then
        if ! "$py" -m venv "$venv_dir" >"$venv_dir/venv-create.log" 2>&1; then
            cat "$venv_dir/venv-create.log" >&2
            die "could not create $venv_dir with '$py -m venv' (on Debian/Ubuntu: apt-get install python3-venv)"
        fi
        rm -f "$venv_dir/venv-create.log"
    fi

    rm -f "$stamp"
    log "installing Python requirements into .venv from requirements.lock (first run or a requirements file changed; may take a minute)"
    # --no-deps: the lock lists every package; a dependency it misses is an error, not a
    # download of whatever version is newest today.
    if ! "$venv_python" -m pip install --disable-pip-version-check --no-input \
        --require-hashes --no-deps -r "$lock" >"$pip_log" 2>&1; then
        tail -n 30 "$pip_log" >&2
        [[ -n "$lock_fd" ]] && exec {lock_fd}>&-
        die "pip install --require-hashes -r requirements.lock failed; full log: $pip_log"
    fi
    if ! "$venv_python" -m pip check >>"$pip_log" 2>&1; then
        tail -n 10 "$pip_log" >&2
        [[ -n "$lock_fd" ]] && exec {lock_fd}>&-
        die "pip check: requirements.lock misses a dependency; regenerate it (its header says how)"
    fi
    printf '%s\n' "$want" >"$stamp.tmp" && mv -f "$stamp.tmp" "$stamp"
    [[ -n "$lock_fd" ]] && exec {lock_fd}>&-
    log "Python requirements installed"
    return 0
}

# Print a TCP port that is free on 127.0.0.1 right now.
free_port() {
    _resolve_host_python
    "$host_python" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
'
}

# True while process PID exists and is not a zombie.
pid_alive() {
    local pid="$1" stat
    if [[ -r "/proc/$pid/stat" ]]; then
        { stat="$(<"/proc/$pid/stat")"; } 2>/dev/null || return 1
        stat="${stat##*) }"
        # Explicit statuses: a bare `return` inside an EXIT trap would return
        # the status of the command that triggered the trap.
        if [[ "${stat:0:1}" == "Z" ]]; then return 1; fi
        return 0
    fi
    if kill -0 "$pid" 2>/dev/null; then return 0; fi
    return 1
}

# wait_for_http URL SECONDS [PID]: poll URL until any HTTP status comes back.
# With PID, give up as soon as that process is gone.
wait_for_http() {
    local url="${1:?wait_for_http URL SECONDS [PID]}" secs="${2:?wait_for_http URL SECONDS [PID]}"
    local pid="${3:-}"
    local rc=0
    _resolve_host_python
    "$host_python" - "$url" "$secs" "$pid" <<'PY' || rc=$?
import os, sys, time, urllib.error, urllib.request

url, secs, pid = sys.argv[1], float(sys.argv[2]), sys.argv[3]

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(int(pid), 0)
            return True
        except OSError:
            return False

deadline = time.monotonic() + secs
while True:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)  # any HTTP status is an answer
    except Exception:
        pass
    if pid and not alive(pid):
        sys.exit(3)
    if time.monotonic() >= deadline:
        sys.exit(2)
    time.sleep(0.1)
PY
    case "$rc" in
        0) return 0 ;;
        2) log "error: no HTTP answer from $url after ${secs}s" ;;
        3) log "error: process $pid exited before $url answered" ;;
        *) log "error: wait_for_http $url failed (exit $rc)" ;;
    esac
    return 1
}

# stop_pid PID [SECONDS]: SIGTERM, wait, then SIGKILL. Reaps PID if it is our child.
stop_pid() {
    local pid="${1:?stop_pid PID [SECONDS]}" secs="${2:-10}" i
    pid_alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        log "process $pid ignored SIGTERM for ${secs}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    return 0
}

_on_exit_cmds=()
_run_on_exit() {
    local i
    for ((i = ${#_on_exit_cmds[@]} - 1; i >= 0; i--)); do
        eval "${_on_exit_cmds[i]}" || true
    done
    _on_exit_cmds=()
}

# on_exit CMD: run CMD when the script ends, however it ends.
on_exit() {
    if ((${#_on_exit_cmds[@]} == 0)); then
        trap _run_on_exit EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
    fi
    _on_exit_cmds+=("$1")
}

# start_emulator [PORT] [LOGFILE]: background emulator for scripts that need one.
# Sets emulator_pid, emulator_port, emulator_url; stops it when the script exits.
start_emulator() {
    local port="${1:-}" logfile="${2:-/dev/null}"
    ensure_venv
    [[ -n "$port" ]] || port="$(free_port)"
    "$venv_python" "$repo_root/scripts/emulator.py" --port "$port" >"$logfile" 2>&1 &
    emulator_pid=$!
    # shellcheck disable=SC2034  # for callers
    emulator_port="$port"
    emulator_url="http://127.0.0.1:$port"
    on_exit "stop_pid $emulator_pid"
    if ! wait_for_http "$emulator_url/" 60 "$emulator_pid"; then
        [[ "$logfile" != /dev/null ]] && tail -n 20 "$logfile" >&2
        die "the emulator did not start on port $port"
    fi
}

# emulator_env URL: point AWS SDKs and the aws CLI at the emulator.
emulator_env() {
    export AWS_ENDPOINT_URL="${1:?emulator_env URL}"
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
    export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
    export AWS_REGION="${AWS_REGION:-us-east-1}"
    export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
}

# aws_local ARGS...: the aws CLI from .venv, pointed at $AWS_ENDPOINT_URL.
aws_local() {
    [[ -n "${AWS_ENDPOINT_URL:-}" ]] || die "aws_local: AWS_ENDPOINT_URL is not set (see emulator_env)"
    "$venv_bin/aws" --endpoint-url "$AWS_ENDPOINT_URL" "$@"
}

# ensure_client_js: install client-js's npm packages (npm ci) unless they are up to date.
ensure_client_js() {
    local dir="$repo_root/client-js"
    command -v npm >/dev/null 2>&1 || die "npm not found; install Node.js 20 or newer"
    if [[ ! -d "$dir/node_modules" ]] || [[ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
        log "installing client-js packages (npm ci)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci in client-js failed"
    fi
}

# ensure_root_npm: install the root package.json's packages (npm ci: the deployment framework
# and the IAM check's evaluator) unless they are up to date.
ensure_root_npm() {
    command -v npm >/dev/null 2>&1 || die "npm not found; install Node.js 20.19 or newer"
    if [[ ! -d "$repo_root/node_modules" ]] ||
        [[ "$repo_root/package-lock.json" -nt "$repo_root/node_modules/.package-lock.json" ]]; then
        log "installing the root npm packages (npm ci)"
        (cd "$repo_root" && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci in the repository root failed"
    fi
}

# cargo_target_dir: cargo's output directory, absolute. A relative CARGO_TARGET_DIR
# is taken from the repository root, where these scripts run cargo.
cargo_target_dir() {
    local dir="${CARGO_TARGET_DIR:-$repo_root/target}"
    [[ "$dir" == /* ]] || dir="$repo_root/$dir"
    printf '%s\n' "$dir"
}

# sqs_push_bin: path of the `sqs-push` CLI, built (incrementally, quietly) first.
sqs_push_bin() {
    if [[ -n "${SQS_PUSH_BIN:-}" ]]; then
        [[ -x "$SQS_PUSH_BIN" ]] || die "SQS_PUSH_BIN=$SQS_PUSH_BIN is not an executable"
        printf '%s\n' "$SQS_PUSH_BIN"
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found; install Rust (https://rustup.rs) or set SQS_PUSH_BIN"
    local bin
    bin="$(cargo_target_dir)/debug/sqs-push"
    [[ -x "$bin" ]] || log "building the sqs-push CLI (first build takes a few minutes)"
    (cd "$repo_root" && cargo build --quiet -p sqs-push-cli --bin sqs-push) >&2 ||
        die "cargo build -p sqs-push-cli failed"
    printf '%s\n' "$bin"
}
