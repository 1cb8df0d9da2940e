// Splitting a folder's cases between independent runs (cluster array jobs).
import SegmentCore

/// `--shard i/n`: part i (0-based, as nnU-Net's -part_id) of n of a folder's cases in case order: cases i, i+n, ...
public struct Shard: Equatable, Codable, Sendable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 0, index < count else {
            throw ShardError(message: "--shard \(index)/\(count) is not a shard: use i/n with n >= 1 and 0 <= i < n (e.g. 0/4 ... 3/4).")
        }
        self.index = index; self.count = count
    }

    /// Parses "i/n".
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw ShardError(message: "--shard \(text) is not of the form i/n (e.g. 0/4 ... 3/4: shards are numbered from 0).")
        }
        try self.init(index: i, count: n)
    }

    /// The whole list (shard 0 of 1).
    public static let all = try! Shard(index: 0, count: 1)

    /// The items of this shard, in their order: items[index], items[index + count], ...
    public func select<T>(_ items: [T]) -> [T] {
        stride(from: index, to: items.count, by: count).map { items[$0] }
    }

    public var description: String { "\(index)/\(count)" }
}

/// A shard that is not one (exit 2).
public struct ShardError: SegmentError, Equatable {
    public let message: String
    public var exitCode: ExitStatus { .usage }
    public var description: String { message }
}
