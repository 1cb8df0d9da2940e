// A fixed pool of `threads - 1` worker threads plus the calling thread. The engine's only parallelism:
// The engine runs its own GEMM kernels on these threads only, so `threads` bounds every thread doing work.
import Foundation

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
        init(workers: Int) { start = (0..<workers).map { _ in DispatchSemaphore(value: 0) } }
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
