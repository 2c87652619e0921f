import TraceReader

/// Which driver or subsystem a reference belongs to, and how that was decided.
public struct Attribution: Sendable, Hashable {
    public enum Basis: String, Sendable {
        /// A `[module]` frame, or a known in-kernel user's symbol, in the kernel stack.
        case stack
        /// The symbol that called the GUP entry point (no stack frame named a known user).
        case caller
        /// Only the task's comm was left.
        case comm
    }

    public var driver: String
    public var basis: Basis

    public init(driver: String, basis: Basis) {
        self.driver = driver
        self.basis = basis
    }

    /// Known in-kernel GUP users, by a symbol that appears in their stacks. Checked in stack
    /// order, innermost first, so the most specific user wins.
    static let knownUsers: [(symbol: String, driver: String)] = [
        ("ib_umem_get", "rdma"), ("vfio_pin_pages", "vfio"), ("vfio_iommu_type1_pin_pages", "vfio"),
        ("vaddr_get_pfns", "vfio"), ("io_pin_pages", "io_uring"), ("io_sqe_buffers_register", "io_uring"),
        ("hva_to_pfn", "kvm"), ("hva_to_pfn_slow", "kvm"), ("kvm_set_pfn_dirty", "kvm"),
        ("process_vm_rw_core", "process_vm"), ("iter_to_pipe", "vmsplice"), ("vmsplice_to_pipe", "vmsplice"),
        ("get_arg_page", "exec"), ("get_futex_key", "futex"),
        ("__bio_release_pages", "direct-io"), ("bio_dirty_fn", "direct-io"), ("bio_set_pages_dirty", "direct-io"),
        ("bio_iov_iter_get_pages", "direct-io"), ("iomap_dio_bio_iter", "direct-io"),
        ("__blkdev_direct_IO", "direct-io"), ("__blkdev_direct_IO_simple", "direct-io"),
        ("__iov_iter_get_pages_alloc", "direct-io"), ("iov_iter_extract_pages", "direct-io"),
        ("amdgpu_ttm_tt_get_user_pages", "amdgpu-userptr"), ("i915_gem_userptr_get_pages", "i915-userptr"),
    ]

    /// Generic layers a driver frame is looked for beyond.
    static let genericPrefixes = ["__get_user_pages", "get_user_pages", "pin_user_pages", "internal_get_user_pages",
                                  "__gup", "gup_", "try_grab", "follow_", "faultin_page", "handle_mm_fault",
                                  "unpin_user_page", "iov_iter", "__iov_iter", "bio_", "__bio", "submit_bio",
                                  "blk_", "entry_SYSCALL", "do_syscall", "__x64_sys", "__do_sys",
                                  "trace_", "kprobe", "ftrace", "__kretprobe", "aggr_pre_handler"]

    /// The attribution for an event's stack, the API's caller, and the task.
    static func attribute(stack: [StackFrame], caller: String?, comm: String) -> Attribution {
        for frame in stack {
            if let module = frame.module, !module.isEmpty { return Attribution(driver: module, basis: .stack) }
            if let user = knownUsers.first(where: { frame.symbol == $0.symbol || frame.symbol.hasPrefix($0.symbol + ".") }) {
                return Attribution(driver: user.driver, basis: .stack)
            }
        }
        if let caller, !caller.isEmpty {
            let base = caller.split(separator: ".").first.map(String.init) ?? caller
            if let user = knownUsers.first(where: { $0.symbol == base }) { return Attribution(driver: user.driver, basis: .caller) }
            return Attribution(driver: base, basis: .caller)
        }
        return Attribution(driver: comm, basis: .comm)
    }

    /// The first frame that is neither tracing machinery nor the probed function itself.
    static func firstInterestingFrame(_ stack: [StackFrame], skipping api: String) -> String? {
        stack.first(where: { !tracingFrames.contains($0.symbol) && $0.symbol != api })?.symbol
    }

    /// Frames the tracing machinery itself adds on top of a kprobe's or tracepoint's stack.
    static let tracingFrames: Set<String> = [
        "kprobe_trace_func", "kprobe_dispatcher", "aggr_pre_handler", "kprobe_ftrace_handler",
        "ftrace_trampoline", "kretprobe_trace_func", "kretprobe_dispatcher", "__kretprobe_trampoline_handler",
        "trace_event_raw_event_writeback_folio_template", "trace_event_raw_event_writeback_page_template",
        "trace_event_raw_event_writeback_folio_wait_writeback", "ftrace_regs_caller", "ftrace_caller",
    ]
}
