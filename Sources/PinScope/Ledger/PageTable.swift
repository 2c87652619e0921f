/// A hash table keyed by page: open addressing with linear probing and a multiplicative hash.
/// The ledger looks pages up several times per event; Swift's `Dictionary` seeds and finalizes a
/// SipHash for every lookup, which was a fifth of the analysis time on a large trace.
/// - Complexity: O(1) expected per operation; deletion shifts the probe run back (no tombstones),
///   so the table's memory follows the pages it holds.
public struct PageTable<Value> {
    private struct Slot {
        var key: PageRef
        var value: Value
    }
    private var slots: [Slot?]
    private var mask: Int
    public private(set) var count = 0

    public init(minimumCapacity: Int = 64) {
        var capacity = 16
        while capacity < minimumCapacity * 2 { capacity <<= 1 }
        slots = Array(repeating: nil, count: capacity)
        mask = capacity - 1
    }

    public var isEmpty: Bool { count == 0 }

    /// Fibonacci hashing of the key's one word: high bits are the best mixed.
    @inline(__always)
    private func home(_ key: PageRef) -> Int {
        let word = key.word
        let h = (word ^ (word >> 29)) &* 0x9e37_79b9_7f4a_7c15
        return Int(truncatingIfNeeded: h >> 32) & mask
    }

    @inline(__always)
    private func find(_ key: PageRef) -> (index: Int, found: Bool) {
        var i = home(key)
        while let slot = slots[i] {
            if slot.key == key { return (i, true) }
            i = (i + 1) & mask
        }
        return (i, false)
    }

    public subscript(key: PageRef) -> Value? {
        get {
            let (i, found) = find(key)
            return found ? slots[i]!.value : nil
        }
        set {
            guard let newValue else {
                removeValue(forKey: key)
                return
            }
            let (i, found) = find(key)
            slots[i] = Slot(key: key, value: newValue)
            if !found {
                count += 1
                if count * 4 > slots.count * 3 { grow() }
            }
        }
    }

    /// Inserts `key` with `value` unless present. Returns true when it was inserted.
    @discardableResult
    public mutating func insert(_ key: PageRef, _ value: Value) -> Bool {
        let (i, found) = find(key)
        if found { return false }
        slots[i] = Slot(key: key, value: value)
        count += 1
        if count * 4 > slots.count * 3 { grow() }
        return true
    }

    @discardableResult
    public mutating func removeValue(forKey key: PageRef) -> Value? {
        let (hole, found) = find(key)
        guard found else { return nil }
        var i = hole
        let old = slots[i]!.value
        slots[i] = nil
        count -= 1
        // Backward-shift: move later members of the probe run into the hole when their home
        // position does not lie cyclically in (hole, j].
        var j = i
        while true {
            j = (j + 1) & mask
            guard let slot = slots[j] else { break }
            let h = home(slot.key)
            let between = i <= j ? (h > i && h <= j) : (h > i || h <= j)
            if !between {
                slots[i] = slot
                slots[j] = nil
                i = j
            }
        }
        return old
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: nil, count: old.count * 2)
        mask = slots.count - 1
        count = 0
        for case let slot? in old { self[slot.key] = slot.value }
    }

    public var keys: [PageRef] { slots.compactMap { $0?.key } }
    public var values: [Value] { slots.compactMap { $0?.value } }
}

extension PageTable: Sequence {
    public func makeIterator() -> AnyIterator<(key: PageRef, value: Value)> {
        var i = 0
        let slots = self.slots
        return AnyIterator {
            while i < slots.count {
                defer { i += 1 }
                if let s = slots[i] { return (s.key, s.value) }
            }
            return nil
        }
    }
}
