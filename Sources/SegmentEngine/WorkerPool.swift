// A fixed pool of `threads - 1` worker threads plus the calling thread. The engine's only parallelism:
// The engine runs its own GEMM kernels on these threads only, so `threads` bounds every thread doing work.
import Foundation
import SegmentKernels

final class WorkerPool {
    /// Number of threads that run tasks (the caller included).
    let threads: Int
    private let shared: Shared

    /// Pause-loop rounds a waiting thread spins before it sleeps (tens of microseconds): the engine hands work over
    /// dozens of times per slice, and a thread that went to sleep takes longer than that to wake, above all on a
    /// VM whose idle vCPU the hypervisor parks.
    static let spins = 4000

    /// What the workers see: the pool itself is never referenced by them, so it can be freed while they wait.
    /// Round G (the generation): the caller publishes `job`, sets `pending`, sets `generation` to G and wakes the
    /// workers whose sleeping flag holds G. A worker waiting for round G spins on `generation`, else stores G in its
    /// flag and sleeps on its semaphore. The finish mirrors it: the caller spins on `pending`, else stores G in
    /// `callerSleeping` and sleeps on `done`; the worker that brings `pending` to 0 wakes it if the flag holds G.
    /// A flag is taken back by compare-and-swap on the round's G, by exactly one side, so a wake-up is never lost,
    /// never left over, and never taken by a later round (a late waker of round G cannot match a flag of G + 1).
    private final class Shared {
        var job: ((Int) -> Void)?
        let start: [DispatchSemaphore]
        let done = DispatchSemaphore(value: 0)
        let exited = DispatchSemaphore(value: 0)
        /// One 64-byte line each: generation, pending, callerSleeping, the `dynamic` counter, stopping, then each
        /// worker's sleeping flag.
        private let words: UnsafeMutablePointer<Int>
        var generation: UnsafeMutablePointer<Int> { words }
        var pending: UnsafeMutablePointer<Int> { words + 8 }
        var callerSleeping: UnsafeMutablePointer<Int> { words + 16 }
        var next: UnsafeMutablePointer<Int> { words + 24 }
        var stopping: UnsafeMutablePointer<Int> { words + 32 }
        func sleeping(_ worker: Int) -> UnsafeMutablePointer<Int> { words + 40 + 8 * worker }

        init(workers: Int) {
            start = (0..<workers).map { _ in DispatchSemaphore(value: 0) }
            let count = 8 * (5 + workers)
            words = UnsafeMutableRawPointer.allocate(byteCount: 8 * count, alignment: 64).bindMemory(to: Int.self, capacity: count)
            words.initialize(repeating: 0, count: count)
        }
        deinit { words.deallocate() }

        /// Spins until `ready()`, else announces round `round` in `flag` and sleeps on `semaphore` until woken.
        func wait(until ready: () -> Bool, round: Int, flag: UnsafeMutablePointer<Int>, on semaphore: DispatchSemaphore) {
            var n = 0
            while !ready() && n < WorkerPool.spins { seg_spin_pause(); n += 1 }
            if ready() { return }
            seg_atomic_store(flag, round)
            // Not ready: the waker will find the flag and signal. Ready meanwhile: take the flag back; if the waker
            // took it first, it has signalled (or will), and that signal is ours to consume.
            if !ready() || seg_atomic_cas(flag, round, 0) == 0 { semaphore.wait() }
        }

        /// Wakes the sleeper of round `round` behind `flag`, if there is one.
        func wake(_ flag: UnsafeMutablePointer<Int>, round: Int, _ semaphore: DispatchSemaphore) {
            if seg_atomic_cas(flag, round, 0) != 0 { semaphore.signal() }
        }
    }

    init(threads: Int) {
        precondition(threads >= 1)
        self.threads = threads
        let shared = Shared(workers: threads - 1)
        self.shared = shared
        for slot in 1..<threads {
            let thread = Thread {
                let w = slot - 1
                _ = seg_fp_flush_denormals()          // an engine thread: denormals are 0 (segment_kernels.h)
                var seen = 0
                while true {
                    let round = seen + 1
                    shared.wait(until: { seg_atomic_load(shared.generation) == round }, round: round,
                                flag: shared.sleeping(w), on: shared.start[w])
                    seen = round
                    if seg_atomic_load(shared.stopping) != 0 { shared.exited.signal(); return }
                    shared.job!(slot)
                    if seg_atomic_add(shared.pending, -1) == 1 { shared.wake(shared.callerSleeping, round: round, shared.done) }
                }
            }
            thread.name = "segment-engine-\(slot)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Starts the next round: bumps the generation and wakes the workers asleep waiting for it.
    private func release() -> Int {
        let round = seg_atomic_add(shared.generation, 1) + 1
        for w in 0..<(threads - 1) { shared.wake(shared.sleeping(w), round: round, shared.start[w]) }
        return round
    }

    /// Stops the workers and waits until every one has left its loop.
    deinit {
        seg_atomic_store(shared.stopping, 1)
        _ = release()
        for _ in 1..<threads { shared.exited.wait() }
    }

    /// Runs `body(slot)` once on each of the `threads` threads (slot 0 is the caller) and returns when all are done.
    func onEachThread(_ body: (Int) -> Void) {
        if threads == 1 { body(0); return }
        withoutActuallyEscaping(body) { body in
            shared.job = body
            seg_atomic_store(shared.pending, threads - 1)
            let round = release()
            body(0)
            shared.wait(until: { seg_atomic_load(shared.pending) == 0 }, round: round, flag: shared.callerSleeping, on: shared.done)
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
        seg_atomic_store(next, 0)                    // before the round starts, so every thread sees it
        onEachThread { slot in
            while true {
                let i = seg_atomic_add(next, 1)
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
