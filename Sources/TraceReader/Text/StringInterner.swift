/// Reuses one `String` per distinct short byte sequence (comms, event names, field names), so the
/// text readers do not allocate them again for every event.
/// - Complexity: O(length) per lookup; holds at most `capacity * 3 / 4` entries, after which new
///   sequences are decoded without being kept.
struct StringInterner {
    private var keys: [[UInt8]]
    private var values: [String]
    private var used: [Bool]
    private var count = 0
    private let mask: Int
    let maxLength = 48

    init(capacity: Int = 4096) {
        var size = 16
        while size < capacity { size <<= 1 }
        keys = Array(repeating: [], count: size)
        values = Array(repeating: "", count: size)
        used = Array(repeating: false, count: size)
        mask = size - 1
    }

    mutating func intern(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard bytes.count <= maxLength else { return String(decoding: bytes, as: UTF8.self) }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        var slot = Int(truncatingIfNeeded: h ^ (h >> 29)) & mask
        while used[slot] {
            if keys[slot].withUnsafeBufferPointer({ $0.elementsEqual(bytes) }) { return values[slot] }
            slot = (slot + 1) & mask
        }
        let s = String(decoding: bytes, as: UTF8.self)
        if count < (mask + 1) * 3 / 4 {
            used[slot] = true
            keys[slot] = Array(bytes)
            values[slot] = s
            count += 1
        }
        return s
    }

    mutating func intern(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBufferPointer { intern($0) }
    }

    @inline(__always)
    mutating func intern(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        intern(UnsafeBufferPointer(rebasing: line[range]))
    }
}

extension TextLineScanner {
    /// The bytes of `l` in `range` decoded as UTF-8.
    @inline(__always)
    static func string(_ l: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: l[range]), as: UTF8.self)
    }
}
