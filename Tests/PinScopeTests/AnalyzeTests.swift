import Foundation
import TestSupport
import XCTest
@testable import PinScope
import TraceReader

/// Helpers: run the analyzer, read the answer keys.
enum Key {
    static func analyze(_ path: String, kernel: String? = nil, longterm: UInt64? = nil) throws -> Analysis {
        var options = AnalysisOptions()
        options.kernel = kernel
        if let longterm { options.longtermNs = longterm }
        return try Analyzer.analyze(try TraceInput.open(path), options: options)
    }

    static func text(_ relative: String) throws -> String {
        try String(contentsOfFile: TestPaths.sample(relative), encoding: .utf8)
    }

    /// `pfns LABEL va=... pages=N: 0xef34+1 0xef4d+27` -> the pfns, in log order.
    static func pfns(_ log: String, _ label: String) -> [UInt64] {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("pfns \(label) ") }),
              let colon = line.lastIndex(of: ":") else { return [] }
        var out: [UInt64] = []
        for run in line[line.index(after: colon)...].split(separator: " ") {
            let parts = run.split(separator: "+")
            guard parts.count == 2, let first = UInt64(parts[0].dropFirst(2), radix: 16), let n = UInt64(parts[1]) else { continue }
            for i in 0..<n { out.append(first + i) }
        }
        return out
    }

    /// Log lines as (seconds, text).
    static func lines(_ log: String) -> [(t: Double, s: Substring)] {
        log.split(separator: "\n").compactMap { l in
            guard let sp = l.firstIndex(of: " "), let t = Double(l[..<sp]) else { return nil }
            return (t, l)
        }
    }

    /// The guest's kernel release, from the capture's own record.
    static func guestRelease(_ dir: String) throws -> String {
        let v = try text("\(dir)/guest-kernel-version.txt")
        return String(v.split(separator: " ")[2])
    }
}

extension Analysis {
    func findings(_ rule: String) -> [Finding] { findings.filter { $0.rule == rule } }
    var errors: [Finding] { findings.filter { !$0.uncertain && $0.severity == .error } }
}

/// process_vm (6.1, kprobes): a FOLL_PIN|FOLL_WRITE pin from process_vm_writev held while the
/// target's msync cleans the file page.
final class ProcessVMAnalysisTests: XCTestCase {
    func testPinCrossesWritebackThreeTimesOnTwoFilePages() throws {
        let a = try Key.analyze(TestPaths.sample("guest-process_vm/trace-v7zstd.dat"))
        let log = try Key.text("guest-process_vm/workload-ground-truth.log")
        let filePfns = Key.pfns(log, "target-file")
        XCTAssertEqual(filePfns.count, 32)
        // summary.txt: "writeback/mkclean events on a pinned folio (pin crosses writeback): 3 on 2 folios".
        let crossings = a.findings("pin-crosses-writeback")
        XCTAssertEqual(crossings.count, 3)
        XCTAssertEqual(Set(crossings.compactMap(\.page.pfn)).count, 2)
        for f in crossings {
            XCTAssertTrue(filePfns.contains(f.page.pfn ?? 0), "crossing on a page the workload mapped from file F")
            XCTAssertEqual(f.severity, .error)
            XCTAssertFalse(f.uncertain)
            XCTAssertEqual(f.owner?.comm, "process_vm")
            XCTAssertEqual(f.owner?.driver, "process_vm")
            // The pin is the writer's (PROCESS_VM_WRITEV into the file mapping), the clean the target's msync.
            let pinT = Double(f.evidence[0].timestampNs) / 1e9, cleanT = Double(f.evidence[1].timestampNs) / 1e9
            let writev = Key.lines(log).filter { $0.s.contains("PROCESS_VM_WRITEV begin") && $0.s.contains("(file MAP_SHARED)") }
            XCTAssertTrue(writev.contains { $0.t <= pinT && pinT - $0.t < 0.01 }, "pin at \(pinT) inside a logged file writev")
            XCTAssertTrue(Key.lines(log).contains { $0.s.contains("MSYNC begin") && $0.t <= cleanT && cleanT - $0.t < 0.01 })
        }
        // summary.txt: "set-dirty after mkclean while still pinned: 0".
        XCTAssertEqual(a.findings("dirty-after-mkclean").count, 0)
        XCTAssertEqual(a.errors.count, 3)
    }

