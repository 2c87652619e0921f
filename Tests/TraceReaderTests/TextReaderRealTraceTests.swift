import Foundation
import TestSupport
import XCTest
@testable import TraceReader

/// The text readers on real captures (`../shared/traces`), checked against numbers from outside
/// PinScope: the kernel's own `entries-in-buffer` header, an independent regular expression over
/// the file, and trace-cmd's report of the same trace.dat.
final class TextReaderRealTraceTests: XCTestCase {
    /// What an independent reading of a text trace says about each line.
    struct Expected {
        var cpu: Int
        var pid: Int32
        var timestampDigits: String
        var name: String
    }

    struct Independent {
        /// Event lines (not stack records) by 1-based line number.
        var events: [Int: Expected] = [:]
        var eventLines: [Int] = []
        /// Frames (`=> ` lines, text after the arrow) by the line number of the event owning them:
        /// the last event line before the stack record on the same CPU.
        var stacks: [Int: [String]] = [:]
        var stackRecords = 0
        /// `entries-in-buffer` from the header (events plus stack records).
        var entriesInBuffer: Int?
        var cpusHeader: Int?
    }

    static let eventPattern = try! NSRegularExpression(
        pattern: #"^\s*(.*)-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(\d+)\]\s+(?:\S+\s+)?(\d+)\.(\d+):\s+(\S+?):?(?:\s|$)"#)
    static let headerPattern = try! NSRegularExpression(
        pattern: #"entries-in-buffer/entries-written:\s*(\d+)/\d+\s+#P:(\d+)"#)

    /// Reads a text trace with Foundation and a regular expression, nothing of TraceReader.
    static func independent(_ path: String) throws -> Independent {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var result = Independent()
        var lastEventOnCPU: [Int: Int] = [:]
        var currentStackOwner: Int?
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let s = String(line)
            let trimmed = s.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("=>") {
                if let owner = currentStackOwner {
                    var frame = trimmed.dropFirst(2).trimmingCharacters(in: .whitespaces)
                    if let paren = frame.range(of: " (") { frame = String(frame[..<paren.lowerBound]) }
                    result.stacks[owner, default: []].append(frame)
                }
                continue
            }
            currentStackOwner = nil
            let ns = s as NSString
            if s.hasPrefix("#") {
                if let m = headerPattern.firstMatch(in: s, range: NSRange(location: 0, length: ns.length)) {
                    result.entriesInBuffer = Int(ns.substring(with: m.range(at: 1)))
                    result.cpusHeader = Int(ns.substring(with: m.range(at: 2)))
                }
                continue
            }
            guard let m = eventPattern.firstMatch(in: s, range: NSRange(location: 0, length: ns.length)) else { continue }
            let cpu = Int(ns.substring(with: m.range(at: 3)))!
            if s.contains("<stack trace") {
                result.stackRecords += 1
                currentStackOwner = lastEventOnCPU[cpu]
                if let owner = currentStackOwner { result.stacks[owner] = [] }
                continue
            }
            lastEventOnCPU[cpu] = number
            result.eventLines.append(number)
            // Syscalls print as `sys_x(a: 1, ...)` and `sys_x -> 0x0`: events sys_enter_x, sys_exit_x.
            var name = ns.substring(with: m.range(at: 6))
            if name.hasPrefix("sys_"), let paren = name.firstIndex(of: "(") {
                name = "sys_enter_" + name[name.index(name.startIndex, offsetBy: 4)..<paren]
            } else if name.hasPrefix("sys_"), s.contains(": \(name) -> ") {
                name = "sys_exit_" + name.dropFirst(4)
            }
            result.events[number] = Expected(
                cpu: cpu, pid: Int32(ns.substring(with: m.range(at: 2)))!,
                timestampDigits: ns.substring(with: m.range(at: 4)) + ns.substring(with: m.range(at: 5)),
                name: name)
        }
        return result
    }

    static func readAll(_ path: String) throws -> ([RawEvent], TextTraceReader) {
        let reader = try TextTraceReader(path: path)
        var events: [RawEvent] = []
        while let e = try reader.next() { events.append(e) }
        return (events, reader)
    }

    /// Kernel `trace` files: the event count equals `entries-in-buffer` minus the stack records,
    /// and every event's CPU, pid, timestamp, name and stack equal an independent reading.
    func testKernelTextAgreesWithTheKernelHeaderAndAnIndependentReading() throws {
        guard let shared = TestPaths.sharedTraces else { throw XCTSkip("../shared/traces not present") }
        var files = ["host-odirect-mmap/trace.txt"]
        for dir in try FileManager.default.contentsOfDirectory(atPath: shared.path).sorted() where dir.hasPrefix("guest-") {
            files.append("\(dir)/trace_raw.txt")
        }
        var checked = 0
        for rel in files {
            let path = shared.appendingPathComponent(rel).path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            checked += 1
            let expected = try Self.independent(path)
            let (events, reader) = try Self.readAll(path)
            let entries = try XCTUnwrap(expected.entriesInBuffer, rel)
            XCTAssertEqual(events.count, entries - expected.stackRecords, rel)
            XCTAssertEqual(events.count, expected.eventLines.count, rel)
            XCTAssertEqual(reader.unparsableLines, 0, rel)
            XCTAssertEqual(reader.info.format, .kernelText, rel)
            XCTAssertEqual(reader.info.cpus, expected.cpusHeader, rel)
            XCTAssertEqual(reader.parsedLines, entries, rel)
            XCTAssertEqual(events.filter { !$0.stack.isEmpty }.count, expected.stackRecords, rel)
            XCTAssertEqual(events.compactMap(\.locator.line), expected.eventLines, rel)
            for e in events {
                guard let line = e.locator.line, let x = expected.events[line] else {
                    XCTFail("\(rel): event at unexpected line \(e.locator)")
                    continue
                }
                XCTAssertEqual(e.cpu, x.cpu, "\(rel):\(line)")
                XCTAssertEqual(e.pid, x.pid, "\(rel):\(line)")
                XCTAssertEqual(String(e.timestampNs / 1000), String(x.timestampDigits.drop(while: { $0 == "0" })), "\(rel):\(line)")
                XCTAssertEqual(e.name, x.name, "\(rel):\(line)")
                XCTAssertEqual(e.stack.map(\.description), expected.stacks[line] ?? [], "\(rel):\(line)")
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    /// The first stack of the host capture, against the file's text as it stands.
    func testFirstHostStackBelongsToTheWritebackDirtyFolioBeforeIt() throws {
        guard let shared = TestPaths.sharedTraces else { throw XCTSkip("../shared/traces not present") }
        let path = shared.appendingPathComponent("host-odirect-mmap/trace.txt").path
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let stackAt = try XCTUnwrap(lines.firstIndex { $0.hasSuffix("<stack trace>") })
        let owner = lines[stackAt - 1]
        let frames = lines[(stackAt + 1)...].prefix { $0.hasPrefix(" => ") }.map { String($0.dropFirst(4)) }
        let (events, _) = try Self.readAll(path)
        let first = try XCTUnwrap(events.first { !$0.stack.isEmpty })
        XCTAssertEqual(first.locator.line, stackAt)  // 1-based line of the event before the stack
        XCTAssertTrue(owner.contains(" \(first.name): "))
        XCTAssertEqual(first.stack.map(\.symbol), frames)
        XCTAssertEqual(first.stack.first?.symbol, "trace_event_raw_event_writeback_folio_template")
    }

    /// A whole real file, fed in random chunks, and its first part one byte at a time.
    func testRealFileFedInChunksGivesTheSameEvents() throws {
        guard let shared = TestPaths.sharedTraces else { throw XCTSkip("../shared/traces not present") }
        let path = shared.appendingPathComponent("guest-vmsplice/trace_raw.txt").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) missing") }
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let whole = try readText(bytes).0.map { describeTextEvent($0) }
        XCTAssertGreaterThan(whole.count, 1000)
        XCTAssertEqual(try readText(bytes, feed: .random(seed: 42)).0.map { describeTextEvent($0) }, whole)
        XCTAssertEqual(try readText(bytes, feed: .random(seed: 7), bufferSize: 64).0.map { describeTextEvent($0) }, whole)
        // One byte at a time over the first 150 KB, cut at a line end.
        var cut = min(bytes.count, 150_000)
        while cut > 0 && bytes[cut - 1] != 0x0A { cut -= 1 }
        let head = Array(bytes[..<cut])
        let headWhole = try readText(head).0.map { describeTextEvent($0) }
        XCTAssertEqual(try readText(head, feed: .oneByte).0.map { describeTextEvent($0) }, headWhole)
        XCTAssertEqual(Array(whole.prefix(headWhole.count - 1)), Array(headWhole.dropLast()))
    }

    /// `trace-cmd report` and `report -R` of one trace.dat: counts from trace-cmd's own text, and
    /// the two forms agree event by event (kprobe addresses, kretprobe order, stacks).
    func testTraceCmdReportAndRawAgree() throws {
        guard let shared = TestPaths.sharedTraces else { throw XCTSkip("../shared/traces not present") }
        guard let traceCmd = TestPaths.which("trace-cmd") else { throw XCTSkip("trace-cmd not installed") }
        let dat = shared.appendingPathComponent("guest-process_vm/trace-v6.dat").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pinscope-text-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var texts: [String: String] = [:]
        for (name, args) in [("report", ["report", dat]), ("raw", ["report", "-R", dat])] {
            let r = try runProcess(traceCmd, args)
            XCTAssertEqual(r.status, 0)
            let file = dir.appendingPathComponent("\(name).txt").path
            try r.stdout.write(toFile: file, atomically: true, encoding: .utf8)
            texts[name] = file
        }
        let expected = try Self.independent(texts["report"]!)
        let (report, reportReader) = try Self.readAll(texts["report"]!)
        let (raw, rawReader) = try Self.readAll(texts["raw"]!)
        XCTAssertEqual(reportReader.info.format, .traceCmdReport)
        XCTAssertEqual(rawReader.info.format, .traceCmdReportRaw)
        XCTAssertEqual(reportReader.unparsableLines, 0)
        XCTAssertEqual(rawReader.unparsableLines, 0)
        XCTAssertEqual(report.count, expected.eventLines.count)
        XCTAssertEqual(report.filter { !$0.stack.isEmpty }.count, expected.stackRecords)
        XCTAssertGreaterThan(expected.stackRecords, 0)

        // Frames with their addresses, as printed: `=> sym (ffffffff811f55d5)`.
        for e in report where !e.stack.isEmpty {
            let printed = try XCTUnwrap(expected.stacks[e.locator.line!])
            XCTAssertEqual(e.stack.map(\.symbol), printed)
            XCTAssertTrue(e.stack.allSatisfy { $0.address != nil })
        }

        // -R prints kernel_stack as an event: remove those and the two forms line up.
        let rawEvents = raw.filter { $0.name != "kernel_stack" }
        XCTAssertEqual(raw.count - rawEvents.count, expected.stackRecords)
        XCTAssertEqual(rawEvents.count, report.count)
        var kprobes = 0, kretprobes = 0
        for (a, b) in zip(report, rawEvents) {
            XCTAssertEqual(a.timestampNs, b.timestampNs)
            XCTAssertEqual(a.cpu, b.cpu)
            XCTAssertEqual(a.pid, b.pid)
            XCTAssertEqual(a.comm, b.comm)
            XCTAssertEqual(a.name, b.name)
            if let sym = a[field: "__probe_sym"], b[field: "__probe_ip"] != nil {
                XCTAssertEqual(sym, b[field: "__probe_ip"])
                kprobes += 1
            }
            if let caller = a[field: "__probe_caller"] {
                XCTAssertEqual(a[field: "__probe_func"], b[field: "__probe_func"])
                XCTAssertEqual(caller, b[field: "__probe_ret_ip"])
                kretprobes += 1
            }
            // Fields the formatted text also prints as key=value hold the same values.
            for f in a.fields where !f.name.hasPrefix("__probe") {
                if let v = b[field: f.name], v != f.value, a.name.hasPrefix("writeback") == false {
                    XCTAssertEqual(v.unsignedValue, f.value.unsignedValue, "\(a.name).\(f.name)")
                }
            }
        }
        XCTAssertGreaterThan(kprobes, 100)
        XCTAssertGreaterThan(kretprobes, 100)
    }
}
