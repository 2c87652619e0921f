#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CZlib
import CZstd

/// A file read by offset (`pread`), for trace.dat: nothing is loaded that is not asked for.
final class RandomAccessFile {
    let path: String
    private let fd: Int32
    let size: UInt64

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw TraceError(file: path, "cannot open: \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            throw TraceError(file: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        size = UInt64(st.st_size)
    }

    deinit { close(fd) }

    /// Another descriptor for the same file, with the kernel told it will be read in order.
    /// Each CPU's ring-buffer data gets one: the kernel keeps read-ahead state per open file, and
    /// two CPUs' streams read in turn through one descriptor look like random reads to it.
    func sequentialTwin() -> RandomAccessFile? {
        guard let twin = try? RandomAccessFile(path: path) else { return nil }
        _ = posix_fadvise(twin.fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        return twin
    }

    /// Reads up to `count` bytes at `offset` into `buffer` (resized); returns how many were read.
    @discardableResult
    func read(at offset: UInt64, count: Int, into buffer: inout [UInt8]) -> Int {
        if buffer.count < count { buffer = [UInt8](repeating: 0, count: count) }
        var done = 0
        buffer.withUnsafeMutableBytes { raw in
            while done < count {
                let n = pread(fd, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n <= 0 { break }
                done += n
            }
        }
        return done
    }

    /// Reads up to `count` bytes at `offset` into memory the caller owns.
    @discardableResult
    func read(at offset: UInt64, count: Int, toPointer pointer: UnsafeMutableRawPointer) -> Int {
        var done = 0
        while done < count {
            let n = pread(fd, pointer + done, count - done, off_t(offset) + off_t(done))
            if n <= 0 { break }
            done += n
        }
        return done
    }

    /// Reads exactly `count` bytes at `offset`, or throws naming what was expected there.
    func readExactly(at offset: UInt64, count: Int, what: String) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let n = read(at: offset, count: count, into: &buffer)
        guard n == count else {
            throw TraceError(file: path, offset: offset,
                             "truncated: expected \(count) bytes of \(what), found \(n)")
        }
        return buffer
    }
}

/// A source of bytes read front to back: a file, a pipe, stdin, or a decompressor over one.
protocol ByteStream: AnyObject {
    /// Fills `buffer` from its start; returns the count, 0 at end of stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

final class DescriptorStream: ByteStream {
    let fd: Int32
    let path: String
    private let owns: Bool

    init(path: String) throws {
        self.path = path
        if path == "-" {
            fd = 0
            owns = false
        } else {
            fd = open(path, O_RDONLY)
            owns = true
            guard fd >= 0 else { throw TraceError(file: path, "cannot open: \(String(cString: strerror(errno)))") }
        }
    }

    deinit { if owns { close(fd) } }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw TraceError(file: path, "read failed: \(String(cString: strerror(errno)))")
        }
    }
}

/// Bytes already read (sniffed) put back in front of a stream.
final class PrefixedStream: ByteStream {
    private var prefix: [UInt8]
    private var position = 0
    private let rest: ByteStream

    init(prefix: [UInt8], rest: ByteStream) {
        self.prefix = prefix
        self.rest = rest
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if position < prefix.count {
            let n = min(buffer.count, prefix.count - position)
            prefix.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
            }
            position += n
            return n
        }
        return try rest.read(into: buffer)
    }
}

/// Streaming gzip (and zlib) decompression; concatenated gzip members are read through.
final class GzipStream: ByteStream {
    private let source: ByteStream
    private let path: String
    private var zs = z_stream()
    private var input = [UInt8](repeating: 0, count: 1 << 16)
    private var consumed: UInt64 = 0
    /// True between members (and before the first byte): end of input here is a clean end.
    private var atMemberBoundary = true

    init(source: ByteStream, path: String) throws {
        self.source = source
        self.path = path
        let rc = inflateInit2_(&zs, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw TraceError(file: path, "zlib initialisation failed (\(rc))") }
    }

    deinit { inflateEnd(&zs) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var produced = 0
        return try input.withUnsafeMutableBytes { inBuf in
            while produced == 0 {
                if zs.avail_in == 0 {
                    let n = try source.read(into: inBuf)
                    if n == 0 {
                        if atMemberBoundary { return 0 }
                        throw TraceError(file: path, offset: consumed,
                                         "truncated gzip data: expected more compressed bytes")
                    }
                    zs.next_in = inBuf.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    zs.avail_in = uInt(n)
                }
                atMemberBoundary = false
                zs.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                zs.avail_out = uInt(buffer.count)
                let before = zs.avail_in
                let rc = inflate(&zs, Z_NO_FLUSH)
                consumed += UInt64(before - zs.avail_in)
                produced = buffer.count - Int(zs.avail_out)
                if rc == Z_STREAM_END {
                    atMemberBoundary = true
                    inflateReset(&zs)
                } else if rc != Z_OK && rc != Z_BUF_ERROR {
                    throw TraceError(file: path, offset: consumed, "corrupt gzip data (zlib error \(rc))")
                }
            }
            return produced
        }
    }
}

/// Streaming zstd decompression.
final class ZstdStream: ByteStream {
    private let source: ByteStream
    private let path: String
    private let ctx: OpaquePointer
    private var input = [UInt8](repeating: 0, count: 1 << 17)
    private var inBuf = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
    private var consumed: UInt64 = 0
    private var lastResult = 0
    private var finished = false

