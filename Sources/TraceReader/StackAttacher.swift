/// Joins kernel stack records to the event they belong to: the event just before them on the
/// same CPU (the kernel records the stack right after the event). Events leave in their
/// original order once no stack can follow them.
/// - Complexity: O(pending) per event; pending is bounded by `limit`.
struct StackAttacher {
    private var pending: [RawEvent] = []
    private var resolved: [Bool] = []
    private var ready: [RawEvent] = []
    private var readyIndex = 0
    let limit = 64

    /// Adds an event; `isStack` marks a stack record whose frames are in `event.stack`.
    mutating func add(_ event: RawEvent, isStack: Bool) {
        if isStack {
            if let i = pending.lastIndex(where: { $0.cpu == event.cpu }), !resolved[i], pending[i].stack.isEmpty {
                pending[i].stack = event.stack
                resolved[i] = true
            } else {
                pending.append(event)
                resolved.append(true)
            }
        } else {
            for i in pending.indices where pending[i].cpu == event.cpu { resolved[i] = true }
            pending.append(event)
            resolved.append(false)
        }
        if pending.count > limit { resolved[0] = true }
        var n = 0
        while n < pending.count && resolved[n] { n += 1 }
        if n > 0 {
            if readyIndex == ready.count { ready.removeAll(keepingCapacity: true); readyIndex = 0 }
            ready.append(contentsOf: pending[0..<n])
            pending.removeFirst(n)
            resolved.removeFirst(n)
        }
    }

    /// Releases everything held (at the end of input).
    mutating func flush() {
        ready.append(contentsOf: pending)
        pending.removeAll()
        resolved.removeAll()
    }

    mutating func next() -> RawEvent? {
        guard readyIndex < ready.count else { return nil }
        defer { readyIndex += 1 }
        return ready[readyIndex]
    }
}
