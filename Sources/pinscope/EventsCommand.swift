import ArgumentParser
import CTraceEvent
import TraceReader

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Dump the decoded events of a trace (to check parsing against trace-cmd).",
        discussion: """
        --format raw prints, for a trace.dat, exactly the lines of `trace-cmd report -R FILE`;
        for text traces, one normalized line per event. --format jsonl prints one JSON object per
        event with its fields and attached kernel stack. --stat prints counts per event and per CPU.
        """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case raw, text, jsonl
    }

    @Argument(help: "Trace files: trace.dat (v6/v7), ftrace or trace-cmd text, .gz/.zst text, or - for stdin.")
    var files: [String]

    @Option(name: .shortAndLong, help: "Output format: raw, text or jsonl.")
    var format: Format = .raw

    @Flag(help: "Print counts per event name and per CPU, and the lost-event total.")
    var stat = false

    @Flag(name: .customShort("t"), help: "Print nanosecond timestamps (as trace-cmd report -t).")
    var nanoseconds = false

    func run() throws {
        let out = OutputBuffer()
        var damaged = false
        try withInputErrors {
            defer { out.flush() }
            for file in files {
                let source = try TraceInput.open(file, attachStacks: format == .jsonl && !stat)
                if stat {
                    try printStat(source, file, out)
                } else {
                    try dump(source, out)
                }
                out.flush()
                for w in source.warnings { printError("pinscope: warning: \(w)") }
                damaged = damaged || !source.warnings.isEmpty
            }
        }
        // Damaged input: what could be read was printed, and the status says it was not all.
        if damaged { throw ExitCode(2) }
    }

    private func dump(_ source: RawEventSource, _ out: OutputBuffer) throws {
        if let dat = source as? TraceDatReader, format != .jsonl {
            out.write("cpus=\(dat.dat.cpuCount)")
            while let rec = dat.nextRecord() {
                out.write(dat.reportLine(rec, raw: format == .raw, nanoseconds: nanoseconds))
            }
            return
        }
        while let e = try source.next() {
            switch format {
            case .jsonl: out.write(EventFormatter.jsonLine(e))
            case .raw, .text: out.write(EventFormatter.textLine(e))
            }
        }
    }

    private func printStat(_ source: RawEventSource, _ file: String, _ out: OutputBuffer) throws {
        var perEvent: [String: Int] = [:]
        var perCPU: [Int: Int] = [:]
        var lost: UInt64 = 0
        var unknownLost = 0
        var total = 0
        if let dat = source as? TraceDatReader {
            // Fast path: count by type id (ids are 16-bit) without decoding fields.
            var byID = [Int](repeating: 0, count: 1 << 16)
            var byCPU = [Int](repeating: 0, count: 4096)
            while let rec = dat.nextRecord() {
                byID[Int(UInt16(truncatingIfNeeded: dat.eventID(of: rec)))] &+= 1
                byCPU[Int(rec.pointee.cpu) & 4095] &+= 1
                let missed = rec.pointee.missed_events
                if missed != 0 {
                    if missed > 0 { lost += UInt64(missed) } else { unknownLost += 1 }
                }
                total &+= 1
            }
            for (id, n) in byID.enumerated() where n > 0 {
                let name = dat.eventName(id: Int32(id)).map { "\($0.system):\($0.name)" } ?? "unknown-\(id)"
                perEvent[name, default: 0] += n
            }
            for (cpu, n) in byCPU.enumerated() where n > 0 { perCPU[cpu] = n }
        } else {
            while let e = try source.next() {
                perEvent[e.system.isEmpty ? e.name : "\(e.system):\(e.name)", default: 0] += 1
                perCPU[e.cpu, default: 0] += 1
                if let l = e.lostBefore { if l == UInt64.max { unknownLost += 1 } else { lost += l } }
                total += 1
            }
        }
        out.write("file: \(file) (\(source.info.format.rawValue)\(source.info.fileVersion.map { " v\($0)" } ?? "")\(source.info.compression.map { ", \($0)" } ?? ""))")
        out.write("events: \(total)")
        out.write("lost events: \(lost)\(unknownLost > 0 ? " (+\(unknownLost) drops of unknown size)" : "")")
        out.write("per CPU:")
        for (cpu, n) in perCPU.sorted(by: { $0.key < $1.key }) { out.write("  cpu\(cpu)  \(n)") }
        out.write("per event:")
        for (name, n) in perEvent.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
            out.write("  \(String(n).leftPadded(9))  \(name)")
        }
        for a in source.anomalies.entries {
            out.write("anomaly [\(a.severity.rawValue)] \(a.name): \(a.count)\(a.firstSeen.map { " (first at \($0))" } ?? "")")
        }
    }
}