    init(source: ByteStream, path: String) throws {
        self.source = source
        self.path = path
        guard let ctx = ZSTD_createDStream() else { throw TraceError(file: path, "zstd initialisation failed") }
        self.ctx = ctx
        ZSTD_initDStream(ctx)
    }

    deinit { ZSTD_freeDStream(ctx) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if finished { return 0 }
        var out = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
        while out.pos == 0 {
            if inBuf.pos >= inBuf.size {
                let n = try input.withUnsafeMutableBytes { try source.read(into: $0) }
                if n == 0 {
                    finished = true
                    if lastResult != 0 {
                        throw TraceError(file: path, offset: consumed,
                                         "truncated zstd data: expected the rest of a frame")
                    }
                    return 0
                }
                inBuf = ZSTD_inBuffer(src: nil, size: n, pos: 0)
            }
            let rc = input.withUnsafeBytes { raw -> Int in
                inBuf.src = UnsafeRawPointer(raw.baseAddress!)
                let before = inBuf.pos
                let rc = ZSTD_decompressStream(ctx, &out, &inBuf)
                consumed += UInt64(inBuf.pos - before)
                return rc
            }
            if ZSTD_isError(rc) != 0 {
                throw TraceError(file: path, offset: consumed,
                                 "corrupt zstd data: \(String(cString: ZSTD_getErrorName(rc)))")
            }
            lastResult = rc
        }
        return out.pos
    }
}

/// One-shot decompression of a trace.dat v7 block.
enum BlockDecompressor {
    case none, zlib, zstd

    init?(name: String) {
        switch name {
        case "none", "": self = .none
        case "zlib": self = .zlib
        case "zstd": self = .zstd
        default: return nil
        }
    }

    /// Decompresses `input` into exactly `expected` bytes; nil when the data is corrupt.
    func decompress(_ input: UnsafeRawBufferPointer, expected: Int) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: expected)
        let ok: Bool = output.withUnsafeMutableBytes { out in
            switch self {
            case .none:
                guard input.count == expected else { return false }
                if expected > 0 { out.baseAddress!.copyMemory(from: input.baseAddress!, byteCount: expected) }
                return true
            case .zlib:
                var destLen = uLongf(expected)
                let rc = uncompress(out.baseAddress!.assumingMemoryBound(to: Bytef.self), &destLen,
                                    input.baseAddress!.assumingMemoryBound(to: Bytef.self), uLong(input.count))
                return rc == Z_OK && Int(destLen) == expected
            case .zstd:
                let rc = ZSTD_decompress(out.baseAddress, expected, input.baseAddress, input.count)
                return ZSTD_isError(rc) == 0 && rc == expected
            }
        }
        return ok ? output : nil
    }
}

/// Splits a byte stream into lines (`\n`, with `\r\n` handled), tracking line numbers and offsets.
/// - Complexity: O(1) amortized per byte; holds one buffer, never the whole stream.
final class LineReader {
    private let stream: ByteStream
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var eof = false
    private(set) var lineNumber = 0
    /// Offset (in the decompressed stream) of the line last returned.
    private(set) var lineOffset: UInt64 = 0
    private var consumedBefore: UInt64 = 0

    init(stream: ByteStream, bufferSize: Int = 1 << 18) {
        self.stream = stream
        buffer = [UInt8](repeating: 0, count: bufferSize)
    }

    /// Calls `body` with each next line's bytes (without the line end) until it returns true;
    /// false when the input ended first. One call serves many lines: most lines of a large
    /// trace are skipped, and a call per line was a tenth of reading them.
    @inline(__always)
    func scan(_ body: (UnsafeBufferPointer<UInt8>) throws -> Bool) throws -> Bool {
        while true {
            let done = try buffer.withUnsafeBufferPointer { buf -> Bool in
                let base = buf.baseAddress!
                while start < end, let p = memchr(base + start, 0x0A, end - start) {
                    let nl = base.distance(to: p.assumingMemoryBound(to: UInt8.self))
                    if try line(buf, to: nl, next: nl + 1, body) { return true }
                }
                guard eof, start < end else { return false }
                return try line(buf, to: end, next: end, body)
            }
            if done { return true }
            if eof { return false }
            try refill()
        }
    }

    /// Calls `body` with the line from `start` to `lineEnd` (a CR before it dropped), and moves
    /// on to `next`.
    @inline(__always)
    private func line(_ buf: UnsafeBufferPointer<UInt8>, to lineEnd: Int, next: Int,
                      _ body: (UnsafeBufferPointer<UInt8>) throws -> Bool) throws -> Bool {
        var lineEnd = lineEnd
        if lineEnd > start && buf[lineEnd - 1] == 0x0D { lineEnd -= 1 }
        lineNumber += 1
        lineOffset = consumedBefore + UInt64(start)
        let s = start
        start = next
        return try body(UnsafeBufferPointer(rebasing: buf[s..<lineEnd]))
    }

    private func refill() throws {
        if start > 0 {
            let remaining = end - start
            buffer.withUnsafeMutableBufferPointer { buf in
                if remaining > 0 {
                    UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: buf.baseAddress! + start, byteCount: remaining)
                }
            }
            consumedBefore += UInt64(start)
            start = 0
            end = remaining
        }
        if end == buffer.count { buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count)) }
        let n = try buffer.withUnsafeMutableBytes { raw in
            try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[end...]))
        }
        if n == 0 { eof = true } else { end += n }
    }
}
