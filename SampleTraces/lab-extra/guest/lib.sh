# lib.sh - tracing helpers for the capture guest (sourced by /init, cwd = /out)
T=/sys/kernel/tracing
RAW=$T/instances/raw
# tracepoints recorded in every scenario (systems or system:event)
TP_EVENTS="writeback filemap migrate io_uring:io_uring_register io_uring:io_uring_submit_sqe io_uring:io_uring_complete"
TP_EVENTS="$TP_EVENTS syscalls:sys_enter_io_uring_register syscalls:sys_exit_io_uring_register"
TP_EVENTS="$TP_EVENTS syscalls:sys_enter_msync syscalls:sys_exit_msync syscalls:sys_enter_fsync syscalls:sys_exit_fsync"
TP_EVENTS="$TP_EVENTS syscalls:sys_enter_vmsplice syscalls:sys_exit_vmsplice"
TP_EVENTS="$TP_EVENTS syscalls:sys_enter_process_vm_readv syscalls:sys_exit_process_vm_readv"
TP_EVENTS="$TP_EVENTS syscalls:sys_enter_process_vm_writev syscalls:sys_exit_process_vm_writev"
TP_EVENTS="$TP_EVENTS syscalls:sys_enter_pread64 syscalls:sys_exit_pread64 syscalls:sys_enter_pwrite64 syscalls:sys_exit_pwrite64"
[ "${LAB_KMEM:-0}" = 1 ] && TP_EVENTS="$TP_EVENTS kmem:mm_page_free"
BUF_KB=${LAB_BUF_KB:-32768}       # per-CPU ring buffer size, both buffers

# lab_define_kprobes: create every kprobe of /lab/kprobes.conf whose symbol exists.
# Writes /out/kprobe_events.used (exact lines accepted by the kernel), /out/kprobes-status.txt
# KPROBES_CONF=file overrides the config file (a scenario can build its own variant).
lab_define_kprobes() {
    local conf=${KPROBES_CONF:-/lab/kprobes.conf}
    mkdir -p /run/lab
    echo 0 > $T/tracing_on
    echo > $T/kprobe_events
    # one pass over kallsyms: which probed functions exist as text symbols
    awk 'NR==FNR { if ($1 !~ /^#/ && NF >= 3) want[$3] = 1; next }
         ($2 == "t" || $2 == "T") && ($3 in want) { print $3 }' "$conf" /proc/kallsyms | sort -u > /run/lab/present
    : > /out/kprobe_events.used; : > /out/kprobes-status.txt; : > /run/lab/stack_events
    while read -r flag line; do
        case "$flag" in ''|'#'*) continue ;; esac
        ev=${line%% *}; ev=${ev#*:}; ev=${ev#kprobes/}
        fn=$(echo "$line" | cut -d' ' -f2)
        if ! grep -qx "$fn" /run/lab/present; then
            echo "MISSING  $ev ($fn not in /proc/kallsyms)" >> /out/kprobes-status.txt; continue
        fi
        echo > $T/error_log 2>/dev/null
        if echo "$line" >> $T/kprobe_events 2>/dev/null; then
            echo "$line" >> /out/kprobe_events.used
            echo "OK       $ev" >> /out/kprobes-status.txt
            [ "$flag" = S ] && echo "$ev" >> /run/lab/stack_events
        else
            echo "REJECTED $ev: $(cat $T/error_log 2>/dev/null | tr '\n' ' ')" >> /out/kprobes-status.txt
        fi
    done < "$conf"
    [ "$conf" = /lab/kprobes.conf ] || cp "$conf" /out/kprobes.conf.used
    cp $T/kprobe_events /out/kprobe_events.kernel   # kernel's own rendering of what is defined
    echo "kprobes: $(grep -c '^OK' /out/kprobes-status.txt) defined, $(grep -vc '^OK' /out/kprobes-status.txt) not"
}

