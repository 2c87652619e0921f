#!/usr/bin/env bash
# PinScope benchmark (`make bench`): times, in one run on the same large real trace,
#   trace.dat:  pinscope events --stat  vs  a C loop over libtracecmd (tracecmd_loop.c)
#                                       vs  trace-cmd report > /dev/null
#   kernel text: pinscope events --stat  vs  a Python regex script doing less work (regex_scan.py)
#   and, on both, pinscope analyze; for reference (no target) a C program that only finds the
#   text's events (text_scan.c), and the same program also following the text's pages on a second
#   thread (text_scan.c -p)
# checks that every tool sees the same number of events, and prints times, events/s, peak RSS, the
# ratios and PASS/FAIL against the targets (DESIGN.md "Performance").
#
# Usage: Benchmarks/run.sh [TRACE.dat [KERNEL_TEXT]]
#   default TRACE.dat: Benchmarks/.work/large.dat, captured on first use by capture-large.sh (needs
#   root and tracefs; the kernel text Benchmarks/.work/large.txt comes from the same buffer), else
#   the largest trace-v6.dat under ../shared/traces.
# Environment:
#   RUNS=3          timed runs per tool (best wall-clock time is reported; RSS is the peak)
#   PINSCOPE=path   benchmark this binary instead of building (swift build -c release)
#   TEXT_MIN_MB=100 a fallback kernel text smaller than this is concatenated up to it
#   BENCH_STRICT=1  exit 2 when a target fails (by default only errors and count mismatches fail)
#
# To add a benchmark (e.g. `pinscope analyze`): one `bench` line (what to run, how it counts events)
# and one `ratio` line (baseline vs subject, target) in the "benchmarks" section below.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
work=$here/.work
shared=$(cd "$root/.." && pwd)/shared/traces
RUNS=${RUNS:-3}
TEXT_MIN_MB=${TEXT_MIN_MB:-100}
run=$work/last-run        # each tool's output, stderr and RSS of the last run
mkdir -p "$work" "$run"

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }
mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.0f MB", b / 1048576 }'; }
for tool in cc pkg-config trace-cmd python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || die "missing $tool (make deps; apt-get install time for /usr/bin/time)"
done

# --- build -------------------------------------------------------------------------------------------
if [ -n "${PINSCOPE:-}" ]; then
    pinscope=$PINSCOPE
    say "using PINSCOPE=$pinscope (not building)"
else
    say "building: swift build -c release --product pinscope (waits if another build holds the lock)"
    if ! (cd "$root" && swift build -c release --product pinscope) >"$work/build.log" 2>&1; then
        grep -E 'error:' "$work/build.log" | head -5 >&2 || tail -5 "$work/build.log" >&2
        die "swift build failed (log: $work/build.log); retry later or set PINSCOPE=/path/to/pinscope"
    fi
    pinscope=$(cd "$root" && swift build -c release --show-bin-path)/pinscope
fi
[ -x "$pinscope" ] || die "no pinscope binary at $pinscope"
cc -O2 -o "$work/tracecmd_loop" "$here/tracecmd_loop.c" \
    $(pkg-config --cflags --libs libtracecmd libtraceevent) || die "cannot compile tracecmd_loop.c"
cc -O2 -pthread -o "$work/text_scan" "$here/text_scan.c" || die "cannot compile text_scan.c"

