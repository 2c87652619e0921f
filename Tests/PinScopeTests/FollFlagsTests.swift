import Foundation
import XCTest
import PinScope
import TestSupport

final class FollFlagsTests: XCTestCase {
    // MARK: KernelVersion

    func testKernelVersionParsing() throws {
        let debian = try XCTUnwrap(KernelVersion(release: "6.1.0-56-amd64"))
        XCTAssertEqual([debian.major, debian.minor, debian.patch], [6, 1, 0])
        let host = try XCTUnwrap(KernelVersion(release: "6.18.44-fc-v769"))
        XCTAssertEqual([host.major, host.minor, host.patch], [6, 18, 44])
        XCTAssertEqual(KernelVersion(release: "5.10.0"), KernelVersion(5, 10, 0))
        XCTAssertEqual(KernelVersion(release: "4.19.0-27-amd64"), KernelVersion(4, 19, 0))
        XCTAssertEqual(KernelVersion(release: "6.8"), KernelVersion(6, 8, 0))
        XCTAssertEqual(host.description, "6.18.44")
        XCTAssertNil(KernelVersion(release: ""))
        XCTAssertNil(KernelVersion(release: "6"))
        XCTAssertNil(KernelVersion(release: "amd64"))
        XCTAssertLessThan(KernelVersion(6, 1, 0), KernelVersion(6, 1, 1))
        XCTAssertLessThan(KernelVersion(6, 9, 0), KernelVersion(6, 10, 0))
        XCTAssertLessThan(KernelVersion(5, 19, 9), KernelVersion(6, 0, 0))
    }

    // MARK: Layout selection

    func testLayoutSelection() {
        XCTAssertEqual(FollFlagLayout.forKernel(release: "6.1.0-56-amd64")?.name, FollFlagLayout.v6_1.name)
        XCTAssertEqual(FollFlagLayout.forKernel(KernelVersion(5, 10, 0))?.name, FollFlagLayout.v5_10.name)
        XCTAssertEqual(FollFlagLayout.forKernel(KernelVersion(6, 2, 16))?.name, FollFlagLayout.v6_2.name)
        XCTAssertEqual(FollFlagLayout.forKernel(KernelVersion(6, 4, 0))?.name, FollFlagLayout.v6_3.name)
        XCTAssertEqual(FollFlagLayout.forKernel(KernelVersion(6, 6, 30))?.name, FollFlagLayout.v6_5.name)
        XCTAssertEqual(FollFlagLayout.forKernel(KernelVersion(6, 8, 0))?.name, FollFlagLayout.v6_5.name)
        XCTAssertEqual(FollFlagLayout.forKernel(KernelVersion(6, 12, 117))?.name, FollFlagLayout.v6_9.name)
        XCTAssertEqual(FollFlagLayout.forKernel(release: "6.18.44-fc-v769")?.name, FollFlagLayout.v6_9.name)
    }

    func testUnknownVersionsHaveNoLayout() {
        XCTAssertNil(FollFlagLayout.forKernel(KernelVersion(2, 6, 32)))
        XCTAssertNil(FollFlagLayout.forKernel(KernelVersion(99, 0, 0)))
        XCTAssertNil(FollFlagLayout.forKernel(release: "4.19.0-27-amd64"))
        XCTAssertNil(FollFlagLayout.forKernel(KernelVersion(6, 0, 0)))   // not read: FOLL_LRU era
        XCTAssertNil(FollFlagLayout.forKernel(KernelVersion(6, 19, 0)))  // newer than anything read
        XCTAssertNil(FollFlagLayout.forKernel(release: "garbage"))
    }

    func testRangesDoNotOverlapAndValuesAreSingleBitsAndUnique() {
        let all = FollFlagLayout.all
        for (i, a) in all.enumerated() {
            for b in all[(i + 1)...] {
                XCTAssertTrue(a.validRange.upperBound <= b.validRange.lowerBound, "\(a) overlaps \(b)")
            }
            var seenValues = Set<UInt64>(), seenFlags = Set<FollFlags>()
            for e in a.entries {
                XCTAssertEqual(e.kernelValue.nonzeroBitCount, 1, "\(a) \(e.name)")
                XCTAssertEqual(e.flag.rawValue.nonzeroBitCount, 1, "\(a) \(e.name)")
                XCTAssertTrue(seenValues.insert(e.kernelValue).inserted, "\(a) duplicate value \(e.name)")
                XCTAssertTrue(seenFlags.insert(e.flag).inserted, "\(a) duplicate flag \(e.name)")
            }
        }
    }

    // MARK: 6.1, against the real guest trace (Debian 6.1.192-2, 6.1.0-56-amd64)

