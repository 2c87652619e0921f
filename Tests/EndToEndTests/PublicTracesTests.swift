import Foundation
import TestSupport
import XCTest

/// Traces from other people's machines (SampleTraces/public, provenance in its README).
/// Their trace.dat files are also in TraceDatReaderTests' trace-cmd comparison, which finds every .dat.
final class PublicTracesTests: XCTestCase {
    /// Event lines counted by a plain regular expression over the file, not by PinScope's parser.
    private func independentCount(_ path: String, _ pattern: String) throws -> Int {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let re = try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
        return re.numberOfMatches(in: text, range: NSRange(text.startIndex..., in: text))
    }

    private func statEvents(_ path: String) throws -> Int? {
        let r = try runProcess(TestPaths.pinscope, ["events", "--stat", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return r.stdout.split(separator: "\n").first { $0.hasPrefix("events: ") }.flatMap { Int($0.dropFirst(8)) }
    }

    func testArmTraceCmdReportTextFromLisa() throws {
        let path = TestPaths.sample("public/arm-trace-cmd-report-text-lisa/trace.txt")
        let expected = try independentCount(path, #"^ *.+-[0-9]+ +\[[0-9]{3}\] +[0-9]+\.[0-9]+: "#)
        XCTAssertEqual(expected, 2941)
        XCTAssertEqual(try statEvents(path), expected)
    }

    func testAndroidSystraceHTMLWithTgidColumn() throws {
        let path = TestPaths.sample("public/android-systrace-trappy/trace_surfaceflinger.html")
        let expected = try independentCount(path, #"^ *.+-[0-9]+ +\( *[-0-9]+\) +\[[0-9]{3}\] +\S+ +[0-9]+\.[0-9]+: "#)
        XCTAssertGreaterThan(expected, 2000)
        XCTAssertEqual(try statEvents(path), expected)
    }
}
