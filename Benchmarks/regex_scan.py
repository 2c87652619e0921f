#!/usr/bin/env python3
"""Benchmark baseline for text traces: the simplest useful Python reader of kernel ftrace text.

Reads a kernel ftrace text file (the kernel's own /sys/kernel/tracing/trace format) line by line,
matches each event line with one regular expression, and counts events per event name. Stack
trace frames (" => ...") and '#' comment lines are skipped; a "<stack trace>" line counts as the
event kernel_stack and "<user stack trace>" as user_stack, as in trace-cmd.

It does LESS work than PinScope: it keeps only the event name (not task, pid, CPU, timestamp or
fields), does not attach stacks to events, does not order CPUs by time, and does not decode any
field.

Usage: regex_scan.py FILE [-v]     prints "events: N" (stack records included), "stack records: S"
                                  and, with -v, the count per event name
"""
import re
import sys
from collections import Counter

# "<task>-<pid> [<cpu>] <flags> <timestamp>: <event>: <fields>"; flags (irq-info) are optional.
# Syscall events print as "<timestamp>: sys_x(args)" (enter) and "<timestamp>: sys_x -> ret" (exit).
EVENT_LINE = re.compile(
    r"^\s*(?P<task>.*?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+(?:[^\s\d]\S*\s+)?"
    r"(?P<ts>\d+\.\d+):\s+(?P<event><stack trace>|<user stack trace>|[\w.-]+(?::|\(| ->))"
)
SPECIAL = {"<stack trace>": "kernel_stack", "<user stack trace>": "user_stack"}


def display(name: str) -> str:
    if name in SPECIAL:
        return SPECIAL[name]
    if name.endswith("("):
        return name[:-1] + " (enter)"
    if name.endswith(" ->"):
        return name[:-3] + " (exit)"
    return name.rstrip(":")


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "-v"]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    counts: Counter = Counter()
    other = 0
    match = EVENT_LINE.match
    with open(args[0], "r", encoding="utf-8", errors="replace", newline="\n") as f:
        for line in f:
            if line.startswith("#") or line.startswith(" =>"):
                continue
            m = match(line)
            if m:
                counts[m.group("event")] += 1
            elif line.strip():
                other += 1
    total = sum(counts.values())
    print(f"events: {total}")
    print(f"stack records: {counts['<stack trace>'] + counts['<user stack trace>']}")
    if other:
        print(f"unmatched lines: {other}")
    if "-v" in sys.argv[1:]:
        for name, n in counts.most_common():
            print(f"{n:11d}  {display(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
