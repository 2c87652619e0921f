/// Reads integers and strings with bounds checked, naming the field on failure (in the spirit of
/// swift-nio's `ByteBuffer.readInteger`). Reads either an in-memory block (a decompressed section)
/// or a file through a sliding window, so a large kallsyms never has to be held twice.
struct ByteCursor {
    private(set) var bytes: [UInt8]
    private(set) var position: Int
    let bigEndian: Bool
    /// File offset of `bytes[0]`, so errors name real file offsets.
    private(set) var base: UInt64
    let file: String
    private let source: RandomAccessFile?

    /// A cursor over an in-memory block that began at file offset `base`.
    init(_ bytes: [UInt8], base: UInt64, file: String, bigEndian: Bool = false) {
        self.bytes = bytes
        self.position = 0
        self.base = base
        self.file = file
        self.bigEndian = bigEndian
        self.source = nil
    }

    /// A cursor over a file, starting at `offset`.
    init(file source: RandomAccessFile, at offset: UInt64, bigEndian: Bool = false) {
        self.bytes = []
        self.position = 0
        self.base = offset
        self.file = source.path
        self.bigEndian = bigEndian
        self.source = source
    }

    var fileOffset: UInt64 { base + UInt64(position) }

    func error(_ message: String) -> TraceError {
        TraceError(file: file, offset: fileOffset, message)
    }

    /// Bytes available from the position, after trying to load at least `count` of them.
    private mutating func ensure(_ count: Int) -> Int {
        let have = bytes.count - position
        guard have < count, let source else { return have }
        let start = fileOffset
        guard start < source.size else { return have }
        let want = Int(min(UInt64(max(count, 1 << 20)), source.size - start))
        var window = [UInt8]()
        let n = source.read(at: start, count: want, into: &window)
        window.removeSubrange(n...)
        bytes = window
        base = start
        position = 0
        return n
    }

    mutating func readInteger<T: FixedWidthInteger>(_: T.Type, _ what: String) throws -> T {
        let size = MemoryLayout<T>.size
        let have = ensure(size)
        guard have >= size else {
            throw error("truncated: expected \(size)-byte \(what), found \(have) bytes")
        }
        var value: T = 0
        for i in 0..<size {
            value = (value << 8) | T(bytes[position + (bigEndian ? i : size - 1 - i)])
        }
        position += size
        return value
    }

    mutating func readCString(_ what: String, limit: Int = 1 << 16) throws -> String {
        var scanned = 0
        while true {
            let have = ensure(scanned + 1)
            while scanned < have && scanned < limit {
                if bytes[position + scanned] == 0 {
                    let s = String(decoding: bytes[position..<position + scanned], as: UTF8.self)
                    position += scanned + 1
                    return s
                }
                scanned += 1
            }
            if scanned >= limit || have < scanned + 1 {
                throw error("expected a NUL-terminated \(what)")
            }
        }
    }

    mutating func readBytes(_ count: Int, _ what: String) throws -> [UInt8] {
        guard count >= 0 else { throw error("invalid size \(count) for \(what)") }
        let have = ensure(count)
        guard have >= count else {
            throw error("truncated: expected \(count) bytes of \(what), found \(have)")
        }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    /// Reads the size field of a sized block (at most 2 GiB).
    private mutating func readSize<T: FixedWidthInteger>(_ sizeType: T.Type, _ what: String) throws -> Int {
        let size = try readInteger(T.self, "size of \(what)")
        guard UInt64(size) <= UInt64(Int32.max) else { throw error("implausible size \(size) for \(what)") }
        return Int(size)
    }

    /// Reads a size field and then that many bytes.
    mutating func readSized<T: FixedWidthInteger>(_ sizeType: T.Type, _ what: String) throws -> [UInt8] {
        try readBytes(try readSize(T.self, what), what)
    }

    /// Reads a size field and then that many bytes, with a NUL after them for a C parser. One
    /// allocation, filled straight from the file when the bytes are not in the window: kallsyms
    /// is megabytes, and copying it through the window and again to append the NUL was most of
    /// the time a trace.dat took to open.
    mutating func readSizedCString<T: FixedWidthInteger>(_ sizeType: T.Type, _ what: String) throws -> [UInt8] {
        let count = try readSize(T.self, what)
        let inWindow = bytes.count - position
        let at = fileOffset
        var have = 0
        let out = bytes.withUnsafeBufferPointer { window in
            [UInt8](unsafeUninitializedCapacity: count + 1) { buf, n in
                if inWindow >= count || source == nil {
                    have = min(inWindow, count)
                    buf.baseAddress!.update(from: window.baseAddress! + position, count: have)
                } else {
                    have = source!.read(at: at, count: count, toPointer: UnsafeMutableRawPointer(buf.baseAddress!))
                }
                buf[have] = 0
                n = have + 1
            }
        }
        guard have == count else { throw error("truncated: expected \(count) bytes of \(what), found \(have)") }
        seek(to: at + UInt64(count))
        return out
    }

    mutating func expect(_ literal: String, _ what: String) throws {
        let want = Array(literal.utf8) + [0]
        let offset = fileOffset
        let got = try readBytes(want.count, what)
        guard got == want else {
            let shown = String(decoding: got.prefix(while: { $0 >= 0x20 && $0 < 0x7f }), as: UTF8.self)
            throw TraceError(file: file, offset: offset, "expected \"\(literal)\" (\(what)), found \"\(shown)\"")
        }
    }

    mutating func seek(to offset: UInt64) {
        if offset >= base && offset <= base + UInt64(bytes.count) {
            position = Int(offset - base)
        } else {
            bytes = []
            base = offset
            position = 0
        }
    }
}
