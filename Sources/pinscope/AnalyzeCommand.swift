import ArgumentParser
import PinScope
import TraceReader

#if canImport(Glibc)
import Glibc
#endif

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Rebuild every pin's life in a trace and report the pins that corrupt data.",
        discussion: """
        Exit status: 0 no findings at or above --fail-on, 1 findings at or above it (uncertain
        findings never count), 2 unreadable or damaged input (what could be read is still reported).
        """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }
    enum FailOn: String, ExpressibleByArgument, CaseIterable { case error, warning, never }

    @Argument(help: "Trace files: trace.dat (v6/v7), ftrace or trace-cmd text, .gz/.zst text, or - for stdin.")
    var files: [String]

    @Option(name: .shortAndLong, help: "Output format: text or json (schema pinscope.analysis/1).")
    var format: Format = .text

    @Option(help: "Exit 1 when certain findings at or above this severity exist: error, warning or never.")
    var failOn: FailOn = .error

    @Option(help: "Pins held this long are long-term (pin-leak threshold), e.g. 1s, 250ms, 100us.")
    var longterm: String = "1s"

    @Option(help: "Kernel release to decode FOLL_* flags with (default: the trace's uname), e.g. 6.1.0.")
    var kernel: String?

    @Option(name: .customLong("profile"), help: "Vocabulary profile to use (repeatable): \(Vocabulary.Profile.allCases.map(\.rawValue).joined(separator: ", ")). Default: all.")
    var profiles: [String] = []

    @Option(name: .customLong("map"), help: "User mapping file for in-house events (see README).")
    var mapFile: String?

    @Flag(help: "List every finding in text output (default: the first 10 per rule).")
    var all = false

    func run() throws {
        var options = AnalysisOptions()
        guard let ns = parseDuration(longterm) else {
            throw ValidationError("--longterm \(longterm): expected a duration like 1s, 250ms, 100us or 5000ns")
        }
        options.longtermNs = ns
        options.kernel = kernel
        if kernel != nil, KernelVersion(release: kernel!) == nil {
            throw ValidationError("--kernel \(kernel!): expected a release like 6.1.0 or 6.1.0-56-amd64")
        }
        if !profiles.isEmpty {
            var set = Set<Vocabulary.Profile>()
            for p in profiles {
                guard let profile = Vocabulary.Profile(rawValue: p) else {
                    throw ValidationError("--profile \(p): expected one of \(Vocabulary.Profile.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                set.insert(profile)
            }
            options.profiles = set
        }
        let out = OutputBuffer()
        var damaged = false
        var failing = 0
        try withInputErrors {
            if let mapFile {
                guard let text = readWholeFile(mapFile) else { throw TraceError(file: mapFile, "cannot read the mapping file") }
                options.userMap = try UserMapping(text: text, file: mapFile)
            }
            var docs: [JSONValue] = []
            for file in files {
                let source = try TraceInput.open(file)
                let analysis = try Analyzer.analyze(source, options: options)
                switch format {
                case .text:
                    out.write(AnalysisReport.text(analysis, maxPerRule: all ? Int.max : 10))
                    if files.count > 1 { out.write("") }
                case .json:
                    docs.append(AnalysisReport.json(analysis))
                }
                for w in analysis.warnings where analysis.damaged || source.warnings.contains(where: { $0.description == w }) {
                    printError("pinscope: warning: \(w)")
                }
                damaged = damaged || analysis.damaged || !source.warnings.isEmpty
                switch failOn {
                case .error: failing += analysis.certainFindings(atLeast: .error)
                case .warning: failing += analysis.certainFindings(atLeast: .warning)
                case .never: break
                }
            }
            if format == .json { out.write(docs.count == 1 ? docs[0].rendered() : JSONValue.array(docs).rendered()) }
            out.flush()
        }
        if damaged { throw ExitCode(2) }
        if failing > 0 { throw ExitCode(1) }
    }
}

/// "1s", "250ms", "100us", "5000ns", "2" (seconds) -> nanoseconds.
func parseDuration(_ text: String) -> UInt64? {
    let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        guard let v = Double(text.dropLast(suffix.count)), v >= 0 else { return nil }
        return UInt64(v * scale)
    }
    return Double(text).flatMap { $0 >= 0 ? UInt64($0 * 1e9) : nil }
}

func readWholeFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        bytes += buf[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}
