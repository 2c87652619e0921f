import Synchronization

/// An event's kernel stack as readers give it: the frames of a text trace (printed symbolized),
/// or a binary trace's return addresses, symbolized when first read. Raw events and the page
/// events made from them carry one, so a page event's stack is symbolized only if read too.
///
/// Symbolizing needs kallsyms, which libtraceevent parses (~45 ms for a distribution kernel) in
/// the background once a stack is going to be read (`prefetchSymbols`), or when one is read. A
/// stack nobody reads never waits for that parse, and a trace whose stacks nobody reads never
/// parses it.
public struct LazyStack: Sendable {
    /// Frames given as frames (text traces), or taken out of `kernel` to be changed.
    @usableFromInline var given: [StackFrame]
    @usableFromInline var kernel: KernelStack?

    public init(_ frames: [StackFrame] = []) {
        given = frames
    }

    init(kernel: KernelStack) {
        given = []
        self.kernel = kernel
    }

    /// The frames, innermost first (symbolizing them on first read may wait for kallsyms).
    public var frames: [StackFrame] { kernel?.frames ?? given }

    /// Whether there is no frame, without symbolizing. Inlined where it is asked: the analysis
    /// asks it of nearly every event, and a call copied the stack (two retains and releases).
    @inlinable public var isEmpty: Bool {
        if let kernel { return kernel.addresses.isEmpty }
        return given.isEmpty
    }

    /// Starts what symbolizing needs (a binary trace's kallsyms parse) in the background, for a
    /// stack that is going to be read: a reading thread calls it so the stack's reader waits less.
    public func prefetchSymbols() { kernel?.symbolizer.symbols?.prefetch() }

    /// The frames, to change in place.
    var editable: [StackFrame] {
        get { frames }
        _modify {
            if let k = kernel {
                given = k.frames
                kernel = nil
            }
            yield &given
        }
    }
}

/// A binary trace's stack: return addresses, symbolized once, when first read.
@usableFromInline final class KernelStack: @unchecked Sendable {
    /// Return addresses, innermost first.
    @usableFromInline let addresses: [UInt64]
    let symbolizer: StackSymbolizer
    /// Written once, under the symbolizer's lock.
    private var symbolized: [StackFrame]?

    init(addresses: [UInt64], symbolizer: StackSymbolizer) {
        self.addresses = addresses
        self.symbolizer = symbolizer
    }

    /// The frames, symbolized on first use (which may wait for kallsyms).
    var frames: [StackFrame] {
        symbolizer.withCache { cache in
            if let symbolized { return symbolized }
            let frames = addresses.map { cache.frame($0) }
            symbolized = frames
            return frames
        }
    }
}

/// Symbolizes return addresses from a trace's kallsyms, with a cache: stacks repeat the same few
/// hundred addresses, and each lookup is two binary searches and a new string. Any thread may
/// symbolize (the reading one printing events, the analysing one reading a stack).
final class StackSymbolizer: Sendable {
    struct Cache: ~Copyable {
        let symbols: KernelSymbols?
        var frames: [UInt64: StackFrame] = [:]

        mutating func frame(_ addr: UInt64) -> StackFrame {
            if let f = frames[addr] { return f }
            let f: StackFrame
            if let (name, start) = symbols?.function(at: addr) {
                f = StackFrame(symbol: String(cString: name), offset: addr &- start, address: addr)
            } else {
                f = StackFrame(symbol: "0x" + String(addr, radix: 16), address: addr)
            }
            if frames.count < 1 << 16 { frames[addr] = f }
            return f
        }
    }
    private let cache: Mutex<Cache>
    let symbols: KernelSymbols?

    init(symbols: KernelSymbols?) {
        self.symbols = symbols
        cache = Mutex(Cache(symbols: symbols))
    }

    func withCache<R>(_ body: (inout Cache) -> R) -> R {
        cache.withLock { body(&$0) }
    }
}
