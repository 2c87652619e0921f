/// A stream of raw events from one trace, in time order, with the anomalies seen so far.
public protocol RawEventSource: AnyObject {
    var info: TraceInfo { get }
    /// Counters for everything odd seen so far (complete once `next()` returned nil).
    var anomalies: Anomalies { get }
    /// Damage that did not stop reading, e.g. a truncated trace.dat.
    var warnings: [TraceWarning] { get }
    /// The next event, nil at the end. Throws only for input that cannot be read at all.
    func next() throws -> RawEvent?
    /// Takes back events the caller is done with, so a reader can refill them instead of
    /// allocating new ones (it reuses only events nobody else still holds). Optional.
    func recycle(_ events: inout [RawEvent])
}

extension RawEventSource {
    public func recycle(_ events: inout [RawEvent]) {}
}

/// A source that can skip, undecoded, the events its reader does not need.
public protocol EventFiltering: AnyObject {
    /// Names of the events to decode; nil decodes all. Set before reading.
    var onlyEvents: Set<String>? { get set }
    /// Records skipped because of `onlyEvents` (they were read, not decoded).
    var skippedRecords: Int { get }
    /// The first and last timestamps of the skipped records (the trace's span counts them too).
    var skippedSpan: ClosedRange<UInt64>? { get }
}

/// Spent events a reader refills instead of allocating new ones (`RawEventSource.recycle`), at
/// most `limit` of them.
struct EventPool {
    private var spare: [RawEvent] = []
    let limit = 4096

    /// A spent event to refill, if there is one.
    mutating func take() -> RawEvent? { spare.popLast() }

    /// Keeps `e`, which nobody else holds, unless the pool is full.
    mutating func give(_ e: consuming RawEvent) {
        if spare.count < limit { spare.append(e) }
    }

    /// Keeps those of `events` nobody else holds, until the pool is full.
    mutating func recycle(_ events: inout [RawEvent]) {
        while spare.count < limit, var e = events.popLast() {
            if isKnownUniquelyReferenced(&e) { spare.append(consume e) }
        }
    }
}
