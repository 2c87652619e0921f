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

/// Pin lifetimes on the process_vm capture against the workload's own numbers.
final class LedgerTests: XCTestCase {
    func testEveryPinOfTheProcessVMWorkloadIsReleased() throws {
        let source = try TraceInput.open(TestPaths.sample("guest-process_vm/trace-v7zstd.dat"))
        var vocabulary = Vocabulary(kernelRelease: source.info.kernelRelease)
        var ledger = Ledger()
        while let e = try source.next() {
            vocabulary.map(e) { ledger.apply($0) }
        }
        // The log: 40 rounds of process_vm_readv/writev of 65536 bytes = 16 pages each; every
        // pin_user_pages_remote call (summary.txt: 40 calls, 640 pages returned) is unpinned.
        let log = try String(contentsOfFile: TestPaths.sample("guest-process_vm/workload-ground-truth.log"), encoding: .utf8)
        let rounds = log.split(separator: "\n").filter { $0.contains("PROCESS_VM_") && $0.contains(" end ret=65536") }.count
        XCTAssertEqual(rounds, 40)
        XCTAssertEqual(ledger.pinsAcquired, rounds * 16)
        XCTAssertEqual(ledger.pinsReleased, rounds * 16)
        XCTAssertEqual(ledger.releasesWithoutAcquire, 0)
        // summary.txt: "max outstanding pins on one folio: 1; folios still pinned at end of trace: 0".
        XCTAssertEqual(ledger.pages.values.filter { $0.holds.contains { $0.kind == .pin } }.count, 0)
        XCTAssertEqual(ledger.lifetimeCount, rounds * 16)
        XCTAssertEqual(ledger.longestPin?.hold.comm, "process_vm")
    }
}
