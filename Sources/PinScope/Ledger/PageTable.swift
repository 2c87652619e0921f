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
    /// Keys and values apart: probing compares keys (plain words) and never copies a value,
    /// which for a class would be a retain and a release per probe.
    private var keys: [Key?]
    private var vals: [Value?]
    private var mask: Int
    public private(set) var count = 0

    public init(minimumCapacity: Int = 64) {
        var capacity = 16
        while capacity < minimumCapacity * 2 { capacity <<= 1 }
        keys = Array(repeating: nil, count: capacity)
        vals = Array(repeating: nil, count: capacity)
        mask = capacity - 1
    }

    public var isEmpty: Bool { count == 0 }

    /// Fibonacci hashing of the key's one word: high bits are the best mixed.
    @inline(__always)
    private func home(_ key: Key) -> Int {
        let word = key.word
        let h = (word ^ (word >> 29)) &* 0x9e37_79b9_7f4a_7c15
        return Int(truncatingIfNeeded: h >> 32) & mask
    }

    @inline(__always)
    private func find(_ key: Key) -> (index: Int, found: Bool) {
        keys.withUnsafeBufferPointer { keys in
            var i = home(key)
            while let k = keys[i] {
                if k == key { return (i, true) }
                i = (i + 1) & mask
            }
            return (i, false)
        }
    }

    public subscript(key: Key) -> Value? {
        get {
            let (i, found) = find(key)
            return found ? vals[i] : nil
        }
        set {
            guard let newValue else {
                removeValue(forKey: key)
                return
            }
            let (i, found) = find(key)
            vals[i] = newValue
            if !found {
                keys[i] = key
                count += 1
                if count * 4 > keys.count * 3 { grow() }
            }
        }
    }

    /// Inserts `key` with `value` unless present. Returns true when it was inserted.
    @discardableResult
    public mutating func insert(_ key: Key, _ value: Value) -> Bool {
        let (i, found) = find(key)
        if found { return false }
        keys[i] = key
        vals[i] = value
        count += 1
        if count * 4 > keys.count * 3 { grow() }
        return true
    }

    @discardableResult
    public mutating func removeValue(forKey key: Key) -> Value? {
        let (hole, found) = find(key)
        guard found else { return nil }
        var i = hole
        let old = vals[i]
        keys[i] = nil
        vals[i] = nil
        count -= 1
        // Backward-shift: move later members of the probe run into the hole when their home
        // position does not lie cyclically in (hole, j].
        var j = i
        while true {
            j = (j + 1) & mask
            guard let k = keys[j] else { break }
            let h = home(k)
            let between = i <= j ? (h > i && h <= j) : (h > i || h <= j)
            if !between {
                keys[i] = k
                keys[j] = nil
                vals.swapAt(i, j)
                i = j
            }
        }
        return old
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldVals = vals
        keys = Array(repeating: nil, count: oldKeys.count * 2)
        vals = Array(repeating: nil, count: oldKeys.count * 2)
        mask = keys.count - 1
        count = 0
        for i in oldKeys.indices {
            if let k = oldKeys[i], let v = oldVals[i] { insert(k, v) }
        }
    }

    public var keyList: [Key] { keys.compactMap { $0 } }
    public var values: [Value] { vals.compactMap { $0 } }
}

extension HashTable: Sendable where Key: Sendable, Value: Sendable {}

extension HashTable: Sequence {
    public func makeIterator() -> AnyIterator<(key: Key, value: Value)> {
        var i = 0
        let keys = self.keys
        let vals = self.vals
        return AnyIterator {
            while i < keys.count {
                defer { i += 1 }
                if let k = keys[i], let v = vals[i] { return (k, v) }
            }
            return nil
        }
    }
}
