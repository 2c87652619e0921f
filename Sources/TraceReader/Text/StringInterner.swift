#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reuses one `String` per distinct short byte sequence (comms, event names, field names), so the
/// text readers do not allocate them again for every event.
/// - Complexity: O(length) per lookup; holds at most `capacity * 3 / 4` entries, after which new
///   sequences are decoded without being kept.
struct StringInterner {
    /// Key bytes of all entries, back to back; slot `i` owns `arena[starts[i] ..< starts[i] + lengths[i]]`.
    private var arena: [UInt8] = []
    private var starts: [Int32]
    private var lengths: [Int32]
    private var values: [String]
    private var count = 0
    private let mask: Int
    let maxLength = 64

    init(capacity: Int = 4096) {
        var size = 16
        while size < capacity { size <<= 1 }
        starts = Array(repeating: 0, count: size)
        lengths = Array(repeating: -1, count: size)
        values = Array(repeating: "", count: size)
        mask = size - 1
        arena.reserveCapacity(size * 16)
    }

    @inline(__always)
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let raw = UnsafeRawPointer(bytes.baseAddress!)
        let n = bytes.count
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(n)
        var i = 0
        while i + 8 <= n {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
            i += 8
        }
        var tail: UInt64 = 0
        if i < n && n >= 8 {
            // The last 8 bytes, some hashed already: one load instead of a loop over the rest.
            tail = raw.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        } else {
            var shift: UInt64 = 0
            while i < n {
                tail |= UInt64(bytes[i]) << shift
                shift += 8
                i += 1
            }
        }
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 29)
    }

    /// The interned string for `bytes`, or a new one when they are not kept (too long, or the
    /// table is full).
    mutating func intern(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let slot = self.slot(bytes)
        return slot >= 0 ? values[slot] : String(decoding: bytes, as: UTF8.self)
    }

    /// The slot of `bytes`, interned if new, or -1 when not kept (empty, too long, or the table
    /// is full). No string is touched: asking costs no reference count.
    mutating func slot(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        let n = bytes.count
        guard n > 0, n <= maxLength else { return -1 }
        var slot = Int(truncatingIfNeeded: Self.hash(bytes)) & mask
        while true {
            let length = Int(lengths[slot])
            if length < 0 { break }
            if length == n {
                let start = Int(starts[slot])
                let same = arena.withUnsafeBufferPointer { sameBytes($0.baseAddress! + start, bytes.baseAddress!, n) }
                if same { return slot }
            }
            slot = (slot + 1) & mask
        }
        guard count < (mask + 1) * 3 / 4 else { return -1 }
        starts[slot] = Int32(arena.count)
        lengths[slot] = Int32(n)
        arena.append(contentsOf: bytes)
        values[slot] = String(decoding: bytes, as: UTF8.self)
        count += 1
        return slot
    }

    /// The string interned in `slot` (from `slot(_:)`).
    @inline(__always)
    func string(at slot: Int) -> String { values[slot] }

    /// Number of slots (an upper bound for slot numbers).
    var slotCount: Int { mask + 1 }

    mutating func intern(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBufferPointer { intern($0) }
    }

    @inline(__always)
    mutating func intern(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        intern(UnsafeBufferPointer(rebasing: line[range]))
    }
}

/// Whether `n` bytes at `a` and `b` are equal. Inlined for the short names and keys of trace
/// lines, which it compares a word at a time: a call to `memcmp` per name cost more than the
/// comparison.
@inline(__always)
func sameBytes(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    var i = 0
    while i + 8 <= n {
        if ra.loadUnaligned(fromByteOffset: i, as: UInt64.self) != rb.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
            return false
        }
        i += 8
    }
    while i < n {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}

extension TextLineScanner {
    /// The bytes of `l` in `range` decoded as UTF-8.
    @inline(__always)
    static func string(_ l: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: l[range]), as: UTF8.self)
    }
}
