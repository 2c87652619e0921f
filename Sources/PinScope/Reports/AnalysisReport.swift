import TraceReader

/// Renders an Analysis as text (for people) or JSON (schema `pinscope.analysis/1`).
public enum AnalysisReport {
    public static let schema = "pinscope.analysis/1"

    // MARK: JSON

    public static func json(_ a: Analysis) -> JSONValue {
        .object([
            ("schema", .string(schema)),
            ("trace", traceJSON(a)),
            ("summary", summaryJSON(a)),
            ("findings", .array(a.findings.map(findingJSON))),
            ("pins", pinsJSON(a)),
            ("anomalies", .array(a.anomalies.entries.map {
                .object([("name", .string($0.name)), ("severity", .string($0.severity.rawValue)),
                         ("count", .uint($0.count)), ("first", .optional($0.firstSeen))])
            })),
            ("warnings", .array(a.warnings.map { .string($0) })),
        ])
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    static func traceJSON(_ a: Analysis) -> JSONValue {
        .object([
            ("file", .string(a.info.file)),
            ("format", .string(a.info.format.rawValue)),
            ("fileVersion", a.info.fileVersion.map { .int(Int64($0)) } ?? .null),
            ("compression", .optional(a.info.compression)),
            ("kernel", .optional(a.kernel)),
            ("follLayout", .optional(a.follLayout)),
            ("clock", .optional(a.info.clock)),
            ("cpus", a.info.cpus.map { .int(Int64($0)) } ?? .null),
            ("first_ts_ns", .optional(a.firstNs)),
            ("last_ts_ns", .optional(a.lastNs)),
            ("vmemmapBase", .optional(a.vmemmapBase.map(hex))),
        ])
    }

    static func summaryJSON(_ a: Analysis) -> JSONValue {
        let tally = a.findingTally
        return .object([
            ("eventsRead", .int(Int64(a.eventsRead))),
            ("pageEvents", .int(Int64(a.pageEvents))),
            ("pagesTracked", .int(Int64(a.pagesTracked))),
            ("peakLivePages", .int(Int64(a.peakLivePages))),
            ("pins", .int(Int64(a.pins))),
            ("pinsReleased", .int(Int64(a.pinsReleased))),
            ("pinsHeldAtEnd", .int(Int64(a.pinsHeldAtEnd))),
            ("longtermPins", .int(Int64(a.longtermPins))),
            ("maxPinsOnOnePage", a.maxPinsOnOnePage.map { m in
                .object([("pins", .int(Int64(m.pins))), ("page", .string(m.page.description))]) } ?? .null),
            ("pinHeadroom", a.leastPinHeadroom.map { h in
                .object([("pins", .int(h.pins)), ("page", .string(h.page.description)), ("refcount", .int(h.refcount)),
                         ("pincount", h.pincount.map { .int($0) } ?? .null), ("largeFolio", .bool(h.large))]) } ?? .null),
            ("gets", .int(Int64(a.gets))),
            ("getsReleased", .int(Int64(a.getsReleased))),
            ("getsDroppedUnseen", .int(Int64(a.getsExpired))),
            ("lostEvents", .uint(a.lostEvents)),
            ("lostAt", .array(a.lostAt.map { .object([("ts_ns", .uint($0.ts)), ("cpu", .int(Int64($0.cpu)))]) })),
            ("unresolvedIdentities", .int(Int64(a.unresolvedIdentities))),
            ("errors", .int(Int64(tally.errors))),
            ("warnings", .int(Int64(tally.warnings))),
            ("uncertain", .int(Int64(tally.uncertain))),
            ("byRule", .object(Rules.all.map { r in
                (r.id, .object([("findings", .int(Int64(a.findingCounts[r.id] ?? 0))),
                                     ("uncertain", .int(Int64(a.uncertainCounts[r.id] ?? 0)))]))
            })),
        ])
    }

    static func pageJSON(_ p: PageInfo) -> JSONValue {
        var m: [(String, JSONValue)] = []
        if let pfn = p.pfn { m.append(("pfn", .uint(pfn))) }
        if let dev = p.dev { m.append(("dev", .string("\(dev >> 20):\(dev & 0xfffff)"))) }
        if let ino = p.ino { m.append(("ino", .uint(ino))) }
        if let index = p.index { m.append(("index", .uint(index))) }
        if let folio = p.folio { m.append(("folio", .string(hex(folio)))) }
        if let backing = p.backing { m.append(("backing", .string(backing.rawValue))) }
        return .object(m)
    }

    static func evidenceJSON(_ e: Evidence) -> JSONValue {
        var m: [(String, JSONValue)] = [("ts_ns", .uint(e.timestampNs)), ("cpu", .int(Int64(e.cpu))),
                                        ("event", .string(e.event)), ("pid", .int(Int64(e.pid))), ("comm", .string(e.comm))]
        if let call = e.call { m.append(("call", .string(call))) }
        if let detail = e.detail { m.append(("detail", .string(detail))) }
        m.append(("at", .string(e.locator.description)))
        return .object(m)
    }

    static func findingJSON(_ f: Finding) -> JSONValue {
        .object([
            ("rule", .string(f.rule)),
            ("severity", .string(f.severity.rawValue)),
            ("uncertain", .bool(f.uncertain)),
            ("message", .string(f.message)),
            ("page", pageJSON(f.page)),
            ("owner", f.owner.map { o in
                .object([("pid", .int(Int64(o.pid))), ("comm", .string(o.comm)), ("driver", .string(o.driver)),
                         ("attributedBy", .string(o.attributedBy.rawValue))])
            } ?? .null),
            ("evidence", .array(f.evidence.map(evidenceJSON))),
        ])
    }

    static let bucketNames = ["<1us", "1us-10us", "10us-100us", "100us-1ms", "1ms-10ms", "10ms-100ms",
                              "100ms-1s", "1s-10s", "10s-100s", ">=100s"]

    static func groupJSON(_ g: PinGroupStats) -> JSONValue {
        .object([
            ("pins", .int(Int64(g.pins))), ("gets", .int(Int64(g.gets))), ("longterm", .int(Int64(g.longterm))),
            ("released", .int(Int64(g.released))),
            ("meanNs", .uint(g.released > 0 ? g.totalNs / UInt64(g.released) : 0)), ("maxNs", .uint(g.maxNs)),
            ("findings", .int(Int64(g.findings))),
        ])
    }

    static func pinsJSON(_ a: Analysis) -> JSONValue {
        .object([
            ("lifetimes", .int(Int64(a.lifetimes))),
            ("meanNs", .uint(a.lifetimes > 0 ? a.totalPinNs / UInt64(a.lifetimes) : 0)),
            ("longest", a.longestPin.map { l in
                .object([("durationNs", .uint(l.durationNs)), ("pid", .int(Int64(l.hold.pid))), ("comm", .string(l.hold.comm)),
                         ("api", .string(l.hold.call ?? l.hold.api)), ("releaseApi", .string(l.releaseAPI)),
                         ("acquired_ts_ns", .uint(l.hold.acquiredNs))])
            } ?? .null),
            ("longtermThresholdNs", .uint(a.longtermNs)),
            ("durationHistogram", .object(zip(bucketNames, a.durationHistogram).map { ($0, .int(Int64($1))) })),
            ("byDriver", .object(a.byDriver.sorted { $0.key < $1.key }.map { ($0.key, groupJSON($0.value)) })),
            ("byBacking", .object(a.byBacking.sorted { $0.key < $1.key }.map { ($0.key, groupJSON($0.value)) })),
        ])
    }

    // MARK: Text

    /// Seconds with microseconds, like the kernel's trace.
    static func seconds(_ ns: UInt64) -> String {
        let us = (ns + 500) / 1000
        let frac = String(us % 1_000_000)
        return "\(us / 1_000_000)." + String(repeating: "0", count: 6 - frac.count) + frac
    }

    static func pageText(_ p: PageInfo) -> String {
        var parts: [String] = []
        if let pfn = p.pfn { parts.append("pfn " + hex(pfn)) }
        if let ino = p.ino { parts.append("ino \(ino)" + (p.index.map { " index \($0)" } ?? "")) }
        if let dev = p.dev { parts.append("dev \(dev >> 20):\(dev & 0xfffff)") }
        if p.pfn == nil, let folio = p.folio { parts.append("page " + hex(folio)) }
        if let b = p.backing, b != .unknown { parts.append(b.rawValue) }
        return parts.isEmpty ? "(no page)" : parts.joined(separator: ", ")
    }

    public static func text(_ a: Analysis, maxPerRule: Int) -> String {
        var out: [String] = []
        var header = "\(a.info.file): \(a.info.format.rawValue)"
        if let v = a.info.fileVersion { header += " v\(v)" }
        if let c = a.info.compression { header += " \(c)" }
        header += ", kernel \(a.kernel ?? "unknown")"
        if let clock = a.info.clock { header += ", clock \(clock)" }
        out.append(header)
        func row(_ label: String, _ value: String) { out.append("  " + label.rightPadded(21) + " " + value) }
        row("events read", "\(a.eventsRead) (\(a.pageEvents) page events)")
        if let f = a.firstNs, let l = a.lastNs { row("time", "\(seconds(f)) .. \(seconds(l)) (\(durationText(l &- f)))") }
        row("pages tracked", "\(a.pagesTracked) (peak \(a.peakLivePages) live)")
        row("pins (FOLL_PIN)", "\(a.pins), \(a.pinsReleased) released, \(a.pinsHeldAtEnd) held at end; long-term \(a.longtermPins)")
        if let m = a.maxPinsOnOnePage, let h = a.leastPinHeadroom {
            row("pin counts", "at most \(m.pins) pin\(m.pins == 1 ? "" : "s") on one page (\(m.page)); closest to overflow: \(h.pins) more pins on \(h.page) (refcount \(h.refcount)\(h.pincount.map { ", pin count \($0)" } ?? "")\(h.large ? ", large folio" : ""))")
        }
        row("GUP refs (FOLL_GET)", "\(a.gets), \(a.getsReleased) released where seen, \(a.getsExpired) dropped unseen (page freed)")
        if a.lifetimes > 0 {
            var s = "mean \(durationText(a.totalPinNs / UInt64(a.lifetimes)))"
            if let l = a.longestPin { s += ", longest \(durationText(l.durationNs)) (\(l.hold.comm) pid \(l.hold.pid), \(l.hold.call ?? l.hold.api))" }
            row("pin lifetimes", s)
        }
        row("lost events", a.lostEvents == 0 ? "0" : "\(a.lostEvents) at " + a.lostAt.prefix(5).map { "\(seconds($0.ts)) cpu\($0.cpu)" }.joined(separator: ", ") + (a.lostAt.count > 5 ? ", ..." : ""))
        row("unresolved identities", "\(a.unresolvedIdentities) page events not tied to a pfn"
            + (a.vmemmapBase.map { "; vmemmap base \(hex($0)) (calibrated)" } ?? ""))
        if !a.byDriver.isEmpty {
            out.append("  by driver:")
            // Most references first; ties by name, so the table reads the same on every run (the
            // dictionary's order changes from run to run).
            for (name, g) in a.byDriver.sorted(by: {
                ($0.value.pins + $0.value.gets, $1.key) > ($1.value.pins + $1.value.gets, $0.key)
            }) {
                var s = "\(g.pins) pins, \(g.gets) gets"
                if g.longterm > 0 { s += ", \(g.longterm) long-term" }
                if g.released > 0 { s += ", mean \(durationText(g.totalNs / UInt64(g.released))), max \(durationText(g.maxNs))" }
                if g.findings > 0 { s += ", \(g.findings) findings" }
                out.append("    " + name.rightPadded(19) + " " + s)
            }
        }
        for w in a.warnings { out.append("warning: \(w)") }
        let tally = a.findingTally
        out.append("")
        out.append("findings: \(tally.errors) errors, \(tally.warnings) warnings, \(tally.uncertain) uncertain")
        for r in Rules.all {
            let fs = a.findings.filter { $0.rule == r.id }
            guard !fs.isEmpty else { continue }
            let pages = Set(fs.compactMap { f -> String? in f.page.pfn.map(hex) ?? f.page.folio.map(hex) ?? f.page.ino.map { "\($0)/\(f.page.index ?? 0)" } }).count
            let uncertain = fs.filter(\.uncertain).count
            out.append("")
            out.append("\(r.id) (\(r.severity.rawValue)): \(fs.count) finding\(fs.count == 1 ? "" : "s") on \(pages) page\(pages == 1 ? "" : "s")"
                       + (uncertain > 0 ? ", \(uncertain) uncertain" : "") + " - \(r.title)")
            for (n, f) in fs.prefix(maxPerRule).enumerated() {
                let tag = f.uncertain ? "uncertain " : (f.severity != r.severity ? "\(f.severity.rawValue) " : "")
                var owner = ""
                if let o = f.owner { owner = "; owner \(o.comm) (pid \(o.pid)), driver \(o.driver) (by \(o.attributedBy.rawValue))" }
                out.append("  [\(n + 1)] \(tag)\(pageText(f.page))\(owner)")
                out.append("      \(f.message)")
                for e in f.evidence {
                    var line = "      \(seconds(e.timestampNs)) cpu\(e.cpu) \(e.comm)-\(e.pid) \(e.event)"
                    if let call = e.call, call != e.event { line += " in \(call)" }
                    if let d = e.detail { line += ": \(d)" }
                    line += "  (\(e.locator))"
                    out.append(line)
                }
            }
            if fs.count > maxPerRule { out.append("  ... and \(fs.count - maxPerRule) more (--all lists every finding)") }
        }
        return out.joined(separator: "\n")
    }
}
