import Foundation
import TestSupport
import XCTest
@testable import TraceReader

/// The kernel's text and trace-cmd's trace.dat of one ring buffer must give the same events.
final class FormsAgreeTests: XCTestCase {
    func testKernelTextAndTraceDatOfTheHostCaptureAgreeEventForEvent() throws {
        let text = try TraceInput.open(TestPaths.sample("host-odirect-mmap/trace.txt.gz"))
        let dat = try TraceInput.open(TestPaths.sample("host-odirect-mmap/trace-v7zstd.dat"))
        var count = 0, framesCompared = 0, fieldsCompared = 0
        while true {
            let a = try text.next(), b = try dat.next()
            guard let a, let b else {
                XCTAssertNil(a, "text has more events than the trace.dat")
                XCTAssertNil(b, "trace.dat has more events than the text")
                break
            }
            count += 1
            let at = "event \(count) (\(a.locator))"
            // The kernel prints microseconds rounded to nearest (ns2usecs adds 500).
            XCTAssertEqual(a.timestampNs / 1000, (b.timestampNs + 500) / 1000, at)
            XCTAssertEqual(a.cpu, b.cpu, at)
            XCTAssertEqual(a.pid, b.pid, at)
            XCTAssertEqual(a.name, b.name, at)
            XCTAssertEqual(a.stack.map(\.symbol), b.stack.map(\.symbol), at)
            framesCompared += a.stack.count
            // Fields both forms name: the text's printed value equals the binary one.
            for f in a.fields {
                guard let binary = b[field: f.name]?.unsignedValue, let printed = f.value.unsignedValue else { continue }
                XCTAssertEqual(printed, binary, "\(at) field \(f.name)")
                fieldsCompared += 1
            }
            if count > 20_000 { break }
        }
        // The kernel text's header: entries-in-buffer 11068, of which the stack records join their event.
        XCTAssertGreaterThan(count, 5000)
        XCTAssertGreaterThan(framesCompared, 10_000)
        XCTAssertGreaterThan(fieldsCompared, 10_000)
    }
}
