import DequeModule

/// Joins kernel stack records to the event they belong to: the event just before them on the
/// same CPU (the kernel records the stack right after the event). Events leave in their
/// original order once no stack can follow them.
/// - Complexity: O(1) amortized per event for few CPUs; at most `limit` events are held.
struct StackAttacher {
    private struct Held {
        var event: RawEvent
        /// The event's CPU, kept here: the loops below read it for every held event, and
        /// reading it from the event cost a retain and a release of the event each time.
        var cpu: Int
        var resolved: Bool
    }
    private var pending = Deque<Held>()
    private var ready = Deque<RawEvent>()
    /// Per CPU: an event of that CPU is held and a stack may still follow it. At most one is:
    /// the next record on the CPU settles it. Most records (skipped ones above all) come on a
    /// CPU with none, and then there is nothing to look for.
    private var open: [Bool] = []
    let limit = 64

    /// Adds an event; `isStack` marks a stack record whose frames are its own stack. Taken, not
    /// borrowed: the event moves into the queue without a retain and a release.
    mutating func add(_ event: consuming RawEvent, isStack: Bool) {
        let cpu = event.cpu
        if cpu >= open.count { open += [Bool](repeating: false, count: cpu + 1 - open.count) }
        if isStack {
            if open[cpu], let i = pending.lastIndex(where: { $0.cpu == cpu }),
               !pending[i].resolved, pending[i].event.lazyStack.isEmpty {
                pending[i].event.lazyStack = event.lazyStack
                pending[i].resolved = true
                open[cpu] = false
            } else {
                pending.append(Held(event: consume event, cpu: cpu, resolved: true))
            }
        } else {
            // A newer event on this CPU: no stack can follow the older ones any more.
            resolve(cpu: cpu)
            pending.append(Held(event: consume event, cpu: cpu, resolved: false))
            open[cpu] = true
        }
        if pending.count > limit, !pending[pending.startIndex].resolved {
            pending[pending.startIndex].resolved = true
            open[pending[pending.startIndex].cpu] = false
        }
        release()
    }

    /// A record on `cpu` the caller skipped undecoded: no stack can follow the events before it.
    mutating func skipped(cpu: Int) {
        guard cpu < open.count, open[cpu] else { return }
        resolve(cpu: cpu)
        release()
    }

    /// Marks the held events of `cpu` resolved.
    private mutating func resolve(cpu: Int) {
        guard open[cpu] else { return }
        for i in pending.indices where !pending[i].resolved && pending[i].cpu == cpu {
            pending[i].resolved = true
        }
        open[cpu] = false
    }

    /// Moves the resolved events at the front to `ready`.
    private mutating func release() {
        while !pending.isEmpty, pending[pending.startIndex].resolved {
            ready.append(pending.removeFirst().event)
        }
    }

    /// Releases everything held (at the end of input).
    mutating func flush() {
        while let h = pending.popFirst() { ready.append(h.event) }
        open = []
    }

    mutating func next() -> RawEvent? {
        ready.popFirst()
    }
}
