# Shared helpers for the scripts in this folder. Source it, don't run it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck shell=bash disable=SC2034  # variables used by the sourcing scripts

# Repository root (the folder above scripts/).
ML_WORKERS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Everything the set-up downloads or builds lives outside the clone, so a fresh
# clone (CI) reuses it. Override with ML_WORKERS_CACHE, MODELS_DIR, CARGO_TARGET_DIR.
ML_WORKERS_CACHE="${ML_WORKERS_CACHE:-$HOME/.cache/ml-workers}"
ML_WORKERS_VENV="$ML_WORKERS_CACHE/venv"
MODELS_DIR="${MODELS_DIR:-$ML_WORKERS_CACHE/models}"

# Local services the tests talk to.
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
REDIS_PORT=6379
AMQP_PORT=5672
ML_WORKERS_DB=ml_workers
ML_WORKERS_TEST_DB=ml_workers_test
ML_WORKERS_DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$ML_WORKERS_DB"
ML_WORKERS_TEST_DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$ML_WORKERS_TEST_DB"
ML_WORKERS_BROKER_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f"
ML_WORKERS_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

# rustup's cargo may be missing from PATH in a non-login shell.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
export PATH

log() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || die "required command not found: $c"
    done
}

# Run a command as root (directly when we already are root).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for: $*"
    fi
}

# Seconds since the epoch, and a human "Ns" / "MmSSs" for a duration.
now_s() { date +%s; }
fmt_duration() {
    local s=$1
    if [ "$s" -ge 60 ]; then
        printf '%dm%02ds' $((s / 60)) $((s % 60))
    else
        printf '%ds' "$s"
    fi
}

# Is something listening on 127.0.0.1:PORT?
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# wait_until SECONDS DESCRIPTION CMD... : retry CMD once a second until it
# succeeds, for at most SECONDS.
wait_until() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${limit}s waiting for $what"
        sleep 1
    done
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Temporary folders, removed when the script exits (however it exits).
# Usage: new_tmpdir VAR [mktemp template]
ML_WORKERS_TMPDIRS=()
cleanup_tmpdirs() {
    local d
    for d in "${ML_WORKERS_TMPDIRS[@]+"${ML_WORKERS_TMPDIRS[@]}"}"; do
        rm -rf -- "$d"
    done
}
trap cleanup_tmpdirs EXIT
new_tmpdir() {
    local dir
    dir=$(mktemp -d ${2:+"$2"})
    ML_WORKERS_TMPDIRS+=("$dir")
    printf -v "$1" '%s' "$dir"
}

# psql against the project's PostgreSQL: quiet, unaligned, stop on errors.
psql_q() {
    PGOPTIONS='-c client_min_messages=warning' \
        psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -v ON_ERROR_STOP=1 -qtAX "$@"
}