    func testEveryPinIsReleased() throws {
        let a = try Key.analyze(TestPaths.sample("guest-process_vm/trace-v7zstd.dat"))
        // The log: 40 rounds of 65536 bytes = 16 pages; summary.txt: 40 calls, 640 pages returned.
        let log = try Key.text("guest-process_vm/workload-ground-truth.log")
        let rounds = log.split(separator: "\n").filter { $0.contains("PROCESS_VM_") && $0.contains(" end ret=65536") }.count
        XCTAssertEqual(rounds, 40)
        XCTAssertEqual(a.pins, rounds * 16)
        XCTAssertEqual(a.pinsReleased, rounds * 16)
        XCTAssertEqual(a.pinsHeldAtEnd, 0)
        XCTAssertEqual(a.findings("unbalanced-release").count, 0)
        XCTAssertEqual(a.findings("pin-leak").count, 0)
        XCTAssertEqual(a.vmemmapBase, 0xffffea0000000000)
    }

    /// The kernel's own text of the same run gives the same findings as the trace.dat, once told
    /// the kernel release the text does not carry. It is a second ring buffer of the same run, so
    /// the same events carry timestamps a few microseconds apart: compare without them.
    func testKernelTextAndTraceDatAgree() throws {
        let release = try Key.guestRelease("guest-process_vm")
        let dat = try Key.analyze(TestPaths.sample("guest-process_vm/trace-v7zstd.dat"))
        let text = try Key.analyze(TestPaths.sample("guest-process_vm/trace_raw.txt.zst"), kernel: release)
        XCTAssertEqual(signature(text, times: false), signature(dat, times: false))
        XCTAssertEqual(text.pins, dat.pins)
    }
}

/// What must match between two forms of one capture: rule, severity, page, evidence events and
/// their times at the text form's microsecond resolution.
func signature(_ a: Analysis, times: Bool = true) -> [String] {
    a.findings.map { f in
        "\(f.rule) \(f.severity) \(f.uncertain) pfn=\(f.page.pfn.map { String($0, radix: 16) } ?? "-") "
            + f.evidence.map { $0.event + (times ? "@\(($0.timestampNs + 500) / 1000)" : "") }.joined(separator: ",")
    }.sorted()
}

/// iouring_fixed (6.1): FOLL_LONGTERM pins on anonymous and shmem buffers are fine; io_uring
/// pins the ext4 MAP_SHARED buffer, then refuses it (-EOPNOTSUPP) and unpins.
final class IOUringAnalysisTests: XCTestCase {
    func testLongtermPinsOnTheExt4MappingOnly() throws {
        let a = try Key.analyze(TestPaths.sample("guest-iouring_fixed/trace-v7zstd.dat"))
        let log = try Key.text("guest-iouring_fixed/workload-ground-truth.log")
        XCTAssertTrue(log.contains("REGISTER end ext4-MAP_SHARED ret=-95"))
        let ext4 = Set(Key.pfns(log, "ext4-D"))
        let fine = Set(Key.pfns(log, "anon") + Key.pfns(log, "shmem") + Key.pfns(log, "anon2"))
        XCTAssertEqual(ext4.count, 64)
        XCTAssertEqual(fine.count, 192)
        // summary.txt: pin_user_pages 4 calls, flags 0x10001 (FOLL_WRITE|FOLL_LONGTERM), 256 pages.
        XCTAssertEqual(a.longtermPins, 256)
        XCTAssertEqual(a.pinsReleased, 256)
        let longterm = a.findings("longterm-file-pin")
        XCTAssertEqual(Set(longterm.compactMap(\.page.pfn)), ext4)
        XCTAssertEqual(longterm.count, 64)
        for f in longterm {
            XCTAssertEqual(f.severity, .warning, "released at once by io_uring's refusal: a warning")
            XCTAssertEqual(f.page.backing, .blockFile)
            XCTAssertEqual(f.owner?.driver, "io_uring")
        }
        XCTAssertTrue(a.findings.allSatisfy { !fine.contains($0.page.pfn ?? 0) }, "anon/shmem long-term pins are not findings")
        XCTAssertEqual(a.errors.count, 0)
    }

