/// A stream of raw events from one trace, in time order, with the anomalies seen so far.
public protocol RawEventSource: AnyObject {
    var info: TraceInfo { get }
    /// Counters for everything odd seen so far (complete once `next()` returned nil).
    var anomalies: Anomalies { get }
    /// Damage that did not stop reading, e.g. a truncated trace.dat.
    var warnings: [TraceWarning] { get }
    /// The next event, nil at the end. Throws only for input that cannot be read at all.
    func next() throws -> RawEvent?
}
