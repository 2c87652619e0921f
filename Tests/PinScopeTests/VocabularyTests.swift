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

