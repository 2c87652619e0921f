#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import TraceReader

/// Reads a source on a second thread, a batch of events at a time, while the caller works on the
/// batch before: decoding and analysis overlap on two cores. Events come out in the source's
/// order; an error the source throws comes out after the events read before it.
///
/// `prepare` also runs on the reading thread, once per event, for work that depends on the event
/// alone (`Extract` is what it gives, handed out with the event): the caller moves such work off
/// its own thread, which keeps the two threads evenly busy.
///
/// Configure the source (e.g. `TraceDatReader.onlyEvents`) before creating this. Read the
/// source's `anomalies`, `warnings` and counters only after `next()` returned nil or threw.
final class ReadAhead<Extract>: @unchecked Sendable {
    private let source: RawEventSource
    private let prepare: (RawEvent) -> Extract
    private let batchSize: Int
    private let depth: Int
    private struct Batch {
        var events: [RawEvent] = []
        var extracts: [Extract] = []
    }
    // Guarded by `mutex`.
    private var ready: [Batch] = []
    private var finished = false
    private var failure: Error?
    private var cancelled = false
    /// Batches the consumer is done with, handed back to the source (to refill) or dropped on the
    /// producer's thread: events are allocated there, and freeing them there keeps the two
    /// threads off each other's malloc arena lock (freeing on the consumer made both wait on it,
    /// ~20% of the time in futex calls).
    private var spent: [[RawEvent]] = []
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Owned by the consumer.
    private var batch = Batch()
    private var position = 0
    private var drained = false

    init(_ source: RawEventSource, batchSize: Int = 1024, depth: Int = 2, prepare: @escaping (RawEvent) -> Extract) {
        self.source = source
        self.prepare = prepare
        self.batchSize = batchSize
        self.depth = depth
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
        DispatchQueue.global().async { [self] in produce() }
    }

    deinit {
        pthread_mutex_lock(mutex)
        cancelled = true
        pthread_cond_broadcast(changed)
        while !finished { pthread_cond_wait(changed, mutex) }
        pthread_mutex_unlock(mutex)
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        changed.deallocate()
    }

    /// Hands the next event and what `prepare` gave for it to `body`; false at the end. Rethrows
    /// the source's error after the events before it.
    ///
    /// The event is lent, not returned: the batch holds it until `body` is done, and a returned
    /// reference cost a retain and a release per event of an object the reading thread wrote last
    /// (a cache line moving between cores, ~5% of the analysis thread).
    ///
    /// `ahead` sees what `prepare` gave for the events of the batch, and where this one is: the
    /// next ones are enough to start loading what they will look up.
    func next(_ body: (RawEvent, Extract) -> Void, ahead: ([Extract], Int) -> Void) throws -> Bool {
        if position >= batch.events.count {
            guard try nextBatch() else { return false }
        }
        let i = position
        position += 1
        ahead(batch.extracts, i)
        batch.events.withUnsafeBufferPointer { events in
            Unmanaged.passUnretained(events[i])._withUnsafeGuaranteedRef { body($0, batch.extracts[i]) }
        }
        return true
    }

    /// Takes the next ready batch, waiting for one; false at the end.
    private func nextBatch() throws -> Bool {
        if drained { return false }
        pthread_mutex_lock(mutex)
        while ready.isEmpty && !finished { pthread_cond_wait(changed, mutex) }
        if ready.isEmpty {
            let error = failure
            failure = nil
            pthread_mutex_unlock(mutex)
            drained = true
            batch = Batch()
            if let error { throw error }
            return false
        }
        spent.append(batch.events)
        batch = ready.removeFirst()
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
        // Never empty: the producer hands over only batches with events.
        position = 0
        return true
    }

    private func produce() {
        var done = false
        while !done {
            var events = Batch()
            events.events.reserveCapacity(batchSize)
            events.extracts.reserveCapacity(batchSize)
            var error: Error?
            do {
                while events.events.count < batchSize {
                    guard let e = try source.next() else {
                        done = true
                        break
                    }
                    events.extracts.append(prepare(e))
                    events.events.append(consume e)
                }
            } catch let e {
                error = e
                done = true
            }
            pthread_mutex_lock(mutex)
            while ready.count >= depth && !cancelled { pthread_cond_wait(changed, mutex) }
            if cancelled { done = true }
            if !events.events.isEmpty { ready.append(events) }
            if done {
                failure = error
                finished = true
            }
            var drop = spent
            spent = []
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
            for i in drop.indices { source.recycle(&drop[i]) }
            drop.removeAll()
        }
    }
}