    /// Cut the trace while anon2 is registered (log: 16.281 PINNED .. 16.786 UNREGISTER): its 64
    /// long-term pins are still held at the end and are pin-leak warnings.
    func testPinsHeldAtTheEndOfACutTraceAreLeaks() throws {
        let log = try Key.text("guest-iouring_fixed/workload-ground-truth.log")
        let anon2 = Set(Key.pfns(log, "anon2"))
        let text = try decompressed("guest-iouring_fixed/trace_raw.txt.zst")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let cut = lines.firstIndex { $0.contains("GT: MUNMAP anon2") }!
        let path = NSTemporaryDirectory() + "pinscope-cut-end.txt"
        try lines[..<cut].joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let a = try Key.analyze(path, kernel: try Key.guestRelease("guest-iouring_fixed"), longterm: 100_000)
        let leaks = a.findings("pin-leak")
        XCTAssertEqual(Set(leaks.compactMap(\.page.pfn)), anon2)
        XCTAssertEqual(a.pinsHeldAtEnd, 64)
        XCTAssertEqual(a.errors.count, 0)
    }
}

/// vmsplice (6.1): read-only FOLL_GET references (gup flags 0) held by a pipe across msync of
/// file pages are not dangerous.
final class VmspliceAnalysisTests: XCTestCase {
    func testReadOnlyReferencesAcrossWritebackAreNotFindings() throws {
        let a = try Key.analyze(TestPaths.sample("guest-vmsplice/trace-v7zstd.dat"))
        let summary = try Key.text("guest-vmsplice/summary.txt")
        XCTAssertTrue(summary.contains("get_user_pages_fast: 3 calls, flags {'0x0': 3}, returned pages total 48"))
        XCTAssertEqual(a.byDriver["vmsplice"]?.gets ?? a.byDriver["direct-io"]?.gets, 48)
        XCTAssertEqual(a.findings.count, 0)
    }
}

/// odirect_shared (6.1): direct-I/O reads (FOLL_GET) into a MAP_SHARED ext4 file while another
/// thread dirties and msyncs/fsyncs it.
final class ODirectSharedAnalysisTests: XCTestCase {
    func testFindingsLieInsideTheLoggedIOAndSyncWindows() throws {
        let a = try Key.analyze(TestPaths.sample("guest-odirect_shared/trace-v7zstd.dat"))
        let log = try Key.text("guest-odirect_shared/workload-ground-truth.log")
        // The log names file B's inode (its pfn line is cut short in the log, so pages go by index).
        XCTAssertTrue(log.contains("B ino=13 "))
        let lines = Key.lines(log)
        // DIO-READ windows with the B page range each one reads into.
        struct Window { var begin: Double; var end: Double; var pages: ClosedRange<UInt64> }
        var reads: [Window] = []
        for (i, l) in lines.enumerated() where l.s.contains("DIO-READ begin") {
            let n = l.s.split(separator: " ").first { $0.hasPrefix("i=") }!
            let end = lines[(i + 1)...].first { $0.s.contains("DIO-READ end \(n) ") }!.t
            let tail = String(l.s[l.s.range(of: "B pages ")!.upperBound...]).dropLast()
            let range = tail.components(separatedBy: "..").compactMap { UInt64($0) }
            reads.append(Window(begin: l.t, end: end, pages: range[0]...range[1]))
        }
        XCTAssertEqual(reads.count, 113, "summary.txt: 113 direct-I/O read bios")
        func syncing(_ t: Double) -> Bool {
            lines.contains { ($0.s.contains("MSYNC begin") || $0.s.contains("FSYNC begin")) && $0.t <= t && t - $0.t < 0.05 }
        }
        let crossings = a.findings("pin-crosses-writeback")
        // summary.txt counts 41 pages cleaned between bio submission and completion; the pin is
        // held from GUP, a little earlier, so at least those.
        XCTAssertGreaterThanOrEqual(Set(crossings.compactMap(\.page.pfn)).count, 41)
        for f in crossings {
            XCTAssertNotNil(f.page.pfn)
            XCTAssertEqual(f.page.ino, 13)
            let index = try XCTUnwrap(f.page.index)
            let t = Double(f.evidence[0].timestampNs) / 1e9
            XCTAssertTrue(reads.contains { $0.begin <= t && t <= $0.end && $0.pages.contains(index) },
                          "reference at \(t) on B page \(index) taken inside a logged DIO-READ of that page")
            if f.evidence.count == 2 { XCTAssertTrue(syncing(Double(f.evidence[1].timestampNs) / 1e9)) }
            XCTAssertEqual(f.owner?.driver, "direct-io")
        }
        // summary.txt: 5 bios re-dirtied at completion via bio_dirty_fn (80 pages), 5 of them
        // with an observed cleaning.
        let completions = a.findings("dirty-after-mkclean").filter { $0.evidence.last?.detail?.contains("completion") ?? false }
        // A bio pointer is reused by later I/Os: one completion = one bio's run of dirtyings.
        var batches = 0
        var last: (bio: Substring?, ns: UInt64)?
        for f in completions.sorted(by: { $0.evidence.last!.timestampNs < $1.evidence.last!.timestampNs }) {
            let bio = f.evidence.last?.detail?.split(separator: " ").last, ns = f.evidence.last!.timestampNs
            if last == nil || last!.bio != bio || ns - last!.ns > 1_000_000 { batches += 1 }
            last = (bio, ns)
        }
        XCTAssertEqual(batches, 5)
        XCTAssertLessThanOrEqual(completions.count, 80)
        for f in completions { XCTAssertEqual(f.page.ino, 13) }
    }
}

