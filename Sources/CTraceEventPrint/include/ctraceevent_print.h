#ifndef PINSCOPE_CTRACEEVENT_PRINT_H
#define PINSCOPE_CTRACEEVENT_PRINT_H

struct tep_handle;
struct trace_seq;
struct tep_record;

/// How trace-cmd report prints timestamps.
enum pinscope_time_mode {
    PINSCOPE_TIME_USECS = 0,   /* " %6.1000d:"  seconds.microseconds */
    PINSCOPE_TIME_NSECS = 1,   /* " %9.1d:"     seconds.nanoseconds (-t) */
    PINSCOPE_TIME_RAW = 2,     /* "%12d:"       raw counter */
};

/// Appends one event line exactly as `trace-cmd report` (3.1.x) prints it, with the fields in
/// raw form (`-R`) when `raw` is non-zero: dropped-events line, comm-pid, cpu, time, name, fields.
/// tep_print_event is variadic, which Swift cannot call: this is the only reason this file exists.
void pinscope_print_report_line(struct tep_handle *tep, struct trace_seq *s,
                                struct tep_record *record, int time_mode, int raw);

/// Appends the event's payload as its print format renders it (symbolic values resolved).
void pinscope_print_info(struct tep_handle *tep, struct trace_seq *s, struct tep_record *record);

#endif
