# docs/examples/lib.bash: helpers the example scripts source (not itself an
# example). An example prints exactly the block its page shows; these keep
# each script short: echo a command as `$ dgram ...` and run it, start a side
# in the background, wait for a line with a deadline, and kill what was
# started when the script ends, however it ends.
# shellcheck shell=bash

DOCS_PIDS=()
DOCS_TMP=$(mktemp -d)

docs_cleanup() {
    local pid
    for pid in "${DOCS_PIDS[@]}"; do
        kill -CONT "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$DOCS_TMP"
}
trap docs_cleanup EXIT

# show CMD...: print `$ CMD` (quoted as a shell would need it) and run it,
# stderr merged into stdout as a terminal shows both.
show() {
    echo "\$ $(quote "$@")"
    "$@" 2>&1
}

# quote WORD...: the words as one command line, quoted only where needed.
quote() {
    local out=() word safe='^[][A-Za-z0-9_./:@%+=,-]+$'
    for word in "$@"; do
        if [[ $word =~ $safe ]]; then
            out+=("$word")
        else
            out+=("'${word//\'/\'\\\'\'}'")
        fi
    done
    echo "${out[*]}"
}

# background NAME CMD...: run CMD with stdin from the FIFO $DOCS_TMP/NAME.in
# (kept open, so the side reads until close_input NAME) and stdout and
# stderr into $DOCS_TMP/NAME.out; its pid is remembered for the cleanup.
background() {
    local name=$1
    shift
    mkfifo "$DOCS_TMP/$name.in"
    "$@" <"$DOCS_TMP/$name.in" >"$DOCS_TMP/$name.out" 2>&1 &
    DOCS_PIDS+=($!)
    eval "exec {fd_$name}>\"\$DOCS_TMP/$name.in\""
    eval "echo \$! > \"\$DOCS_TMP/$name.pid\""
}

# pid NAME: the pid of a side started by background.
pid() { cat "$DOCS_TMP/$1.pid"; }

# type_line NAME TEXT: one line on the side's stdin.
type_line() {
    local fd="fd_$1"
    printf '%s\n' "$2" >&"${!fd}"
}

# close_input NAME: end of the side's input (Ctrl-D).
close_input() {
    local fd="fd_$1"
    eval "exec ${!fd}>&-"
}

# wait_for NAME REGEX [SECONDS]: until the side's output has a line matching
# REGEX (default 5 s; a failure after that, with what it printed).
wait_for() {
    local name=$1 regex=$2 limit=${3:-5} i
    for ((i = 0; i < limit * 50; i++)); do
        if grep -qE -- "$regex" "$DOCS_TMP/$name.out" 2>/dev/null; then
            return 0
        fi
        sleep 0.02
    done
    echo "example: $name never printed /$regex/ within $limit s; it printed:" >&2
    cat "$DOCS_TMP/$name.out" >&2
    exit 1
}

# finish NAME [SECONDS]: wait until the side exits (default 5 s; else kill
# it and fail).
finish() {
    local name=$1 limit=${2:-5} p i
    p=$(pid "$name")
    for ((i = 0; i < limit * 50; i++)); do
        if ! kill -0 "$p" 2>/dev/null; then
            wait "$p" 2>/dev/null || true
            return 0
        fi
        sleep 0.02
    done
    echo "example: $name did not end within $limit s; it printed:" >&2
    cat "$DOCS_TMP/$name.out" >&2
    exit 1
}

# output NAME: what the side printed.
output() { cat "$DOCS_TMP/$1.out"; }
