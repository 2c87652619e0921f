#include <string.h>
#include <event-parse.h>
#include <trace-seq.h>
#include "ctraceevent_print.h"

void pinscope_print_report_line(struct tep_handle *tep, struct trace_seq *s,
                                struct tep_record *record, int time_mode, int raw)
{
    static const char *spaces = "                    "; /* 20 spaces */
    struct tep_event *event = tep_find_event_by_record(tep, record);
    const char *name = event ? event->name : "(NULL)";
    int len;

    if (record->missed_events > 0)
        trace_seq_printf(s, "CPU:%d [%lld EVENTS DROPPED]\n", record->cpu, record->missed_events);
    else if (record->missed_events < 0)
        trace_seq_printf(s, "CPU:%d [EVENTS DROPPED]\n", record->cpu);

    tep_print_event(tep, s, record, "%16s-%-5d [%03d]", TEP_PRINT_COMM, TEP_PRINT_PID, TEP_PRINT_CPU);
    switch (time_mode) {
    case PINSCOPE_TIME_NSECS:
        tep_print_event(tep, s, record, " %9.1d:", TEP_PRINT_TIME);
        break;
    case PINSCOPE_TIME_RAW:
        tep_print_event(tep, s, record, "%12d:", TEP_PRINT_TIME);
        break;
    default:
        tep_print_event(tep, s, record, " %6.1000d:", TEP_PRINT_TIME);
        break;
    }
    trace_seq_printf(s, " %s: ", name);
    len = strlen(name);
    if (len < 20)
        trace_seq_printf(s, "%.*s", 20 - len, spaces);
    tep_print_event(tep, s, record, "%s", raw ? TEP_PRINT_INFO_RAW : TEP_PRINT_INFO);
    if (s->len && s->buffer[s->len - 1] == '\n')
        s->len--;
}

void pinscope_print_info(struct tep_handle *tep, struct trace_seq *s, struct tep_record *record)
{
    tep_print_event(tep, s, record, "%s", TEP_PRINT_INFO);
}
