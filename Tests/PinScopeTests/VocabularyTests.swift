import Foundation
import TestSupport
import XCTest
@testable import PinScope
import TraceReader

/// The kprobe vocabulary and page identity on the process_vm guest capture, checked against the
/// workload's own log (the pfns of every buffer it pinned) and the lab's notes on the guest.
final class VocabularyTests: XCTestCase {
    /// `pfns target-anon ... : 0xef34+1 0xef3e+1 ...` -> the set of pfns the log lists.
    private func loggedPfns(_ log: String, _ label: String) -> Set<UInt64> {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("pfns \(label) ") }),
              let colon = line.lastIndex(of: ":") else { return [] }
        var out = Set<UInt64>()
        for run in line[line.index(after: colon)...].split(separator: " ") {
            let parts = run.split(separator: "+")
            guard parts.count == 2, let first = UInt64(parts[0].dropFirst(2), radix: 16), let n = UInt64(parts[1]) else { continue }
            for i in 0..<n { out.insert(first + i) }
        }
        return out
    }

    /// The reading thread's extractor reads fields at the positions it learned per event type;
    /// the analysis reads them by name. Both give the same values for every event of every
    /// sample, in both forms (the kernel's text prints filemap's inode and device as words,
    /// which the extractor leaves to the analysis).
    func testFieldsByPositionAreTheFieldsByName() throws {
        let root = TestPaths.samples.path
        let texts = (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
            .filter { ["trace.txt", "trace_raw.txt", "ftrace.txt"].contains(($0 as NSString).lastPathComponent.split(separator: ".").prefix(2).joined(separator: ".")) }
            .sorted().map { root + "/" + $0 }
        XCTAssertGreaterThanOrEqual(texts.count, 3, "\(texts)")
        var binary = 0, text = 0, leftToAnalysis = 0
        for path in TestPaths.allTraceDats + texts {
            let source = try TraceInput.open(path)
            let extractor = Vocabulary.Extractor()
            while let e = try source.next() {
                let handler = Vocabulary.handlers[e.name]
                let byName = Vocabulary.extract(e, handler)
                guard let byPosition = extractor(e) else {
                    XCTAssertFalse(e.isBinary, "\(e.locator)")
                    leftToAnalysis += 1
                    continue
                }
                for (a, b, what) in [(byPosition.file.pfn, byName.file.pfn, "pfn"), (byPosition.file.ino, byName.file.ino, "ino"),
                                     (byPosition.file.index, byName.file.index, "index"), (byPosition.file.dev, byName.file.dev, "dev"),
                                     (byPosition.rangeStart, byName.rangeStart, "range_start"), (byPosition.rangeEnd, byName.rangeEnd, "range_end")] {
                    XCTAssertEqual(a, b, "\(e.locator) \(e.name) \(what)")
                }
                guard handler != nil else { continue }
                if e.isBinary { binary += 1 } else { text += 1 }
            }
        }
        XCTAssertGreaterThan(binary, 1_000)
        XCTAssertGreaterThan(text, 1_000)
        XCTAssertGreaterThan(leftToAnalysis, 100)
    }

    /// Rules are dispatched through tables indexed by `ordinal`: a wrong or repeated ordinal
    /// would hand events to the wrong rules.
    func testKindOrdinalsArePositionsInAllCases() {
        XCTAssertEqual(PageEventKind.allCases.map(\.ordinal), Array(PageEventKind.allCases.indices))
    }

    func testPinsLandOnThePagesTheWorkloadLogged() throws {
        let source = try TraceInput.open(TestPaths.sample("guest-process_vm/trace-v7zstd.dat"))
        var vocabulary = Vocabulary(kernelRelease: source.info.kernelRelease)
        XCTAssertNotNil(vocabulary.foll, "6.1 has a FOLL_* layout")
        var pinnedPointers = Set<UInt64>()
        while let e = try source.next() {
            vocabulary.map(e) { p in
                if p.kind == .pin, p.comm == "process_vm", case .pointer(let ptr) = p.page { pinnedPointers.insert(ptr) }
            }
        }
        // The lab boots the guest with nokaslr and 4-level paging: struct page * = 0xffffea0000000000 + pfn*64
        // (../shared/traces/README.md). PinScope must find that base from the trace alone.
        XCTAssertEqual(vocabulary.identity.vmemmapBase, 0xffffea0000000000)
        let pinnedPfns = Set(pinnedPointers.compactMap { vocabulary.identity.pfn(ofPointer: $0) })
        XCTAssertEqual(pinnedPfns.count, pinnedPointers.count)
        let log = try String(contentsOfFile: TestPaths.sample("guest-process_vm/workload-ground-truth.log"), encoding: .utf8)
        let expected = loggedPfns(log, "target-anon").union(loggedPfns(log, "target-file"))
        XCTAssertEqual(expected.count, 64)
        XCTAssertEqual(pinnedPfns, expected, "FOLL_PIN pins should be exactly the workload's 64 buffer pages")
    }
}

