import Foundation
import Synchronization
import TestSupport
import XCTest
@testable import TraceReader

/// trace.dat reading, checked against trace-cmd (a peer tool) and the capture's own metadata.
final class TraceDatReaderTests: XCTestCase {
    /// `pinscope events --format raw` must print what `trace-cmd report -R` prints, line for line.
    func testRawDumpEqualsTraceCmdReportForEveryTraceDat() throws {
        guard let traceCmd = TestPaths.which("trace-cmd") else { throw XCTSkip("trace-cmd not installed") }
        let files = TestPaths.allTraceDats
        XCTAssertGreaterThanOrEqual(files.count, 3)
        for file in files {
            // Debian's trace-cmd has no zlib: compare a zlib file with its twin of the same capture.
            var peerInput = file
            if file.hasSuffix("v7zlib.dat") {
                let dir = (file as NSString).deletingLastPathComponent
                peerInput = ["trace-v6.dat", "trace-v7zstd.dat"].map { "\(dir)/\($0)" }
                    .first { FileManager.default.fileExists(atPath: $0) } ?? file
            }
            let peer = try runProcess(traceCmd, ["report", "-R", peerInput])
            XCTAssertEqual(peer.status, 0, "trace-cmd failed on \(peerInput)")
            let ours = try runProcess(TestPaths.pinscope, ["events", "--format", "raw", file])
            XCTAssertEqual(ours.status, 0, "pinscope failed on \(file): \(ours.stderr)")
            let a = ours.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            let b = peer.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            XCTAssertEqual(a.count, b.count, "\(file): line count differs from trace-cmd report -R")
            if let i = (0..<min(a.count, b.count)).first(where: { a[$0] != b[$0] }) {
                XCTFail("\(file): line \(i + 1) differs\n ours: \(a[i])\ntrace-cmd: \(b[i])")
            }
        }
    }

    /// Header facts come from the file's options, as trace-cmd dump shows them.
    func testHeaderMetadataOfAGuestCapture() throws {
        let dat = try TraceDatFile(path: TestPaths.sample("guest-process_vm/trace-v7zstd.dat"))
        XCTAssertEqual(dat.version, 7)
        XCTAssertEqual(dat.cpuCount, 2)
        XCTAssertEqual(dat.info.clock, "mono")
        XCTAssertEqual(dat.info.compression?.hasPrefix("zstd"), true)
        // The guest's uname, as its own capture recorded it in guest-kernel-version.txt.
        let recorded = try String(contentsOfFile: TestPaths.sample("guest-process_vm/guest-kernel-version.txt"), encoding: .utf8)
        XCTAssertEqual(dat.info.kernelRelease, "6.1.0-56-amd64")
        XCTAssertTrue(recorded.contains(dat.info.kernelRelease!))
    }

    /// kallsyms is parsed on a background thread. A file dropped while that runs must not leave
    /// the thread waiting for itself: before the fix, each such drop kept one dispatch worker
    /// forever, and a few dozen of them left no thread for the next parse, so this loop hung.
    func testFilesDroppedWhileKallsymsIsParsedDoNotHang() throws {
        let path = TestPaths.sample("guest-process_vm/trace-v7zstd.dat")
        let finished = DispatchSemaphore(value: 0)
        let failure = Mutex<Error?>(nil)
        Thread.detachNewThread {
            do {
                // Each file starts its parse (as a stack about to be read does) and is dropped.
                for _ in 0..<200 { try TraceDatFile(path: path).symbols?.prefetch() }
                let dat = try TraceDatFile(path: path)
                XCTAssertNil(dat.symbols?.parsed, "parsed though no stack was read")
                dat.symbols?.prefetch()
                XCTAssertEqual(dat.symbols?.parsed, true)
            } catch {
                failure.withLock { $0 = error }
            }
            finished.signal()
        }
        XCTAssertEqual(finished.wait(timeout: .now() + 120), .success, "opening and dropping trace.dat files hung")
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// The zlib and zstd forms of one capture decode to the same events, stacks attached.
    func testZlibAndZstdFormsYieldTheSameEvents() throws {
        let a = try collect(TestPaths.sample("guest-process_vm/trace-v7zstd.dat"))
        let b = try collect(TestPaths.sample("guest-process_vm/trace-v7zlib.dat"))
        XCTAssertEqual(a.count, b.count)
        XCTAssertTrue(zip(a, b).allSatisfy { $0.timestampNs == $1.timestampNs && $0.name == $1.name && $0.fields == $1.fields && $0.stack == $1.stack })
    }

    /// Stack records are attached to the event before them: the answer is in trace-cmd's own
    /// report, where each `kernel_stack` line follows its event on the same CPU.
    func testKernelStacksAttachToTheirEvent() throws {
        let events = try collect(TestPaths.sample("guest-process_vm/trace-v7zstd.dat"))
        XCTAssertFalse(events.contains { $0.name == "kernel_stack" }, "every stack should have found its event")
        let first = try XCTUnwrap(events.first { !$0.stack.isEmpty })
        // trace-cmd report: the first stack follows get_user_pages_remote and names it as frame 6.
        XCTAssertEqual(first.name, "get_user_pages_remote")
        XCTAssertEqual(first.stack.count, 12)
        XCTAssertEqual(first.stack[0].symbol, "kprobe_trace_func")
        XCTAssertEqual(first.stack[5].symbol, "get_user_pages_remote")
        XCTAssertEqual(first.stack[6].symbol, "get_arg_page")
        // summary.txt (an independent tally of the same capture) counts 361 kernel_stack records.
        let summary = try String(contentsOfFile: TestPaths.sample("guest-process_vm/summary.txt"), encoding: .utf8)
        let stacks = summary.split(separator: "\n").first { $0.hasSuffix(" kernel_stack") }
            .flatMap { Int($0.split(separator: " ").first ?? "") }
        XCTAssertEqual(events.filter { !$0.stack.isEmpty }.count, stacks)
    }

    /// Fields are typed by the event's format: kprobe arguments as numbers.
    func testKprobeFieldsAreTyped() throws {
        let events = try collect(TestPaths.sample("guest-process_vm/trace-v7zstd.dat"))
        let pin = try XCTUnwrap(events.first { $0.name == "pin_user_pages_remote" })
        XCTAssertEqual(pin.system, "kprobes")
        XCTAssertNotNil(pin[field: "gup_flags"]?.unsignedValue)
        XCTAssertEqual(pin[field: "nr_pages"]?.unsignedValue, 16)
    }

    /// Reading a field by position, and a plain integer straight from the record, give what the
    /// field's decoded value gives: for every field of every event of every sample trace.dat.
    func testFieldsByPositionAgreeWithDecodedFields() throws {
        var checked = 0
        for path in TestPaths.allTraceDats where path.contains("SampleTraces") {
            let r = try TraceDatReader(path: path)
            while let e = try r.next() {
                for (i, field) in e.fields.enumerated() {
                    XCTAssertEqual(e.fieldIndex(named: field.name).map { e[fieldAt: $0] }, field.value, "\(path): \(e.name).\(field.name)")
                    guard e.fieldIndex(named: field.name) == i else { continue }
                    XCTAssertEqual(e.unsignedField(at: i), field.value.unsignedValue, "\(path): \(e.name).\(field.name)")
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 100_000)
    }

    private func collect(_ path: String) throws -> [RawEvent] {
        let r = try TraceDatReader(path: path)
        var out: [RawEvent] = []
        while let e = try r.next() { out.append(e) }
        XCTAssertTrue(r.warnings.isEmpty, "\(r.warnings)")
        return out
    }
}
