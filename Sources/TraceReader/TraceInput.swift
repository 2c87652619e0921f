/// Opens any supported trace by content, not by name: trace.dat (v6/v7), kernel or trace-cmd
/// text, gzip- or zstd-compressed text, and stdin (`-`).
public enum TraceInput {
    static let gzipMagic: [UInt8] = [0x1f, 0x8b]
    static let zstdMagic: [UInt8] = [0x28, 0xb5, 0x2f, 0xfd]

    public static func open(_ path: String, attachStacks: Bool = true) throws -> RawEventSource {
        let stream = try DescriptorStream(path: path)
        var head = [UInt8](repeating: 0, count: 16)
        var have = 0
        while have < head.count {
            let n = try head.withUnsafeMutableBytes { try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[have...])) }
            if n == 0 { break }
            have += n
        }
        head.removeSubrange(have...)
        if head.isEmpty {
            throw TraceError(file: path, offset: 0, "empty input: expected a trace.dat file or ftrace text")
        }
        // The magic, or a damaged one still followed by "tracing": trace.dat names what is wrong.
        if head.starts(with: TraceDatFile.magic.prefix(3)) || head.dropFirst(3).starts(with: Array("tracing".utf8)) {
            guard path != "-" else {
                throw TraceError(file: path, offset: 0, "a trace.dat cannot be read from stdin: expected a file path")
            }
            return try TraceDatReader(path: path, attachStacks: attachStacks)
        }
        let raw: ByteStream = PrefixedStream(prefix: head, rest: stream)
        if head.starts(with: gzipMagic) {
            return TextTraceReader(stream: try GzipStream(source: raw, path: path), path: path, attachStacks: attachStacks)
        }
        if head.starts(with: zstdMagic) {
            return TextTraceReader(stream: try ZstdStream(source: raw, path: path), path: path, attachStacks: attachStacks)
        }
        if head.contains(0) {
            throw TraceError(file: path, offset: UInt64(head.firstIndex(of: 0)!),
                             "binary data: expected a trace.dat (magic 17 08 44 \"tracing\"), gzip, zstd or ftrace text")
        }
        return TextTraceReader(stream: raw, path: path, attachStacks: attachStacks)
    }
}
