import LLMDStore

/// The events published and not yet committed to the journal: bounded in bytes.
///
/// Publishers fill it under the bus's lock; the journal's thread takes it whole for each
/// commit. Under the soft limit everything is taken in; over it, publishers that may wait
/// (clients' `publish`) wait for a commit; past the hard limit, events that may not wait
/// (a run's, tokens above all) go out live but are left out of the journal, and the gap
/// is counted, to be announced. So neither a flood nor a full disk grows memory without
/// bound, and the token path never waits for the disk.
struct JournalBacklog {
    /// What a record costs beyond its body: its context reference, numbers and slice.
    static let recordOverhead = 64

    /// Events left out of the journal since the last announcement.
    struct Gap: Equatable {
        var count = 0
        var first: UInt64 = 0
        var last: UInt64 = 0

        mutating func add(_ seqs: ClosedRange<UInt64>) {
            if count == 0 { first = seqs.lowerBound }
            last = seqs.upperBound
            count += seqs.count
        }
    }

    let softLimit: Int
    let hardLimit: Int
    private(set) var records: [JournalRecord] = []
    private(set) var bytes = 0
    /// Left out, not yet announced.
    private(set) var gap = Gap()

    init(softLimit: Int, hardLimit: Int) {
        self.softLimit = softLimit
        self.hardLimit = max(softLimit, hardLimit)
    }

    /// Whether a publisher that may wait should wait for a commit first.
    var isOverSoftLimit: Bool { bytes >= softLimit }

    static func size(of records: some Collection<JournalRecord>) -> Int {
        records.reduce(0) { $0 + $1.body.count + recordOverhead }
    }

    /// Makes room for the `count` records of one publication, numbered `seqs`, whose
    /// bodies take `bodyBytes`; past the hard limit, counts them as left out instead.
    ///
    /// - Returns: whether there is room: then each is to be ``add(_:)``ed.
    mutating func reserve(count: Int, bodyBytes: Int, seqs: ClosedRange<UInt64>) -> Bool {
        let size = bodyBytes + count * Self.recordOverhead
        guard bytes + size <= hardLimit else {
            gap.add(seqs)
            return false
        }
        bytes += size
        return true
    }

    /// A record whose room ``reserve(count:bodyBytes:seqs:)`` made.
    mutating func add(_ record: JournalRecord) {
        records.append(record)
    }

    /// Everything waiting, for a commit; the backlog is empty after.
    mutating func take() -> [JournalRecord] {
        defer {
            let count = records.count
            records = []
            records.reserveCapacity(count)
            bytes = 0
        }
        return records
    }

    /// Puts back a batch whose commit failed, before what came since, keeping the newest
    /// within the hard limit: the oldest are left out, and counted.
    mutating func putBack(_ batch: [JournalRecord]) {
        var all = batch + records
        var size = Self.size(of: all)
        var dropped = 0
        while size > hardLimit, dropped < all.count {
            size -= all[dropped].body.count + Self.recordOverhead
            dropped += 1
        }
        if dropped > 0 {
            gap.add(all[0].seq...all[dropped - 1].seq)
            all.removeFirst(dropped)
        }
        records = all
        bytes = size
    }

    /// Records that `seqs`, taken for a commit, were not committed after all.
    mutating func leftOut(_ seqs: ClosedRange<UInt64>) {
        gap.add(seqs)
    }

    /// The gap to announce, now cleared.
    mutating func takeGap() -> Gap? {
        guard gap.count > 0 else { return nil }
        defer { gap = Gap() }
        return gap
    }
}
