import ArgumentParser
import PinScope
import TraceReader

#if canImport(Glibc)
import Glibc
#endif

@main
struct PinScopeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pinscope",
        abstract: "Rebuild the life of every page pin in a kernel trace and flag the ones that corrupt data.",
        version: PinScopeVersion.string,
        subcommands: [AnalyzeCommand.self, ExplainCommand.self, ProfilesCommand.self, EventsCommand.self]
    )
}

/// Writes to stdout through one buffer: event dumps are millions of lines.
final class OutputBuffer {
    private var buffer: [UInt8] = []
    init() { buffer.reserveCapacity(1 << 16) }

    func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        var done = 0
        buffer.withUnsafeBytes { raw in
            while done < raw.count {
                let n = Glibc.write(1, raw.baseAddress! + done, raw.count - done)
                if n <= 0 { break }
                done += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    deinit { flush() }
}

func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}

/// Runs `body`, mapping unreadable input to exit status 2 with a message naming file and offset.
func withInputErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as TraceError {
        printError("pinscope: error: \(e)")
        throw ExitCode(2)
    }
}
