import ArgumentParser
import PinScope
import TraceReader

#if canImport(Glibc)
import Glibc
#endif

struct ProfilesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profiles",
        abstract: "List the vocabulary profiles and the events each consumes; --kprobes prints PinScope's kprobe set.",
        discussion: """
        --kprobes prints ready-to-use kprobe_events lines for the running kernel (function names
        checked against /proc/kallsyms), followed by the stacktrace triggers to set:
          pinscope profiles --kprobes | grep -v '^#' > /sys/kernel/tracing/kprobe_events
        """
    )

    @Flag(help: "Print the kprobe set as kprobe_events lines for the running kernel.")
    var kprobes = false

    @Option(help: "Kernel release to print the kprobe set for (default: uname -r).")
    var kernel: String?

    @Option(help: "kallsyms file to check function names against.")
    var kallsyms = "/proc/kallsyms"

    func run() throws {
        let out = OutputBuffer()
        defer { out.flush() }
        if kprobes {
            let release = kernel ?? runningRelease()
            let symbols = loadSymbols(kallsyms)
            if symbols.isEmpty { printError("pinscope: warning: \(kallsyms) unreadable or empty: printing every probe unchecked") }
            let set = KprobeSet.probes(kernel: release.flatMap { KernelVersion(release: $0) },
                                       has: { symbols.isEmpty || symbols.contains($0) })
            out.write("# PinScope kprobe set for kernel \(release ?? "unknown") (\(set.probes.count) probes)")
            for name in set.missing { out.write("# not in this kernel: \(name)") }
            for p in set.probes { out.write(KprobeSet.line(p)) }
            out.write("# then, for each: echo 1 > events/kprobes/NAME/enable; stack traces on the calls:")
            for p in set.probes where p.stack { out.write("#   echo stacktrace > events/kprobes/\(p.name)/trigger") }
            return
        }
        for (profile, text) in Self.descriptions { out.write(profile.rawValue.rightPadded(11) + " " + text) }
    }

    static let descriptions: [(Vocabulary.Profile, String)] = [
        (.tracepoints, """
        writeback:writeback_dirty_folio/page (+ stack: who dirtied), writeback:folio_wait_writeback,
                    filemap:mm_filemap_add/delete_to_page_cache (pfn <-> dev/ino/index), ext4:ext4_writepages
                    (range cleaned), migrate:mm_migrate_pages (reason longterm_pin)
        """),
        (.pageRef, "page_ref:page_ref_mod* (CONFIG_DEBUG_PAGE_REF): a pin is a +1024 step on an order-0 page"),
        (.kprobes, """
        PinScope's kprobe set (pinscope profiles --kprobes): pin_user_pages*/get_user_pages* entry
                    points, try_grab_page/try_grab_folio, gup_put_folio, unpin_user_page*, folio_mkclean,
                    folio_clear_dirty_for_io, __folio_start_writeback, folio_end_writeback, folio_mark_dirty,
                    set_page_dirty_lock, __folio_put, __bio_release_pages, bio_set_pages_dirty,
                    __mmu_notifier_invalidate_range_start/end; KVM: kvm_set_pfn_dirty,
                    kvm_release_pfn_clean, kvm_mmu_notifier_invalidate_range_start/end
        """),
        (.user, "events named in a --map FILE (EVENT KIND key=field ...), see README"),
    ]

    private func runningRelease() -> String? {
        var u = utsname()
        guard uname(&u) == 0 else { return nil }
        return withUnsafeBytes(of: &u.release) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    private func loadSymbols(_ path: String) -> Set<String> {
        guard let text = readWholeFile(path) else { return [] }
        var names = Set<String>()
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count >= 3, parts[1] == "t" || parts[1] == "T" { names.insert(String(parts[2])) }
        }
        return names
    }
}
