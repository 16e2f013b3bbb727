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

# pgvector: Debian 13's source package (Debian 12 packages none).
PGVECTOR_SUITE=trixie
PGVECTOR_DEB_VERSION=0.8.0-1
PGVECTOR_ORIG=pgvector_0.8.0.orig.tar.gz
PGVECTOR_ORIG_SHA256=867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0

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

# The Debian mirror this system already uses (first URI serving its own release),
# read from /etc/apt/sources.list(.d). Nothing is hard-coded.
debian_mirror() {
    local codename f
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || return 1
    {
        # One-line format: deb [options] URI SUITE COMPONENTS...
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            awk -v c="$codename" '
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == c) print $i
                }' "$f"
        done
        # deb822 format (*.sources): stanzas of Types/URIs/Suites/Enabled.
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            awk -v c="$codename" '
                function flush() {
                    if (index(" " types " ", " deb ") && enabled != "no" &&
                        index(" " suites " ", " " c " ") && uri != "") print uri
                    types = suites = uri = enabled = ""
                }
                /^[ \t]*$/ { flush(); next }
                /^[ \t]*#/ { next }
                tolower($1) == "types:"   { $1 = ""; types = $0 }
                tolower($1) == "uris:"    { uri = $2 }
                tolower($1) == "suites:"  { $1 = ""; suites = $0 }
                tolower($1) == "enabled:" { enabled = tolower($2) }
                END { flush() }' "$f"
        done
    } | sed -n '1p'
}

# fetch_pgvector_source DEST: pgvector's source tarball, fetched with apt from
# Debian's source package and verified against the pinned sum and the .dsc,
# copied to DEST (scripts/setup builds it; scripts/test-stack's pgvector image too).
fetch_pgvector_source() {
    local dest=$1
    local mirror
    mirror=$(debian_mirror) || true
    [ -n "$mirror" ] || die "could not find the Debian mirror in /etc/apt/sources.list(.d)"
    info "fetching source package pgvector $PGVECTOR_DEB_VERSION ($PGVECTOR_SUITE) with apt"

    # A private apt state: only a deb-src line for the newer suite; the system's
    # own sources, lists and caches stay untouched.
    local tmp
    new_tmpdir tmp
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/src"
    local signed_by=""
    [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] &&
        signed_by="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    echo "deb-src ${signed_by}${mirror} ${PGVECTOR_SUITE} main" >"$tmp/sources.list"
    local apt_opts=(
        -o "Dir::Etc::SourceList=$tmp/sources.list"
        -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$tmp/lists"
        -o "Dir::Cache=$tmp/cache"
    )
    # apt downloads as its unprivileged _apt user when that user can write there.
    if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
        chmod 755 "$tmp"
        chown _apt "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/src"
    fi
    as_root apt-get "${apt_opts[@]}" update -qq
    (cd "$tmp/src" && as_root apt-get "${apt_opts[@]}" source --download-only -qq "pgvector=$PGVECTOR_DEB_VERSION")

    # Verify: the tarball matches both the pinned sum and the (apt-verified) .dsc.
    local src="$tmp/src/$PGVECTOR_ORIG" dsc="$tmp/src/pgvector_$PGVECTOR_DEB_VERSION.dsc"
    [ -f "$src" ] && [ -f "$dsc" ] || die "apt-get source did not produce $PGVECTOR_ORIG"
    local sum
    sum=$(sha256_of "$src")
    [ "$sum" = "$PGVECTOR_ORIG_SHA256" ] || die "$PGVECTOR_ORIG: sha256 $sum, expected $PGVECTOR_ORIG_SHA256"
    grep -q "^ $sum [0-9]* $PGVECTOR_ORIG\$" "$dsc" || die "$PGVECTOR_ORIG: sha256 not listed in $(basename "$dsc")"
    info "verified $PGVECTOR_ORIG (sha256 $sum)"
    cp "$src" "$dest"
}
