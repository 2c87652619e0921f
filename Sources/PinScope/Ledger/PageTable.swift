import CPrefetch

/// A key a `HashTable` can hold: equatable, and folded to one well-spread word.
public protocol TableKey: Equatable {
    var word: UInt64 { get }
}

extension UInt64: TableKey {
    public var word: UInt64 { self }
}

extension PageRef: TableKey {}

/// The ledger's table: pages by key.
public typealias PageTable<Value> = HashTable<PageRef, Value>

/// A hash table keyed by page or any other one-word key: open addressing with linear probing and
/// a multiplicative hash. The ledger and the identity tables look keys up several times per
/// event; Swift's `Dictionary` seeds and finalizes a SipHash for every lookup, which was a fifth
/// of the analysis time on a large trace.
/// - Complexity: O(1) expected per operation; deletion shifts the probe run back (no tombstones),
///   so the table's memory follows the keys it holds.
public struct HashTable<Key: TableKey, Value> {
    /// A key and its value side by side: the tables outgrow the caches, and a hit then costs one
    /// cache miss where keys and values in two arrays cost two.
    struct Slot {
        var key: Key
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
    private func home(_ key: Key) -> Int { Self.home(key, mask) }

    @inline(__always)
    private static func home(_ key: Key, _ mask: Int) -> Int {
        let word = key.word
        let h = (word ^ (word >> 29)) &* 0x9e37_79b9_7f4a_7c15
        return Int(truncatingIfNeeded: h >> 32) & mask
    }

    @inline(__always)
    private func find(_ key: Key) -> (index: Int, found: Bool) {
        slots.withUnsafeBufferPointer { slots in
            var i = home(key)
            // Reads the key in place: copying a slot out would retain a class value.
            while slots[i] != nil {
                if slots[i].unsafelyUnwrapped.key == key { return (i, true) }
                i = (i + 1) & mask
            }
            return (i, false)
        }
    }

    /// Starts loading the slot a lookup of `key` begins at (a software prefetch): the tables
    /// outgrow the caches, and a caller that knows a key ahead of time hides the lookup's miss.
    @inline(__always)
    public func prefetch(_ key: Key) {
        slots.withUnsafeBufferPointer { pinscope_prefetch($0.baseAddress! + home(key)) }
    }

    /// The value of `key` if its home slot holds it, without probing further (a cheap guess,
    /// for prefetching).
    @inline(__always)
    func valueAtHome(_ key: Key) -> Value? {
        slots.withUnsafeBufferPointer { slots in
            let i = home(key)
            guard slots[i] != nil, slots[i].unsafelyUnwrapped.key == key else { return nil }
            return slots[i].unsafelyUnwrapped.value
        }
    }

    public subscript(key: Key) -> Value? {
        get {
            let (i, found) = find(key)
            return found ? slots[i].unsafelyUnwrapped.value : nil
        }
        set {
            guard let newValue else {
                removeValue(forKey: key)
                return
            }
            let (i, found) = find(key)
            // One uniqueness check for the write, not one per slot access.
            slots.withUnsafeMutableBufferPointer { slots in
                if found {
                    slots[i]!.value = newValue
                } else {
                    slots[i] = Slot(key: key, value: newValue)
                }
            }
            if !found {
                count += 1
                if count * 4 > slots.count * 3 { grow() }
            }
        }
    }

    /// Inserts `key` with `value` unless present. Returns true when it was inserted.
    @discardableResult
    public mutating func insert(_ key: Key, _ value: Value) -> Bool {
        let (i, found) = find(key)
        if found { return false }
        slots.withUnsafeMutableBufferPointer { $0[i] = Slot(key: key, value: value) }
        count += 1
        if count * 4 > slots.count * 3 { grow() }
        return true
    }

    @discardableResult
    public mutating func removeValue(forKey key: Key) -> Value? {
        let (hole, found) = find(key)
        guard found else { return nil }
        count -= 1
        let mask = self.mask
        return slots.withUnsafeMutableBufferPointer { slots in
            var i = hole
            let old = slots[i].take().unsafelyUnwrapped.value
            // Backward-shift: move later members of the probe run into the hole when their home
            // position does not lie cyclically in (hole, j].
            var j = i
            while true {
                j = (j + 1) & mask
                guard slots[j] != nil else { break }
                let h = Self.home(slots[j].unsafelyUnwrapped.key, mask)
                let between = i <= j ? (h > i && h <= j) : (h > i || h <= j)
                if !between {
                    slots[i] = slots[j].take()
                    i = j
                }
            }
            return old
        }
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: nil, count: old.count * 2)
        mask = slots.count - 1
        count = 0
        for case let slot? in old { insert(slot.key, slot.value) }
    }

    public var keyList: [Key] { slots.compactMap { $0?.key } }
    public var values: [Value] { slots.compactMap { $0?.value } }
}

extension HashTable: Sendable where Key: Sendable, Value: Sendable {}
extension HashTable.Slot: Sendable where Key: Sendable, Value: Sendable {}

extension HashTable: Sequence {
    public struct Iterator: IteratorProtocol {
        fileprivate let slots: [Slot?]
        fileprivate var i = 0

        public mutating func next() -> (key: Key, value: Value)? {
            while i < slots.count {
                defer { i += 1 }
                if let slot = slots[i] { return (slot.key, slot.value) }
            }
            return nil
        }
    }

    public func makeIterator() -> Iterator { Iterator(slots: slots) }
}