    func testGetUserPagesRemoteFlagsIn61() throws {
        let l = try XCTUnwrap(FollFlagLayout.forKernel(release: "6.1.0-56-amd64"))
        // shared/traces/guest-process_vm/trace_raw.txt:
        //   get_user_pages_remote: (get_user_pages_remote+0x0/0x30) ... gup_flags=0x1 ...
        //   __get_user_pages: (__get_user_pages+0x0/0x660) ... gup_flags=0x2007 ...
        // mm/gup.c (6.1.192): __get_user_pages_remote() passes `gup_flags | FOLL_TOUCH | FOLL_REMOTE`
        // and __get_user_pages_locked() adds FOLL_GET when pages != NULL and !FOLL_PIN.
        // mm.h: FOLL_WRITE 0x01, FOLL_TOUCH 0x02, FOLL_GET 0x04, FOLL_REMOTE 0x2000.
        XCTAssertEqual(l.decode(0x1).flags, .write)
        let d = l.decode(0x2007)
        XCTAssertEqual(d.flags, [.write, .touch, .get, .remote])
        XCTAssertEqual(d.unknownBits, 0)
        XCTAssertEqual(l.names(0x2007), ["FOLL_WRITE", "FOLL_TOUCH", "FOLL_GET", "FOLL_REMOTE"])
        XCTAssertEqual(l.rawValue(for: [.write, .touch, .get, .remote]), 0x2007)
    }

    func testPinUserPagesRemoteFlagsIn61() throws {
        let l = FollFlagLayout.v6_1
        // trace_raw.txt: pin_user_pages_remote gup_flags=0x0 / 0x1 (process_vm_readv / writev), then
        // __get_user_pages and try_grab_page with 0x42002, 0x42003 and 0x42803.
        // mm/gup.c: pin_user_pages_remote() does `gup_flags |= FOLL_PIN` (0x40000),
        // __get_user_pages_remote() adds FOLL_TOUCH (0x02) | FOLL_REMOTE (0x2000); the retry in
        // __get_user_pages_locked() adds FOLL_TRIED (0x800).
        XCTAssertEqual(l.decode(0x42002).flags, [.pin, .touch, .remote])
        XCTAssertEqual(l.decode(0x42003).flags, [.pin, .touch, .remote, .write])
        XCTAssertEqual(l.decode(0x42803).flags, [.pin, .touch, .remote, .write, .tried])
        XCTAssertEqual(l.names(0x42803),
                       ["FOLL_WRITE", "FOLL_TOUCH", "FOLL_TRIED", "FOLL_REMOTE", "FOLL_PIN"])
        for raw: UInt64 in [0x42002, 0x42003, 0x42803] {
            XCTAssertEqual(l.decode(raw).unknownBits, 0)
            XCTAssertFalse(l.decode(raw).flags.contains(.get))
        }
        // FOLL_LONGTERM in 6.1: #define FOLL_LONGTERM	0x10000
        XCTAssertEqual(l.rawValue(for: .longterm), 0x10000)
    }

    /// Every gup_flags / try_grab_page flags value in the real 6.1 capture decodes without unknown
    /// bits, and exactly the calls under pin_user_pages_remote carry FOLL_PIN.
    func testAllFlagsInRealTraceDecodeIn61() throws {
        guard let shared = TestPaths.sharedTraces else { throw XCTSkip("shared/traces not present") }
        let dir = shared.appendingPathComponent("guest-process_vm")
        let version = try String(contentsOf: dir.appendingPathComponent("guest-kernel-version.txt"), encoding: .utf8)
        let release = try XCTUnwrap(version.split(separator: " ").dropFirst(2).first.map(String.init))
        XCTAssertEqual(release, "6.1.0-56-amd64")
        let l = try XCTUnwrap(FollFlagLayout.forKernel(release: release))
        let text = try String(contentsOf: dir.appendingPathComponent("trace_raw.txt"), encoding: .utf8)
        var seen: [String: Set<UInt64>] = [:]
        for line in text.split(separator: "\n") {
            guard let fn = ["__get_user_pages:", "try_grab_page:"].first(where: { line.contains($0) }),
                  let r = line.range(of: fn == "try_grab_page:" ? " flags=0x" : " gup_flags=0x") else { continue }
            let hex = line[r.upperBound...].prefix { $0.isHexDigit }
            seen[fn, default: []].insert(try XCTUnwrap(UInt64(hex, radix: 16)))
        }
        XCTAssertEqual(seen["__get_user_pages:"], [0x2007, 0x42002, 0x42003, 0x42803])
        XCTAssertEqual(seen["try_grab_page:"], [0x2007, 0x42002, 0x42003, 0x42803])
        for raw in seen.values.reduce(into: Set<UInt64>(), { $0.formUnion($1) }) {
            let d = l.decode(raw)
            XCTAssertEqual(d.unknownBits, 0, String(raw, radix: 16))
            XCTAssertTrue(d.flags.contains(.remote))
            // FOLL_GET and FOLL_PIN are mutually exclusive; one of them is always set here.
            XCTAssertNotEqual(d.flags.contains(.get), d.flags.contains(.pin))
        }
    }