# set up instance "raw" (same events, its own buffer, clock mono).  It is read only after the
# run (cat instances/raw/trace): streaming trace_pipe into a file inside the guest feeds back
# (the reader's own writes generate writeback/filemap/kprobe events).
lab_raw_start() {
    mkdir -p $RAW
    echo 0 > $RAW/tracing_on
    echo mono > $RAW/trace_clock
    echo 0 > $RAW/options/overwrite        # if full, drop newest rather than oldest (see stats)
    echo $BUF_KB > $RAW/buffer_size_kb
    for ev in $(ls $T/events/kprobes | grep -v '^enable$\|^filter$'); do
        echo 1 > $RAW/events/kprobes/$ev/enable
    done
    for e in $TP_EVENTS; do
        case $e in *:*) echo 1 > $RAW/events/${e%%:*}/${e#*:}/enable ;; *) echo 1 > $RAW/events/$e/enable ;; esac
    done
    for ev in $(cat /run/lab/stack_events); do echo stacktrace > $RAW/events/kprobes/$ev/trigger; done
    echo > $RAW/trace
    echo 1 > $RAW/tracing_on
}
lab_raw_stop() {
    echo 0 > $RAW/tracing_on
    cat $RAW/trace > /out/trace_raw.txt
    for c in $RAW/per_cpu/cpu*; do echo "== $(basename $c)"; cat $c/stats; done > /out/trace_raw.stats
}

# runs as the command of `trace-cmd record` (so trace-cmd's own set-up is complete):
# copy trace-cmd's self-exclusion (set_event_notrace_pid) to the raw instance, then exec.
lab_child() {
    local log=$1; shift
    { echo "top set_event_notrace_pid: $(cat $T/set_event_notrace_pid | tr '\n' ' ')";
      echo "top set_event_pid: $(cat $T/set_event_pid | tr '\n' ' ')";
      echo "top event-fork: $(cat $T/options/event-fork)";
      echo "writeback filter: $(cat $T/events/writeback/writeback_dirty_folio/filter)"; } > /out/trace-cmd-selffilter.txt
    for p in $(cat $T/set_event_notrace_pid); do echo $p >> $RAW/set_event_notrace_pid; done
    exec "$@" > /out/$log.log 2> /out/$log.stderr
}

# lab_trace_run LOGBASE CMD...: trace-cmd record (--file-version 6 explicitly: trace-cmd 3.1.6 would
# default to version 7 + zstd; clock mono) around CMD,
# plus the raw instance.  CMD's stdout -> LOGBASE.log (ground truth), stderr -> LOGBASE.stderr.
# Stack traces come from the `stacktrace` triggers on the S-flagged kprobes.
lab_trace_run() {
    local logbase=$1; shift
    set -- /bin/sh -c '. /lab/lib.sh; lab_child "$@"' sh "$logbase" "$@"
    local evargs="" e
    for e in kprobes $TP_EVENTS; do evargs="$evargs -e $e"; done
    echo "trace-cmd record --file-version 6 -C mono -b $BUF_KB$evargs -o /out/trace.dat $*" > /out/trace-cmd-cmdline.txt
    echo "$evargs" > /run/lab/evargs
    for ev in $(cat /run/lab/stack_events); do echo stacktrace > $T/events/kprobes/$ev/trigger; done
    lab_raw_start
    echo "trace: starting $(cut -d' ' -f1 /proc/uptime)"
    trace-cmd record --file-version 6 -C mono -b $BUF_KB $evargs -o /out/trace.dat "$@" > /out/trace-cmd-record.log 2>&1
    local rc=$?
    echo "trace: trace-cmd exit $rc at $(cut -d' ' -f1 /proc/uptime)"
    lab_raw_stop
    # record what the trigger files looked like afterwards (trace-cmd may reset them)
    for ev in $(cat /run/lab/stack_events); do echo "$ev: $(cat $T/events/kprobes/$ev/trigger | grep -v '^#')"; done > /out/triggers-after.txt
    return $rc
}

# common run wrapper used by scenario scripts: CMD runs under tracing; its stdout is the
# ground-truth log (the C workloads also mirror every line into trace_marker)
lab_meta() {
    uname -r > /out/guest-kernel-version.txt
    cat /sys/kernel/mm/transparent_hugepage/enabled > /out/guest-mm-settings.txt
    grep -i huge /proc/meminfo >> /out/guest-mm-settings.txt
    ls -la /dev/kvm >> /out/guest-mm-settings.txt 2>&1
}
