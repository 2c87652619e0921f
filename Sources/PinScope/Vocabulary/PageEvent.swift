import TraceReader

/// The canonical events the pin model is built from, whatever the trace called them.
public enum PageEventKind: String, Sendable, CaseIterable {
    case pin, unpin, get, put, refMod, markDirty, mkclean, cleanForIO, mkwrite
    case writebackStart, writebackEnd, waitWriteback, cacheAdd, cacheDelete
    case invalidateStart, invalidateEnd, migrateFail
}

/// What names a page. Keys, strongest first: pfn; `struct page`/folio pointer (converted to a pfn
/// once the vmemmap base is known); (dev, inode, index) for page-cache pages.
public enum PageRef: Hashable, Sendable, CustomStringConvertible {
    case pfn(UInt64)
    case pointer(UInt64)
    case file(dev: UInt64?, ino: UInt64, index: UInt64)
    case range(mm: UInt64, start: UInt64, end: UInt64)

    public var description: String {
        switch self {
        case .pfn(let p): return "pfn 0x" + String(p, radix: 16)
        case .pointer(let p): return "page 0x" + String(p, radix: 16)
        case .file(let dev, let ino, let index):
            return "ino \(ino)\(dev.map { " dev \($0 >> 20):\($0 & 0xfffff)" } ?? "") index \(index)"
        case .range(let mm, let start, let end):
            return "mm 0x\(String(mm, radix: 16)) [0x\(String(start, radix: 16)), 0x\(String(end, radix: 16)))"
        }
    }
}

/// One thing that happened to a page, mapped from a raw event by a vocabulary profile.
public struct PageEvent: Sendable {
    public var kind: PageEventKind
    public var timestampNs: UInt64
    public var cpu: Int
    public var pid: Int32
    public var comm: String
    public var page: PageRef
    /// Other keys the same event gives for the page (e.g. mapping/index beside the pointer).
    public var mapping: UInt64?
    public var index: UInt64?
    /// References taken or dropped (pins count 1 each, whatever the refcount bias).
    public var refs: Int
    /// GUP flags as the kernel passed them (decode with `FollFlagLayout`).
    public var gupFlags: UInt64?
    /// The kernel function the event came from (the probe or tracepoint) and its caller.
    public var api: String
    public var caller: String?
    public var stack: [StackFrame]
    public var locator: TraceLocator
    /// The raw event lost events just before it on its CPU.
    public var afterLostEvents: Bool

    public init(kind: PageEventKind, from e: RawEvent, page: PageRef, api: String, refs: Int = 1,
                gupFlags: UInt64? = nil, mapping: UInt64? = nil, index: UInt64? = nil) {
        self.kind = kind
        timestampNs = e.timestampNs
        cpu = e.cpu
        pid = e.pid
        comm = e.comm
        self.page = page
        self.mapping = mapping
        self.index = index
        self.refs = refs
        self.gupFlags = gupFlags
        self.api = api
        stack = e.stack
        caller = e.stack.first(where: { !Self.tracingFrames.contains($0.symbol) && $0.symbol != api })?.symbol
        locator = e.locator
        afterLostEvents = e.lostBefore != nil
    }

    /// Frames the tracing machinery itself adds on top of a kprobe's stack.
    static let tracingFrames: Set<String> = [
        "kprobe_trace_func", "kprobe_dispatcher", "aggr_pre_handler", "kprobe_ftrace_handler",
        "ftrace_trampoline", "kretprobe_trace_func", "kretprobe_dispatcher", "__kretprobe_trampoline_handler",
        "trace_event_raw_event_writeback_folio_template", "trace_event_raw_event_writeback_page_template",
    ]
}
