// A fixed pool of `threads - 1` worker threads plus the calling thread. The engine's only parallelism:
// OpenBLAS is pinned to one thread (see SwinUNetEngine), so `threads` bounds every thread doing work.
import Foundation

final class WorkerPool {
    /// Number of threads that run tasks (the caller included).
    let threads: Int
    private var workers: [Thread] = []
    private var start: [DispatchSemaphore] = []
    private let done = DispatchSemaphore(value: 0)
    private var job: ((Int) -> Void)?
    private var stopping = false

    init(threads: Int) {
        precondition(threads >= 1)
        self.threads = threads
        for t in 1..<threads {
            let s = DispatchSemaphore(value: 0)
            start.append(s)
            let thread = Thread { [unowned self] in self.workerLoop(slot: t, start: s) }
            thread.name = "segment-engine-\(t)"
            thread.stackSize = 1 << 20
            workers.append(thread)
            thread.start()
        }
    }

    deinit {
        stopping = true
        for s in start { s.signal() }
        for _ in workers { done.wait() }
    }

    private func workerLoop(slot: Int, start: DispatchSemaphore) {
        while true {
            start.wait()
            if stopping { done.signal(); return }
            job!(slot)
            done.signal()
        }
    }

    /// Runs `body(slot)` once on each of the `threads` threads (slot 0 is the caller) and returns when all are done.
    func onEachThread(_ body: (Int) -> Void) {
        if threads == 1 { body(0); return }
        withoutActuallyEscaping(body) { body in
            job = body
            for s in start { s.signal() }
            body(0)
            for _ in 1..<threads { done.wait() }
            job = nil
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