/// host-odirect-mmap (6.18, tracepoints and stacks only).
final class HostODirectAnalysisTests: XCTestCase {
    /// ../shared/traces/README.md: direct-I/O completions (`__bio_release_pages` from
    /// `bio_dirty_fn`) re-dirtied pages after fsync writeback had cleaned them since the GUP-time
    /// page_mkwrite, on all 64 pages of inode 5310688. The README's script says 314; the trace
    /// has 315 such stacks (count the `bio_dirty_fn` frames in trace.txt). The 315th is a
    /// kworker stack on CPU 1 printed right after a CPU 0 event (trace.txt line 2907): attached
    /// to the line before it regardless of CPU, it lands on the wrong event.
    func testDirectIOCompletionsDirtyAfterWritebackClean() throws {
        let text = try decompressed("host-odirect-mmap/trace.txt.gz")
        let stacks = text.split(separator: "\n").filter { $0.contains("=> bio_dirty_fn") }.count
        XCTAssertEqual(stacks, 315)
        let a = try Key.analyze(TestPaths.sample("host-odirect-mmap/trace-v7zstd.dat"))
        let completions = a.findings("dirty-after-mkclean").filter { $0.evidence.last?.detail?.contains("completion") ?? false }
        XCTAssertEqual(completions.count, stacks)
        XCTAssertEqual(Set(completions.compactMap(\.page.index)), Set(0..<64))
        XCTAssertTrue(completions.allSatisfy { $0.page.ino == 5310688 && !$0.uncertain })
        // Every finding: GUP-time mkwrite, then an ext4_writepages clean, then the completion.
        for f in completions {
            XCTAssertEqual(f.evidence.map(\.event), ["writeback_dirty_folio", "ext4_writepages", "writeback_dirty_folio"])
        }
        // The rest are submission-time dirtying (bio_set_pages_dirty) of pages cleaned since the GUP.
        let others = a.findings("dirty-after-mkclean").filter { !completions.map(\.evidence.last!.locator).contains($0.evidence.last!.locator) }
        XCTAssertTrue(others.allSatisfy { $0.evidence.last?.detail?.contains("bio_set_pages_dirty") ?? false })
    }

