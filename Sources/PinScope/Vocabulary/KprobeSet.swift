/// PinScope's own kprobe set: the probes the `kprobes` profile reads, as `kprobe_events` lines.
///
/// Arguments use `$argN` (arch-independent fetch args). `struct page` offsets are the x86_64
/// layout of 5.10–6.x (flags +0, mapping +24, index +32, _refcount +52); `order` (+81) and
/// `_pincount` (+88) are the 6.1 folio layout and are only emitted for 5.17–6.5 kernels.
public enum KprobeSet {
    public struct Probe: Sendable {
        public var name: String
        public var function: String
        public var args: String
        public var isReturn: Bool
        /// Also want a `stacktrace` trigger (the call that tells who is pinning).
        public var stack: Bool
    }

    static let page = "pflags=+0(%1):x64 mapping=+24(%1):x64 index=+32(%1):u64 refcount=+52(%1):s32"
    static let folio = "fflags=+0(%1):x64 mapping=+24(%1):x64 index=+32(%1):u64 refcount=+52(%1):s32"

    /// Probes for a kernel; `has` says whether a function exists (from /proc/kallsyms).
    public static func probes(kernel: KernelVersion?, has: (String) -> Bool) -> (probes: [Probe], missing: [String]) {
        var out: [Probe] = []
        var missing: [String] = []
        let foliolayout = kernel.map { $0 >= KernelVersion(5, 17, 0) && $0 < KernelVersion(6, 6, 0) } ?? false
        func add(_ name: String, _ function: String, _ args: String, ret: String? = nil, stack: Bool = false) {
            guard has(function) else { missing.append(function); return }
            out.append(Probe(name: name, function: function, args: args, isReturn: false, stack: stack))
            if let ret { out.append(Probe(name: name + "_ret", function: function, args: ret, isReturn: true, stack: false)) }
        }
        for api in ["pin_user_pages_fast", "get_user_pages_fast", "pin_user_pages_fast_only", "get_user_pages_fast_only"] {
            add(api, api, "start=$arg1:x64 nr_pages=$arg2:s32 gup_flags=$arg3:x32 pages=$arg4:x64", ret: "ret=$retval:s32", stack: true)
        }
        for api in ["pin_user_pages", "get_user_pages"] {
            add(api, api, "start=$arg1:x64 nr_pages=$arg2:u64 gup_flags=$arg3:x32 pages=$arg4:x64", ret: "ret=$retval:s64", stack: true)
        }
        for api in ["pin_user_pages_unlocked", "get_user_pages_unlocked"] {
            add(api, api, "start=$arg1:x64 nr_pages=$arg2:u64 pages=$arg3:x64 gup_flags=$arg4:x32", ret: "ret=$retval:s64", stack: true)
        }
        for api in ["pin_user_pages_remote", "get_user_pages_remote"] {
            add(api, api, "mm=$arg1:x64 start=$arg2:x64 nr_pages=$arg3:u64 gup_flags=$arg4:x32 pages=$arg5:x64", ret: "ret=$retval:s64", stack: true)
        }
        add("__get_user_pages", "__get_user_pages", "mm=$arg1:x64 start=$arg2:x64 nr_pages=$arg3:u64 gup_flags=$arg4:x32", ret: "ret=$retval:s64")
        let pageArgs = page.replacingPlaceholder("$arg1")
        let folioArgs = folio.replacingPlaceholder("$arg1")
        if has("try_grab_page") {
            add("try_grab_page", "try_grab_page", "page=$arg1:x64 flags=$arg2:x32 " + pageArgs)
        }
        if has("try_grab_folio_fast") {
            add("try_grab_folio", "try_grab_folio_fast", "page=$arg1:x64 refs=$arg2:s32 flags=$arg3:x32 " + pageArgs)
        }
        if has("try_grab_folio") {
            // <= 6.9: try_grab_folio(page, refs, flags); 6.10+: try_grab_folio(folio, refs, flags).
            add("try_grab_folio", "try_grab_folio", "page=$arg1:x64 refs=$arg2:s32 flags=$arg3:x32 " + pageArgs)
        } else if !has("try_grab_folio_fast") {
            missing.append("try_grab_folio")
        }
        add("gup_put_folio", "gup_put_folio", "folio=$arg1:x64 refs=$arg2:s32 flags=$arg3:x32 " + folioArgs
            + (foliolayout ? " order=+81($arg1):u8 pincount=+88($arg1):s32" : ""))
        add("unpin_user_page", "unpin_user_page", "page=$arg1:x64", stack: true)
        add("unpin_user_pages", "unpin_user_pages", "pages=$arg1:x64 npages=$arg2:u64", stack: true)
        add("unpin_user_pages_dirty_lock", "unpin_user_pages_dirty_lock", "pages=$arg1:x64 npages=$arg2:u64 make_dirty=$arg3:u8", stack: true)
        add("unpin_user_page_range_dirty_lock", "unpin_user_page_range_dirty_lock", "page=$arg1:x64 npages=$arg2:u64 make_dirty=$arg3:u8", stack: true)
        add("__folio_put", "__folio_put", "folio=$arg1:x64 " + folioArgs)
        add("folio_mkclean", "folio_mkclean", "folio=$arg1:x64 " + folioArgs, ret: "cleaned=$retval:s32", stack: true)
        add("folio_clear_dirty_for_io", "folio_clear_dirty_for_io", "folio=$arg1:x64 " + folioArgs, ret: "was_dirty=$retval:u8")
        add("__folio_start_writeback", "__folio_start_writeback", "folio=$arg1:x64 keep_write=$arg2:u8 " + folioArgs)
        add("folio_end_writeback", "folio_end_writeback", "folio=$arg1:x64 " + folioArgs)
        add("folio_mark_dirty", "folio_mark_dirty", "folio=$arg1:x64 " + folioArgs, ret: "newly_dirty=$retval:u8")
        add("set_page_dirty_lock", "set_page_dirty_lock", "page=$arg1:x64 " + pageArgs, stack: true)
        add("__bio_release_pages", "__bio_release_pages", "bio=$arg1:x64 mark_dirty=$arg2:u8", stack: true)
        add("bio_set_pages_dirty", "bio_set_pages_dirty", "bio=$arg1:x64", stack: true)
        add("mmu_notifier_invalidate_range_start", "__mmu_notifier_invalidate_range_start",
            "mm=+8($arg1):x64 start=+16($arg1):x64 end=+24($arg1):x64 event=+36($arg1):u32")
        add("mmu_notifier_invalidate_range_end", "__mmu_notifier_invalidate_range_end",
            "mm=+8($arg1):x64 start=+16($arg1):x64 end=+24($arg1):x64")
        // KVM (module symbols; listed as missing until kvm is loaded): the secondary MMU's
        // dirtying under an mmu-notifier invalidation, and the release of hva_to_pfn's reference.
        add("kvm_set_pfn_dirty", "kvm_set_pfn_dirty", "pfn=$arg1:x64", stack: true)
        add("kvm_release_pfn_clean", "kvm_release_pfn_clean", "pfn=$arg1:x64")
        add("kvm_mmu_notifier_invalidate_range_start", "kvm_mmu_notifier_invalidate_range_start",
            "start=+16($arg2):x64 end=+24($arg2):x64 event=+36($arg2):u32")
        add("kvm_mmu_notifier_invalidate_range_end", "kvm_mmu_notifier_invalidate_range_end",
            "start=+16($arg2):x64 end=+24($arg2):x64 event=+36($arg2):u32")
        return (out, missing)
    }

    /// The `kprobe_events` line of a probe.
    public static func line(_ p: Probe) -> String {
        "\(p.isReturn ? "r" : "p"):kprobes/\(p.name) \(p.function) \(p.args)"
    }
}

extension String {
    func replacingPlaceholder(_ with: String) -> String {
        var out = ""
        var rest = self[...]
        while let i = rest.firstIndex(of: "%") {
            out += rest[..<i]
            let next = rest.index(after: i)
            if next < rest.endIndex, rest[next] == "1" {
                out += with
                rest = rest[rest.index(after: next)...]
            } else {
                out.append("%")
                rest = rest[next...]
            }
        }
        return out + rest
    }
}
