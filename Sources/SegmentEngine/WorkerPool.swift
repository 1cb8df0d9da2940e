// A fixed pool of `threads - 1` worker threads plus the calling thread. The engine's only parallelism:
// The engine runs its own GEMM kernels on these threads only, so `threads` bounds every thread doing work.
import Foundation
import SegmentKernels

final class WorkerPool {
    /// Number of threads that run tasks (the caller included).
    let threads: Int
    private let shared: Shared

    /// What the workers see: the pool itself is never referenced by them, so it can be freed while they wait.
    private final class Shared {
        var job: ((Int) -> Void)?
        var stopping = false
        let start: [DispatchSemaphore]
        let done = DispatchSemaphore(value: 0)
        /// The work counter of `dynamic`, on a cache line of its own (calls are never nested).
        let next: UnsafeMutablePointer<Int32>
        init(workers: Int) {
            start = (0..<workers).map { _ in DispatchSemaphore(value: 0) }
            let raw = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
            next = raw.bindMemory(to: Int32.self, capacity: 16)
            next.initialize(to: 0)
        }
        deinit { next.deallocate() }
    }

    init(threads: Int) {
        precondition(threads >= 1)
        self.threads = threads
        let shared = Shared(workers: threads - 1)
        self.shared = shared
        for slot in 1..<threads {
            let thread = Thread {
                let start = shared.start[slot - 1]
                while true {
                    start.wait()
                    if shared.stopping { shared.done.signal(); return }
                    shared.job!(slot)
                    shared.done.signal()
                }
            }
            thread.name = "segment-engine-\(slot)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Stops the workers and waits until every one has left its loop.
    deinit {
        shared.stopping = true
        for s in shared.start { s.signal() }
        for _ in shared.start { shared.done.wait() }
    }

    /// Runs `body(slot)` once on each of the `threads` threads (slot 0 is the caller) and returns when all are done.
    func onEachThread(_ body: (Int) -> Void) {
        if threads == 1 { body(0); return }
        withoutActuallyEscaping(body) { body in
            shared.job = body
            for s in shared.start { s.signal() }
            body(0)
            for _ in shared.start { shared.done.wait() }
            shared.job = nil
        }
    }

    /// Runs `body(index, slot)` for every index of `0..<count`, each once, on whichever thread is free next (an
    /// atomic counter): a thread slowed by the machine takes fewer items instead of holding the others up. Which
    /// thread runs an item must not change its result (the engine's items write disjoint memory with the same
    /// arithmetic whoever runs them), so results stay reproducible.
    func dynamic(_ count: Int, _ body: (Int, Int) -> Void) {
        if threads == 1 || count <= 1 { for i in 0..<count { body(i, 0) }; return }
        let next = shared.next
        next.pointee = 0
        onEachThread { slot in
            while true {
                let i = Int(seg_next_index(next))
                if i >= count { return }
                body(i, slot)
            }
        }
    }

    /// Runs `body(range, slot)` over `0..<count` split into at most `threads` contiguous, balanced ranges.
    /// The split depends only on `count` and `threads`, so results are reproducible for a given thread count.
    func parallelRanges(_ count: Int, _ body: (Range<Int>, Int) -> Void) {
        let parts = min(threads, count)
        if parts <= 1 { if count > 0 { body(0..<count, 0) }; return }
        onEachThread { slot in
            guard slot < parts else { return }
            let lo = count * slot / parts, hi = count * (slot + 1) / parts
            body(lo..<hi, slot)
        }
    }
}