    func testKernelTextAndTraceDatAgree() throws {
        let dat = try Key.analyze(TestPaths.sample("host-odirect-mmap/trace-v7zstd.dat"))
        let text = try Key.analyze(TestPaths.sample("host-odirect-mmap/trace.txt.gz"))
        XCTAssertEqual(signature(text), signature(dat))
        XCTAssertGreaterThan(dat.findings.count, 300)
    }

    /// A buffered-I/O capture (dd + fsync, no GUP at all) gives no findings.
    func testBufferedIOHasNoFindings() throws {
        let a = try Key.analyze(TestPaths.sample("host-buffered-io/trace-v7zstd.dat"))
        XCTAssertGreaterThan(a.pageEvents, 300)
        XCTAssertEqual(a.findings.count, 0)
    }
}

/// A trace that starts in the middle of pins: releases without acquires are uncertain notes,
/// never errors.
final class MidFlightTests: XCTestCase {
    func testTraceStartingMidPinGivesOnlyUncertainNotes() throws {
        let text = try decompressed("guest-process_vm/trace_raw.txt.zst")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        // Start right after the pins of a file writev were taken, before their unpin.
        let pinned = lines.firstIndex { $0.contains("pin_user_pages_remote_ret") && $0.contains("ret=16") }!
        let path = NSTemporaryDirectory() + "pinscope-cut-start.txt"
        try lines[(pinned + 1)...].joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let a = try Key.analyze(path, kernel: try Key.guestRelease("guest-process_vm"))
        let unbalanced = a.findings("unbalanced-release")
        XCTAssertEqual(unbalanced.count, 16, "the 16 pages pinned before the cut")
        XCTAssertTrue(unbalanced.allSatisfy(\.uncertain))
        XCTAssertEqual(a.errors.filter { $0.rule == "unbalanced-release" }.count, 0)
    }
}

/// Lab captures made for the rules the workload captures above do not trigger (the workloads,
/// scenarios and test module are in SampleTraces/lab-extra).
final class RuleEvidenceTests: XCTestCase {
    /// A test driver takes FOLL_GET references with get_user_pages_fast and drops them with
    /// unpin_user_pages (case 3): release-mismatch on exactly the 8 pages the log names, none on
    /// the matched get/put and pin/unpin controls (cases 1, 2).
    func testGetReleasedByUnpinIsAMismatch() throws {
        let a = try Key.analyze(TestPaths.sample("guest-release_mismatch/trace-v7zstd.dat"))
        let log = try Key.text("guest-release_mismatch/workload-ground-truth.log")
        // The case's pfns, as struct page pointers (the lab runs nokaslr: vmemmap 0xffffea0000000000).
        let logged = Set(Key.pfns(log, "case3").map { 0xffff_ea00_0000_0000 + $0 * 64 })
        XCTAssertEqual(logged.count, 8)
        let mismatch = a.findings("release-mismatch")
        XCTAssertEqual(Set(mismatch.compactMap { f -> UInt64? in if case .pointer(let p)? = f.pageRef { return p } else { return nil } }), logged)
        XCTAssertEqual(mismatch.count, 8)
        XCTAssertTrue(mismatch.allSatisfy { $0.message.contains("FOLL_GET reference") && $0.message.contains("unpin_user_pages") })
        XCTAssertTrue(mismatch.allSatisfy { $0.owner?.driver == "pinlab_get_then_unpin" })
        XCTAssertEqual(a.errors.count, 8, a.errors.map(\.message).joined(separator: "\n"))
    }

