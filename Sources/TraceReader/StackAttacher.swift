import CTraceEvent
import DequeModule

/// Joins kernel stack records to the event they belong to: the event just before them on the
/// same CPU (the kernel records the stack right after the event). Events leave in their
/// original order once no stack can follow them. For text traces, whose lines come merged
/// across CPUs; a trace.dat reader joins them in each CPU's stream before merging.
/// - Complexity: O(1) amortized per event; at most `limit` events are held: an event whose
///   CPU stays quiet while `limit` others come goes out without a stack (a trace.dat reader
///   would still join one; no capture has come near).
struct StackAttacher {
    private struct Held {
        var event: RawEvent
        /// The event's CPU, kept here: reading it from the event cost a retain and a release.
        var cpu: Int
        var resolved: Bool
        /// Its interrupt context (`IRQContext`), nil when the trace does not show it.
        var context: UInt8?
    }
    private var pending = Deque<Held>()
    private var ready = Deque<RawEvent>()
    /// Per CPU: where its held event a stack may still follow is (counted from the first event
    /// ever added), or -1. At most one per CPU: the next record on the CPU settles it. Kept so
    /// that settling costs no search: the events of a busy CPU queue up behind an idle one's,
    /// up to `limit`, and searching them for every record was a twentieth of the reading.
    private var open: [Int] = []
    /// Events moved on from `pending`: a position minus this is an index there.
    private var released = 0
    let limit = 4096

    /// Adds an event; `isStack` marks a stack record whose frames are its own stack. Taken, not
    /// borrowed: the event moves into the queue without a retain and a release.
    /// - Parameter context: the record's interrupt context (`IRQContext`), when the trace shows
    ///   it. A stack joins the CPU's open event only in the same context: an interrupt's event
    ///   recorded between an event and its stack does not take the stack.
    mutating func add(_ event: consuming RawEvent, isStack: Bool, context: UInt8? = nil) {
        let cpu = event.cpu
        if cpu >= open.count { open += [Int](repeating: -1, count: cpu + 1 - open.count) }
        if isStack {
            // The CPU's open event is its last one held: a stack after it would have closed it.
            let at = open[cpu] - released
            if open[cpu] >= 0, pending[at].event.lazyStack.isEmpty, IRQContext.same(pending[at].context, context) {
                pending[at].event.lazyStack = event.lazyStack
                pending[at].resolved = true
                open[cpu] = -1
            } else {
                // Not the open event's (or there is none): no stack can follow that one now.
                resolve(cpu: cpu)
                pending.append(Held(event: consume event, cpu: cpu, resolved: true, context: context))
            }
        } else {
            // A newer event on this CPU: no stack can follow the older ones any more.
            resolve(cpu: cpu)
            open[cpu] = released + pending.count
            pending.append(Held(event: consume event, cpu: cpu, resolved: false, context: context))
        }
        if pending.count > limit, !pending[pending.startIndex].resolved {
            // The oldest unsettled event is its CPU's open one.
            pending[pending.startIndex].resolved = true
            open[pending[pending.startIndex].cpu] = -1
        }
        release()
    }

    /// A record on `cpu` the caller skipped undecoded: no stack can follow the events before it.
    mutating func skipped(cpu: Int) {
        guard cpu < open.count, open[cpu] >= 0 else { return }
        resolve(cpu: cpu)
        release()
    }

    /// Marks the open event of `cpu` resolved.
    private mutating func resolve(cpu: Int) {
        guard open[cpu] >= 0 else { return }
        pending[open[cpu] - released].resolved = true
        open[cpu] = -1
    }

    /// Moves the resolved events at the front to `ready`.
    private mutating func release() {
        while !pending.isEmpty, pending[pending.startIndex].resolved {
            ready.append(pending.removeFirst().event)
            released += 1
        }
    }

    /// Releases everything held (at the end of input).
    mutating func flush() {
        while let h = pending.popFirst() {
            ready.append(h.event)
            released += 1
        }
        open = []
    }

    mutating func next() -> RawEvent? {
        ready.popFirst()
    }

    /// Whether `next()` has an event.
    var hasReady: Bool { !ready.isEmpty }
}

/// The interrupt context a record was written in, as the kernel's trace flags give it: hardirq,
/// softirq and NMI bits (`TRACE_FLAG_HARDIRQ`, `TRACE_FLAG_SOFTIRQ`, and `TRACE_FLAG_NMI` = 0x40,
/// which libtraceevent's enum lacks). A stack trace is recorded in its event's context.
enum IRQContext {
    static let hard = UInt8(TRACE_FLAG_HARDIRQ.rawValue), soft = UInt8(TRACE_FLAG_SOFTIRQ.rawValue), nmi: UInt8 = 0x40
    static let mask = hard | soft | nmi

    /// From a binary record's common flags.
    static func of(flags: Int32) -> UInt8 { UInt8(truncatingIfNeeded: flags) & mask }

    /// From the text's irq-flags column (`d.h1.`): its third character, as the kernel prints it
    /// (`Z` NMI in hardirq, `z` NMI, `H` hardirq in softirq, `h` hardirq, `s` softirq, `.` none).
    static func of(column c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "Z"): return nmi | hard
        case UInt8(ascii: "z"): return nmi
        case UInt8(ascii: "H"): return hard | soft
        case UInt8(ascii: "h"): return hard
        case UInt8(ascii: "s"): return soft
        case UInt8(ascii: "."): return 0
        default: return nil
        }
    }

    /// Contexts match, or one is not known.
    static func same(_ a: UInt8?, _ b: UInt8?) -> Bool {
        guard let a, let b else { return true }
        return a == b
    }
}

