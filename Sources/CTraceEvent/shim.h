#ifndef PINSCOPE_CTRACEEVENT_SHIM_H
#define PINSCOPE_CTRACEEVENT_SHIM_H
#include <event-parse.h>
#include <kbuffer.h>
#include <trace-seq.h>
#endif