    /// With ZONE_MOVABLE, io_uring's FOLL_LONGTERM registration migrates the buffer out first.
    /// It fails while a pipe (vmsplice) or a driver pin holds half the pages: the log shows two
    /// refused registrations (-ENOMEM) leaving 16 pages in Movable; the retries succeed.
    func testLongtermPinMigrationFailures() throws {
        let a = try Key.analyze(TestPaths.sample("guest-migrate_longterm/trace-v7zstd.dat"))
        let lines = Key.lines(try Key.text("guest-migrate_longterm/workload-ground-truth.log"))
        var windows: [(begin: Double, end: Double, refused: Bool, name: Substring)] = []
        for (t, l) in lines where l.contains(" REGISTER begin") {
            let name = l.split(separator: " ")[3]
            guard let end = lines.first(where: { $0.t >= t && $0.s.contains("\(name) REGISTER end") }) else { continue }
            windows.append((t, end.t, end.s.contains("ret=-12"), name))
        }
        XCTAssertEqual(windows.filter(\.refused).count, 2)
        let stuck = lines.filter { $0.s.contains("after-failed-register") && $0.s.contains("zones") }
        XCTAssertEqual(stuck.count, 2)
        XCTAssertTrue(stuck.allSatisfy { $0.s.hasSuffix("Movable=16") })
        let found = a.findings("pin-blocks-migration")
        XCTAssertEqual(found.count, 2)
        for f in found {
            let t = Double(f.evidence[0].timestampNs) / 1e9
            let w = windows.first { $0.begin <= t && t <= $0.end }
            XCTAssertEqual(w?.refused, true, "finding at \(t) outside a refused registration")
            XCTAssertTrue(f.message.hasPrefix("16 pages failed to migrate (longterm_pin)"), f.message)
        }
        XCTAssertEqual(a.errors.count, 0)

        // The text report's by-driver table: most references first, ties by name. Two drivers
        // here hold 16 references each (the log's driver pin and the direct-I/O references);
        // their order used to follow the dictionary's, which changes from run to run.
        let text = AnalysisReport.text(a, maxPerRule: 5)
        let rows = text.split(separator: "\n").drop { !$0.contains("by driver:") }.dropFirst()
            .prefix { $0.hasPrefix("    ") }
            .map { row -> (name: String, refs: Int) in
                let words = row.split(separator: " ")
                return (String(words[0]), Int(words[1])! + Int(words[3])!)
            }
        XCTAssertEqual(rows.filter { $0.refs == 16 }.map(\.name), ["direct-io", "pinlab_pin_hold"], text)
        for (a, b) in zip(rows, rows.dropFirst()) {
            XCTAssertTrue(a.refs > b.refs || (a.refs == b.refs && a.name < b.name), "\(a) before \(b)")
        }
    }

    /// A KVM guest writes file K pages 2 and 3 through its stage-2 mapping; each msync's
    /// folio_mkclean invalidates it and KVM dirties the page from the notifier. Round 2 does it
    /// again after round 1's writeback cleaned the pages: double-dirty on exactly those pfns,
    /// the second dirtying inside round 2's MSYNC; no finding for round 3 (vCPU not run).
    func testSecondaryMMUDirtyingTwiceAcrossAClean() throws {
        let a = try Key.analyze(TestPaths.sample("guest-kvm_double_dirty/trace-v7zstd.dat"))
        let log = try Key.text("guest-kvm_double_dirty/workload-ground-truth.log")
        let lines = Key.lines(log)
        // The last pfn listing of file K (the first was taken before the pages were faulted in).
        let listing = Key.pfns(String(lines.last { $0.s.contains("pfns K ") }!.s), "K")
        let written = Set([listing[2], listing[3]])
        func window(_ round: Int) -> ClosedRange<Double> {
            lines.first { $0.s.contains("round \(round): MSYNC begin") }!.t...lines.first { $0.s.contains("round \(round): MSYNC end") }!.t
        }
        let found = a.findings("double-dirty")
        XCTAssertEqual(Set(found.compactMap(\.page.pfn)), written)
        XCTAssertEqual(found.count, 2)
        for f in found {
            XCTAssertTrue(window(1).contains(Double(f.evidence.first!.timestampNs) / 1e9))
            XCTAssertTrue(window(2).contains(Double(f.evidence.last!.timestampNs) / 1e9))
            XCTAssertEqual(f.owner?.driver, "kvm")
        }
        // hva_to_pfn's FOLL_GET references are dropped by kvm_release_pfn_clean: no crossing.
        XCTAssertEqual(a.errors.count, 0, a.errors.map(\.message).joined(separator: "\n"))
    }

