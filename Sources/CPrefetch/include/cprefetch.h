#ifndef PINSCOPE_CPREFETCH_H
#define PINSCOPE_CPREFETCH_H

/// Starts loading the cache line at p (a hint: it never faults). The analysis knows the next
/// events' keys while it handles the current one, and loads their hash-table slots meanwhile.
static inline void pinscope_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif
