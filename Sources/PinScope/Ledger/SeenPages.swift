/// The distinct pages a trace names, counted once per key. Pfns are bits in chunks of 32 K pfns
/// (4 KiB each), found through a table of chunks: checking a pfn probes a table of a few hundred
/// chunks, which stays in cache, where a table of every page seen (tens of thousands) cost a cache
/// miss per page event. Other keys (pointers, file indexes) go in a hash table.
/// - Complexity: O(1) per insert. Memory: 4 KiB per 128 MiB of physical memory the pages are in
///   (at most 16 MiB), plus the other keys; inserts stop at `limit` keys.
struct SeenPages {
    private static let chunkShift: UInt64 = 15
    private static let wordsPerChunk = (1 << Int(chunkShift)) / 64
    /// 16 MiB of bits, for 512 GiB of pages.
    private static let maxChunks = 4096
    /// Chunk number (pfn >> chunkShift) → its first word in `bits`.
    private var chunks = HashTable<UInt64, Int>()
    private var bits: [UInt64] = []
    private var others = PageTable<Bool>(minimumCapacity: 64)
    private var pfns = 0
    let limit: Int

    init(limit: Int) { self.limit = limit }

    var count: Int { pfns + others.count }

    /// Counts `key` unless it was counted before (or the limit is reached).
    mutating func insert(_ key: PageRef) {
        guard count < limit else { return }
        guard case .pfn(let pfn) = key else {
            others.insert(key, true)
            return
        }
        let chunk = pfn >> Self.chunkShift
        let base: Int
        if let b = chunks[chunk] {
            base = b
        } else if chunks.count >= Self.maxChunks {
            // Pfns spread over more memory than any machine has (a corrupt trace): one entry each.
            others.insert(key, true)
            return
        } else {
            base = bits.count
            bits += repeatElement(0, count: Self.wordsPerChunk)
            chunks[chunk] = base
        }
        let bit = Int(pfn & ((1 << Self.chunkShift) - 1))
        let mask: UInt64 = 1 << UInt64(bit & 63)
        bits.withUnsafeMutableBufferPointer { w in
            let i = base + bit >> 6
            if w[i] & mask == 0 {
                w[i] |= mask
                pfns += 1
            }
        }
    }
}