# --- inputs ------------------------------------------------------------------------------------------
has_convert() { local usage; usage=$(trace-cmd 2>&1 || true); grep -qE '^ *convert ' <<<"$usage"; }
text=""; text_note=""
if [ $# -ge 1 ]; then
    [ -f "$1" ] || die "no such file: $1"
    src=$1
    if has_convert; then   # the same events as v6 (uncompressed) and as v7 zstd
        say "converting $src to v6 and v7 zstd in $work"
        trace-cmd convert --file-version 6 --compression none -i "$src" -o "$work/input-v6.dat" >/dev/null 2>&1 \
            || die "trace-cmd convert (v6) failed on $src (Debian's trace-cmd cannot read zlib-compressed files: give its v6 twin)"
        trace-cmd convert --file-version 7 --compression zstd -i "$src" -o "$work/input-v7zstd.dat" >/dev/null 2>&1 \
            || die "trace-cmd convert (v7 zstd) failed on $src"
        dat=$work/input-v6.dat; dat7=$work/input-v7zstd.dat
    else
        dat=$src; dat7=""
    fi
    dat_note="from $src"
    [ $# -ge 2 ] && { text=$2; text_note="given"; }
else
    if [ ! -f "$work/large.dat" ] || [ ! -f "$work/large.txt" ]; then
        say "no large capture in $work yet: running capture-large.sh (about 30 s)"
        rc=0; "$here/capture-large.sh" "$work" || rc=$?
        [ $rc = 0 ] || [ $rc = 3 ] || die "capture-large.sh failed ($rc)"
    fi
    if [ -f "$work/large.dat" ] && [ -f "$work/large.txt" ]; then
        dat=$work/large.dat; dat7=$work/large-v7.dat; text=$work/large.txt
        dat_note="captured by capture-large.sh"; text_note="kernel text of the same capture"
        [ -f "$dat7" ] || dat7=""
    else
        dat=$(ls -S "$shared"/*/trace-v6.dat 2>/dev/null | head -1) || true
        [ -n "$dat" ] || die "no trace: give a trace.dat, or allow capture-large.sh, or provide $shared"
        dat7=$(dirname "$dat")/trace-v7zstd.dat; [ -f "$dat7" ] || dat7=""
        dat_note="SMALL fallback (no capture possible): timings are short and noisy"
    fi
fi
if [ -z "$text" ]; then   # a real kernel text (not trace-cmd report output), long enough to time
    base=$(ls -S "$shared"/*/trace_raw.txt "$shared"/host-odirect-mmap/trace.txt 2>/dev/null | head -1) || true
    [ -n "$base" ] || die "no kernel text file found under $shared"
    size=$(stat -c %s "$base"); copies=$(( (TEXT_MIN_MB * 1048576 + size - 1) / size ))
    text=$work/text-x$copies.txt
    if [ ! -f "$text" ] || [ "$(stat -c %s "$text")" != $((size * copies)) ]; then
        for ((i = 0; i < copies; i++)); do cat "$base"; done >"$text"
    fi
    text_note="$base concatenated $copies times (timestamps restart in each copy)"
fi
[ -f "$text" ] || die "no such file: $text"

# --- measuring ---------------------------------------------------------------------------------------
# Every tool's stdout goes to /dev/null in timed runs. Before them, one untimed run per tool (which
# also warms the page cache) counts the events it saw:
#   count=stat  the tool prints "events: N"
#   count=lines trace-cmd report: output lines that are not stack frames ("=>") or the "cpus=N" header
declare -A T_BEST T_CPU T_RSS T_EVENTS T_STACKS T_LABEL T_FORM T_ERR
ids=()
errors=0

now() { echo "${EPOCHREALTIME/,/.}"; }

bench() {  # bench ID "form" "tool label" count=stat|lines -- command...
    local id=$1 form=$2 label=$3 count=$4; shift 5
    ids+=("$id"); T_FORM[$id]=$form; T_LABEL[$id]=$label; T_ERR[$id]=""
    say "  $form: $label"
    local out=$run/out.$id n
    if [ "$count" = analyze ]; then   # "  events read   N (...)" -> "events: N"
        if ! "$@" 2>"$run/err.$id" | sed -n 's/^  events read *\([0-9][0-9]*\).*/events: \1/p' >"$out"; then
            T_ERR[$id]=$(head -c 200 "$run/err.$id" | head -1); errors=$((errors + 1)); return 0
        fi
    elif [ "$count" = lines ]; then
        if ! "$@" 2>"$run/err.$id" | awk '/^=>/ || (NR == 1 && /^cpus=/) { next } { n++ } END { print "events: " n + 0 }' >"$out"; then
            T_ERR[$id]=$(head -c 200 "$run/err.$id" | head -1); errors=$((errors + 1)); return 0
        fi
    elif ! "$@" >"$out" 2>"$run/err.$id"; then
        T_ERR[$id]=$(head -c 200 "$run/err.$id" | head -1); errors=$((errors + 1)); return 0
    fi
    n=$(sed -n 's/^events: \([0-9][0-9]*\).*/\1/p' "$out" | head -1)
    [ -n "$n" ] || { T_ERR[$id]="no 'events: N' in its output"; errors=$((errors + 1)); return 0; }
    T_EVENTS[$id]=$n
    # stack records among them ("N  ftrace:kernel_stack" per-event line, or "stack records: S")
    T_STACKS[$id]=$(awk '$2 == "ftrace:kernel_stack" || $2 == "kernel_stack" { s += $1 }
                         /^stack records:/ { s += $3 } END { print s + 0 }' "$out")
    local best="" cpu="" rss=0 r t0 t1 t m c
    for ((r = 0; r < RUNS; r++)); do
        t0=$(now)
        /usr/bin/time -f '%M %U %S' -o "$run/rss.$id" "$@" >/dev/null 2>"$run/err.$id" \
            || { T_ERR[$id]="failed in a timed run"; errors=$((errors + 1)); return 0; }
        t1=$(now)
        t=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        read -r m c < <(tail -1 "$run/rss.$id" | awk '{ printf "%d %.2f\n", $1, $2 + $3 }')
        if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; cpu=$c; fi
        [ "$m" -gt "$rss" ] && rss=$m
    done
    T_BEST[$id]=$best; T_CPU[$id]=$cpu; T_RSS[$id]=$rss
}

checks=()
mismatch=0
same_count() {  # same_count ID ID...: all these saw the same number of events
    # A text reader may attach "<stack trace>" records to the event before them instead of
    # counting them as events: then the counts without stack records must be equal.
    local first=$1 id ok=1 nostack=1 desc=""
    for id in "$@"; do
        [ -n "${T_EVENTS[$id]:-}" ] || return 0
        desc+="${desc:+ = }${T_FORM[$id]}: ${T_LABEL[$id]} ${T_EVENTS[$id]}"
        [ "${T_EVENTS[$id]}" = "${T_EVENTS[$first]}" ] || ok=0
        [ $((T_EVENTS[$id] - T_STACKS[$id])) = $((T_EVENTS[$first] - T_STACKS[$first])) ] || nostack=0
    done
    if [ $ok = 1 ]; then checks+=("same events  OK        $desc")
    elif [ $nostack = 1 ]; then
        checks+=("same events  OK        $desc")
        local s=""; for id in "$@"; do s+="${s:+, }${T_STACKS[$id]}"; done
        checks+=("                        (equal without stack records, which they count differently: $s)")
    else checks+=("same events  MISMATCH  $desc"); mismatch=1; fi
}

ratios=()
failed_targets=0
quotient() {  # quotient BASELINE_ID SUBJECT_ID: time(baseline)/time(subject); fails when either did not run
    [ -n "${T_BEST[$1]:-}" ] && [ -n "${T_BEST[$2]:-}" ] || return 1
    awk -v a="${T_BEST[$1]}" -v b="${T_BEST[$2]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'
}

ratio() {  # ratio BASELINE_ID SUBJECT_ID OP MIN "description": PASS if time(baseline)/time(subject) OP MIN
    local base=$1 subj=$2 op=$3 min=$4 desc=$5 r verdict
    if ! r=$(quotient "$base" "$subj"); then
        ratios+=("$(printf '%-52s %9s   target %-7s %s' "$desc" "n/a" "$op ${min}x" "NOT RUN")"); failed_targets=$((failed_targets + 1)); return 0
    fi
    if awk -v r="$r" -v m="$min" -v op="$op" 'BEGIN { exit !(op == ">" ? r > m : r >= m) }'; then verdict=PASS; else verdict=FAIL; failed_targets=$((failed_targets + 1)); fi
    ratios+=("$(printf '%-52s %8sx   target %-7s %s' "$desc" "$r" "$op ${min}x" "$verdict")")
}

reference() {  # reference BASELINE_ID SUBJECT_ID "description": the ratio, with no target
    local r
    r=$(quotient "$1" "$2") || return 0
    ratios+=("$(printf '%-52s %8sx   (reference, no target)' "$3" "$r")")
}

# --- benchmarks --------------------------------------------------------------------------------------
say "running each tool once (count, warm cache), then $RUNS timed runs"
bench ps_dat   "trace.dat v6"  "pinscope events --stat"      stat  -- "$pinscope" events --stat "$dat"
bench c_dat    "trace.dat v6"  "C libtracecmd loop"          stat  -- "$work/tracecmd_loop" "$dat"
bench tc_dat   "trace.dat v6"  "trace-cmd report >/dev/null" lines -- trace-cmd report "$dat"
if [ -n "$dat7" ]; then
bench ps_dat7  "trace.dat v7 zstd" "pinscope events --stat"  stat  -- "$pinscope" events --stat "$dat7"
bench c_dat7   "trace.dat v7 zstd" "C libtracecmd loop"      stat  -- "$work/tracecmd_loop" "$dat7"
fi
bench ps_txt   "kernel text"   "pinscope events --stat"      stat  -- "$pinscope" events --stat "$text"
bench py_txt   "kernel text"   "python3 regex_scan.py"       stat  -- python3 "$here/regex_scan.py" "$text"
bench cs_txt   "kernel text"   "C line scan (reference)"     stat  -- "$work/text_scan" "$text"
bench cp_txt   "kernel text"   "C scan + page tables (ref.)" stat  -- "$work/text_scan" "$text" -p
bench pa_dat   "trace.dat v6"  "pinscope analyze"            analyze -- "$pinscope" analyze --fail-on never "$dat"
bench pa_txt   "kernel text"   "pinscope analyze"            analyze -- "$pinscope" analyze --fail-on never "$text"

same_count ps_dat c_dat tc_dat
[ -n "$dat7" ] && same_count ps_dat c_dat ps_dat7 c_dat7
same_count ps_txt py_txt cs_txt cp_txt
[ "$text_note" = "kernel text of the same capture" ] && same_count ps_dat ps_txt

ratio c_dat  ps_dat  ">"  1  "C libtracecmd loop / pinscope  (trace.dat v6)"
ratio tc_dat ps_dat  ">=" 10 "trace-cmd report / pinscope    (trace.dat v6)"
if [ -n "$dat7" ]; then
ratio c_dat7 ps_dat7 ">"  1  "C libtracecmd loop / pinscope  (trace.dat v7 zstd)"
fi
ratio py_txt ps_txt  ">=" 20 "python regex script / pinscope (kernel text)"
ratio c_dat  pa_dat  ">"  1  "C libtracecmd loop / pinscope analyze (v6)"
ratio tc_dat pa_dat  ">=" 10 "trace-cmd report / pinscope analyze   (v6)"
ratio py_txt pa_txt  ">=" 20 "python regex script / pinscope analyze (text)"
# Not targets: how far the least a C program does to find the text's events (text_scan.c), and to
# follow its pages on both cores (text_scan.c -p), is from the python script and from PinScope's
# analysis of the same text.
reference py_txt cs_txt "python regex script / C line scan (reference)"
reference py_txt cp_txt "python regex script / C scan + page tables (ref.)"
reference pa_txt cs_txt "pinscope analyze (text) / C line scan (reference)"
reference pa_txt cp_txt "pinscope analyze (text) / C scan + pages (ref.)"
# The CPU the text target leaves on this machine: 20x python's time on every core.
if [ -n "${T_BEST[py_txt]:-}" ] && [ -n "${T_CPU[pa_txt]:-}" ]; then
    ratios+=("$(awk -v py="${T_BEST[py_txt]}" -v n="$(nproc)" -v pa="${T_CPU[pa_txt]}" -v cp="${T_CPU[cp_txt]:-?}" \
        'BEGIN { printf "text 20x on %d cores: at most %.2f s of CPU; pinscope analyze used %s s, C scan + pages %s s", n, py / 20 * n, pa, cp }')")
fi

# Memory flat in trace length: the same capture's kernel text, once and 10 times over (the same
# pages again and again), analyzed; peak RSS must grow at most 1.3x.
one=$(ls "$shared"/host-odirect-mmap/trace.txt 2>/dev/null || true)
if [ -n "$one" ]; then
    for ((i = 0; i < 10; i++)); do cat "$one"; done >"$work/rss-x10.txt"
    /usr/bin/time -f '%M' -o "$run/rss.x1" "$pinscope" analyze --fail-on never "$one" >/dev/null 2>&1 || true
    /usr/bin/time -f '%M' -o "$run/rss.x10" "$pinscope" analyze --fail-on never "$work/rss-x10.txt" >/dev/null 2>&1 || true
    r1=$(tail -1 "$run/rss.x1"); r10=$(tail -1 "$run/rss.x10")
    rr=$(awk -v a="$r10" -v b="$r1" 'BEGIN { printf "%.2f", a / b }')
    if awk -v r="$rr" 'BEGIN { exit !(r <= 1.3) }'; then v=PASS; else v=FAIL; failed_targets=$((failed_targets + 1)); fi
    ratios+=("$(printf '%-52s %8sx   target %-7s %s' "analyze peak RSS, 10x trace / 1x ($r10 / $r1 KB)" "$rr" "<= 1.3x" "$v")")
fi

# --- report ------------------------------------------------------------------------------------------
fmt_rate() { awk -v n="$1" -v t="$2" 'BEGIN { if (t > 0) printf "%.2f M/s", n / t / 1e6; else print "-" }'; }
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "?")
[ -n "$(git -C "$root" status --porcelain -- Sources 2>/dev/null)" ] && rev="$rev+dirty Sources"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "PinScope benchmark  $(date '+%Y-%m-%d %H:%M')  $(nproc) CPUs ($cpu), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
echo "pinscope: $pinscope ($rev)    best of $RUNS runs, wall clock; CPU = user + sys of that run; RSS = peak resident set"
echo "trace.dat v6: $dat ($(mb "$dat"); $dat_note)"
[ -n "$dat7" ] && echo "trace.dat v7: $dat7 ($(mb "$dat7"))"
echo "kernel text:  $text ($(mb "$text"); $text_note)"
echo
printf '%-18s %-30s %10s %9s %8s %12s %9s\n' form tool events "time (s)" "CPU (s)" events/s "RSS (MB)"
for id in "${ids[@]}"; do
    if [ -n "${T_ERR[$id]}" ]; then
        printf '%-18s %-30s ERROR: %s\n' "${T_FORM[$id]}" "${T_LABEL[$id]}" "${T_ERR[$id]}"
    else
        printf '%-18s %-30s %10s %9s %8s %12s %9.1f\n' "${T_FORM[$id]}" "${T_LABEL[$id]}" "${T_EVENTS[$id]}" \
            "${T_BEST[$id]}" "${T_CPU[$id]}" "$(fmt_rate "${T_EVENTS[$id]}" "${T_BEST[$id]}")" \
            "$(awk -v k="${T_RSS[$id]}" 'BEGIN { print k / 1024 }')"
    fi
done
echo
for c in "${checks[@]}"; do echo "$c"; done
echo
echo "ratios (baseline time / pinscope time; higher is better for pinscope):"
for r in "${ratios[@]}"; do echo "  $r"; done
echo
if [ $errors -gt 0 ] || [ $mismatch = 1 ]; then
    echo "RESULT: ERROR ($errors tool errors, count mismatch: $mismatch)"; exit 1
fi
if [ $failed_targets -gt 0 ]; then
    echo "RESULT: $failed_targets target(s) FAILED"
    [ "${BENCH_STRICT:-0}" = 1 ] && exit 2
    exit 0
fi
echo "RESULT: all targets PASS"
