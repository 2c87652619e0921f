import DequeModule

/// Joins kernel stack records to the event they belong to: the event just before them on the
/// same CPU (the kernel records the stack right after the event). Events leave in their
/// original order once no stack can follow them.
/// - Complexity: O(1) amortized per event for few CPUs; at most `limit` events are held.
struct StackAttacher {
    private struct Held {
        var event: RawEvent
        var resolved: Bool
    }
    private var pending = Deque<Held>()
    private var ready = Deque<RawEvent>()
    let limit = 64

    /// Adds an event; `isStack` marks a stack record whose frames are its own stack.
    mutating func add(_ event: RawEvent, isStack: Bool) {
        if isStack {
            if let i = pending.lastIndex(where: { $0.event.cpu == event.cpu }),
               !pending[i].resolved, !pending[i].event.hasStack {
                pending[i].event.takeStack(from: event)
                pending[i].resolved = true
            } else {
                pending.append(Held(event: event, resolved: true))
            }
        } else {
            // A newer event on this CPU: no stack can follow the older ones any more.
            for i in pending.indices where !pending[i].resolved && pending[i].event.cpu == event.cpu {
                pending[i].resolved = true
            }
            pending.append(Held(event: event, resolved: false))
        }
        if pending.count > limit { pending[pending.startIndex].resolved = true }
        while let first = pending.first, first.resolved {
            ready.append(pending.removeFirst().event)
        }
    }

    /// A record on `cpu` the caller skipped undecoded: no stack can follow the events before it.
    mutating func skipped(cpu: Int) {
        guard !pending.isEmpty else { return }
        for i in pending.indices where !pending[i].resolved && pending[i].event.cpu == cpu {
            pending[i].resolved = true
        }
        while let first = pending.first, first.resolved {
            ready.append(pending.removeFirst().event)
        }
    }

    /// Releases everything held (at the end of input).
    mutating func flush() {
        while let h = pending.popFirst() { ready.append(h.event) }
    }

    mutating func next() -> RawEvent? {
        ready.popFirst()
    }
}