    // MARK: Other layouts

    func testLongtermAndPinIn68() throws {
        let l = try XCTUnwrap(FollFlagLayout.forKernel(release: "6.8.0-45-generic"))
        // include/linux/mm_types.h (6.3+): `FOLL_LONGTERM = 1 << 8,`
        // (and tools/testing/selftests/mm: "FOLL_LONGTERM need to be updated to 0x100")
        XCTAssertEqual(l.rawValue(for: .longterm), 0x100)
        XCTAssertEqual(l.decode(0x100).flags, .longterm)
        // mm/internal.h: `FOLL_PIN = 1 << 19,`  `FOLL_TOUCH = 1 << 16,`
        XCTAssertEqual(l.rawValue(for: .pin), 0x80000)
        XCTAssertEqual(l.rawValue(for: .touch), 0x10000)
        // mm_types.h (6.5+): `FOLL_HONOR_NUMA_FAULT = 1 << 12,`
        XCTAssertEqual(l.rawValue(for: .honorNumaFault), 0x1000)
        // 0x10000 was FOLL_LONGTERM in 6.1 but is FOLL_TOUCH in 6.8.
        XCTAssertEqual(l.decode(0x10000).flags, .touch)
        XCTAssertEqual(FollFlagLayout.v6_1.decode(0x10000).flags, .longterm)
        // FOLL_MADV_POPULATE (1 << 22) is 6.9+ in mainline: unknown here.
        XCTAssertEqual(l.decode(0x400000).unknownBits, 0x400000)
        XCTAssertEqual(l.names(0x400101), ["FOLL_WRITE", "FOLL_LONGTERM", "0x400000"])
    }

    func testOtherLayoutsAgainstHeaderLines() {
        // 5.10 mm.h: `#define FOLL_SPLIT 0x80`; 6.1 mm.h: `#define FOLL_NOFAULT 0x80`
        XCTAssertEqual(FollFlagLayout.v5_10.decode(0x80).flags, .split)
        XCTAssertEqual(FollFlagLayout.v6_1.decode(0x80).flags, .nofault)
        XCTAssertEqual(FollFlagLayout.v5_10.rawValue(for: [.pin, .fastOnly]), 0xC0000)
        // 6.2: `#define FOLL_PCI_P2PDMA 0x100000`, `#define FOLL_INTERRUPTIBLE  0x200000`;
        // FOLL_MIGRATION (0x400 in 6.1) is gone.
        XCTAssertEqual(FollFlagLayout.v6_2.decode(0x300000).flags, [.pciP2PDMA, .interruptible])
        XCTAssertNil(FollFlagLayout.v6_2.rawValue(for: .migration))
        XCTAssertEqual(FollFlagLayout.v6_2.decode(0x400).unknownBits, 0x400)
        // 6.3: mm/internal.h `FOLL_UNLOCKABLE = 1 << 21,`; no FOLL_HONOR_NUMA_FAULT yet.
        XCTAssertEqual(FollFlagLayout.v6_3.rawValue(for: .unlockable), 0x200000)
        XCTAssertNil(FollFlagLayout.v6_3.rawValue(for: .honorNumaFault))
        // 6.12 / 6.18: mm/internal.h `FOLL_MADV_POPULATE = 1 << 22,`
        let l = FollFlagLayout.v6_9
        XCTAssertEqual(l.rawValue(for: .madvPopulate), 0x400000)
        // constructed value (not from a trace): FOLL_PIN|FOLL_REMOTE|FOLL_TOUCH|FOLL_UNLOCKABLE|FOLL_WRITE
        XCTAssertEqual(l.names(0x2D0001),
                       ["FOLL_WRITE", "FOLL_TOUCH", "FOLL_REMOTE", "FOLL_PIN", "FOLL_UNLOCKABLE"])
        XCTAssertEqual(l.decode(0).flags, [])
        XCTAssertEqual(l.names(0), [])
        XCTAssertEqual(l.decode(1 << 40).unknownBits, 1 << 40)
    }

    func testFollFlagsNames() {
        XCTAssertEqual(FollFlags([.pin, .write]).names, ["FOLL_WRITE", "FOLL_PIN"])
        XCTAssertEqual(FollFlags([.pin, .longterm]).description, "FOLL_LONGTERM|FOLL_PIN")
        XCTAssertEqual(FollFlags().description, "0")
        XCTAssertEqual(Set(FollFlags.kernelNames.map(\.name)).count, FollFlags.kernelNames.count)
    }
}