    /// Two io_uring rings each register the same THP and hugetlb buffer 3 times: the log's
    /// rings x copies x 512 pages pins on each 2 MiB folio at once, counted exactly (a large
    /// folio's pins since 5.7 add 1 to refcount and pin count, not 1024): far from overflow.
    func testPinCountsOnLargeFolios() throws {
        let a = try Key.analyze(TestPaths.sample("guest-thp_hugetlb/trace-v7zstd.dat"))
        let log = try Key.text("guest-thp_hugetlb/workload-ground-truth.log")
        let words = log.split(whereSeparator: { $0 == " " || $0 == "\n" })
        let copies = try XCTUnwrap(Int(try XCTUnwrap(words.first { $0.hasPrefix("copies=") }).dropFirst(7)))
        let rings = Set(log.split(separator: "\n").filter { $0.contains("REGISTER ring") && $0.contains(" begin") }
            .map { $0.split(separator: " ").first { $0.hasPrefix("ring") }! }).count
        let pages = Key.pfns(log, "thp").count
        XCTAssertEqual(rings * copies * pages, 3072)
        XCTAssertEqual(a.maxPinsOnOnePage?.pins, rings * copies * pages)
        let thpHead = 0xffff_ea00_0000_0000 + Key.pfns(log, "thp")[0] * 64
        let hugetlbHead = 0xffff_ea00_0000_0000 + Key.pfns(log, "hugetlb")[0] * 64
        XCTAssertTrue([PageRef.pointer(thpHead), .pointer(hugetlbHead)].contains(a.maxPinsOnOnePage!.page))
        let h = try XCTUnwrap(a.leastPinHeadroom)
        XCTAssertTrue(h.large)
        XCTAssertEqual(h.pins, Int64(Int32.max) - h.refcount)
        XCTAssertLessThanOrEqual(h.refcount, Int64(rings * copies * pages) + 1)
        XCTAssertEqual(a.findings("pin-overflow-risk").count, 0)
        XCTAssertEqual(a.errors.count, 0)
    }
}

/// The rules the workload captures must not trigger stay silent on all of them; the overflow
/// arithmetic is checked on the real values the captures show (a real overflow needs ~2 million
/// pins on one page, which no capture can hold).
final class QuietRulesTests: XCTestCase {
    func testQuietOnEveryCapture() throws {
        for dir in ["guest-process_vm", "guest-iouring_fixed", "guest-vmsplice", "guest-odirect_shared", "host-odirect-mmap"] {
            let a = try Key.analyze(TestPaths.sample("\(dir)/trace-v7zstd.dat"))
            for rule in ["release-mismatch", "pin-overflow-risk", "double-dirty", "pin-blocks-migration", "unbalanced-release"] {
                XCTAssertEqual(a.findings(rule).count, 0, "\(rule) on \(dir)")
            }
        }
    }

    /// process_vm pins order-0 pages whose refcount the probe reads as 3 before the grab: an
    /// order-0 pin adds GUP_PIN_COUNTING_BIAS, so (2^31-1-3)/1024 = 2097151 more pins fit. A
    /// pre-5.7 kernel gave compound pages the same bias: a 1 GiB page holding a reference per
    /// subpage (262144) plus one is left 2096895; after 5.7 the exact count leaves ~2^31.
    func testOverflowHeadroom() {
        XCTAssertEqual(PinOverflowRisk.headroom(refcount: 3, pincount: nil, large: false, kernel: KernelVersion(6, 1, 0)), 2_097_151)
        XCTAssertEqual(PinOverflowRisk.headroom(refcount: 262_145, pincount: nil, large: true, kernel: KernelVersion(5, 4, 0)), 2_096_895)
        XCTAssertEqual(PinOverflowRisk.headroom(refcount: 262_145, pincount: 0, large: true, kernel: KernelVersion(5, 7, 0)), 2_147_221_502)
        XCTAssertEqual(PinOverflowRisk.headroom(refcount: 2_146_435_073, pincount: nil, large: false, kernel: KernelVersion(6, 1, 0)), 1023)
    }
}

func decompressed(_ relative: String) throws -> String {
    let path = TestPaths.sample(relative)
    let tool = relative.hasSuffix(".zst") ? "zstd" : "gzip"
    let r = try runProcess(TestPaths.which(tool) ?? "/usr/bin/\(tool)", ["-dc", path])
    return r.stdout
}
