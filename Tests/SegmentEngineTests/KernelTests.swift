// Each fast kernel and module against its naive twin (Tests/NaiveEngine/NaiveTwins.swift) on random inputs, over the
// shapes and thread counts that take different paths: row tails shorter than 8 lanes, one window per image
// (columns split instead of windows), windows that do not divide evenly over the threads, shifted windows.
import NaiveEngine
import Foundation
import SegmentFormat
import XCTest
@testable import SegmentEngine
import SegmentKernels

final class KernelTests: XCTestCase {
    /// Fused operators vs the naive forward: max |diff| <= 2e-5 * max(1, max |reference|) (float32 GEMM
    /// accumulation and the fast exp/erf against Double accumulation and libm).
    static let layerTolerance: Float = 2e-5

    // MARK: pool

    /// parallelRanges and the work queue (`dynamic`, twice: its counter is reset between calls) run every item
    /// exactly once, on slots 0 ..< threads (parallelRanges on all of them when there are enough items), for 1 to 4
    /// threads and 0 to 997 items; each pool is freed while its workers wait, and they must leave cleanly.
    func testPoolRunsEveryItemOnceAndShutsDown() {
        for round in 0..<50 {
            let threads = 1 + round % 4, count = [0, 1, 2, 7, 997][round % 5]
            let pool = WorkerPool(threads: threads)
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: 1000)
            counts.initialize(repeating: 0, count: 1000)
            var slots = Set<Int>()
            let lock = NSLock()
            pool.parallelRanges(count) { range, slot in
                for i in range { counts[i] += 1 }
                lock.lock(); slots.insert(slot); lock.unlock()
            }
            for _ in 0..<2 {
                pool.dynamic(count) { i, slot in lock.lock(); counts[i] += 1; slots.insert(slot); lock.unlock() }
            }
            let what = "threads \(threads) count \(count)"
            XCTAssertTrue((0..<count).allSatisfy { counts[$0] == 3 }, "\(what): an item ran twice in a call or never")
            XCTAssertTrue(slots.isSubset(of: 0..<threads), "\(what): a slot outside 0..<\(threads)")
            if count >= threads { XCTAssertEqual(slots, Set(0..<threads), "\(what): parallelRanges left a thread idle") }
            counts.deallocate()
        }
    }

    /// Hand-overs in quick succession, with pauses that let workers fall asleep, on pools of 2 to 4 threads (more
    /// threads than this machine's cores): every round runs each slot exactly once. A wake-up taken by the wrong
    /// round (an earlier version of the pool) made a worker run a round twice and crashed or hung this test.
    func testPoolHandOversUnderStress() {
        for round in 0..<150 {
            let threads = 2 + round % 3
            let pool = WorkerPool(threads: threads)
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: 32)
            counts.initialize(repeating: 0, count: 32)
            for i in 0..<200 {
                switch i % 3 {
                case 0: pool.onEachThread { slot in counts[slot] += 1 }
                case 1: pool.dynamic(7) { j, _ in counts[8 + j] += 1 }
                default: pool.parallelRanges(5) { r, _ in for j in r { counts[16 + j] += 1 } }
                }
                if i % 50 == 0 { usleep(200) }
            }
            let want = [Int](repeating: 67, count: threads) + [Int](repeating: 0, count: 8 - threads)
                + [Int](repeating: 67, count: 7) + [0] + [Int](repeating: 66, count: 5)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: counts, count: 21)), want, "threads \(threads)")
            counts.deallocate()
        }
    }

    // MARK: elementwise

    /// Each of `xs` times a 1x1 weight through the packed GEMM (with its GELU epilogue when asked), at the kernel
    /// level selected now.
    private func oneByOneGEMM(_ xs: [Float], weight: Float, gelu: Bool, _ p: Pinned) -> [Float] {
        let w = p.packed([weight], N: 1, K: 1)
        var y = [Float](repeating: .nan, count: xs.count)
        y.withUnsafeMutableBufferPointer {
            seg_gemm_packed(Int32(xs.count), 0, 1, 1, p(xs), 1, w.data, 1, 0, $0.baseAddress!, 1, nil, 0, gelu ? 1 : 0)
        }
        return y
    }

    /// The GEMM's GELU epilogue (exact erf form) over [-12, 12], through a 1x1 GEMM with weight 1, per kernel.
    func testGELUEpilogueMatchesErfForm() {
        let p = Pinned()
        defer { seg_kernel_select(-1) }
        let xs = stride(from: -12.0, through: 12.0, by: 0.00731).map { Float($0) } + [0]
        for isa in kernelISAs() {
            seg_kernel_select(isa)
            let y = oneByOneGEMM(xs, weight: 1, gelu: true, p)
            var worst: Float = 0
            for (x, g) in zip(xs, y) { worst = max(worst, abs(g - Reference.gelu(x)) / max(1, abs(x))) }
            XCTAssertLessThanOrEqual(worst, 3e-7, "GELU isa \(isa): max |diff| / max(1, |x|) = \(worst)")
            XCTAssertEqual(y.last, 0, "GELU(0)")
        }
    }

    /// GELU far in its negative tail (x < -12.7, where erfc(-x / sqrt 2) / 2 is below the smallest normal float):
    /// 0 within 1e-30, and never a denormal, which would cost a microcode assist per value on x86 whatever the
    /// thread's flush mode. Large positive x passes through.
    func testGELUTailsGiveNoDenormals() {
        let p = Pinned()
        defer { seg_kernel_select(-1) }
        let xs: [Float] = [-12.5, -12.8, -13, -13.5, -14, -20, -100, -1e4, -3e38, 12.5, 20, 1e4, 3e38]
        for isa in kernelISAs() {
            seg_kernel_select(isa)
            let y = oneByOneGEMM(xs, weight: 1, gelu: true, p)
            for (x, g) in zip(xs, y) {
                XCTAssertFalse(g.isSubnormal, "GELU(\(x)) isa \(isa) = \(g) is a denormal")
                if x < 0 { XCTAssertLessThanOrEqual(abs(g), 1e-30, "GELU(\(x)) isa \(isa)") }
                else { XCTAssertEqual(g, x, "GELU(\(x)) isa \(isa)") }
            }
        }
    }

    /// seg_fp_flush_denormals makes a denormal GEMM product 0 on this thread and seg_fp_restore brings it back;
    /// the engine sets it for a forward pass and gives the caller's state back afterwards.
    func testDenormalFlushIsScopedToTheEngine() throws {
        let p = Pinned()
        func product() -> Float { oneByOneGEMM([1e-20], weight: 1e-20, gelu: false, p)[0] }   // 1e-40: a denormal
        XCTAssertTrue(product().isSubnormal, "a plain thread keeps denormals")
        let state = seg_fp_flush_denormals()
        let flushed = product()
        seg_fp_restore(state)
        #if arch(x86_64)
        XCTAssertEqual(flushed, 0, "flush-to-zero")
        #endif
        XCTAssertTrue(product().isSubnormal, "restored")
        let c = try EngineCase("small3")
        _ = try c.engine(threads: 2).logits(c.input, batch: c.batch, channels: c.channels)
        XCTAssertTrue(product().isSubnormal, "the engine gave the caller's floating-point state back")
    }

    /// LayerNorm of one row and of many rows (AVX-512: rows of up to 12 vectors held in registers, 3 or 2 rows at
    /// once, then a tail; longer rows in three passes) against the double-free naive twin, and rows == row by row,
    /// bit for bit, out of place with row strides wider than C.
    func testLayerNormRows() {
        var rng = Rand(1)
        let p = Pinned()
        let rows = 7, pad = 3
        for C in [1, 7, 8, 12, 16, 17, 96, 100, 129, 192, 193, 384] {
            let x = rng.normal(rows * C, std: 2, mean: 0.5), g = rng.normal(C, std: 0.3, mean: 1), b = rng.normal(C, std: 0.1)
            let want = Reference.layerNorm(x, C, p(g), p(b))
            var xs = [Float](repeating: 9, count: rows * (C + pad))      // rows of C values, then pad others
            for r in 0..<rows { for c in 0..<C { xs[r * (C + pad) + c] = x[r * C + c] } }
            for isa in kernelISAs() {
                seg_kernel_select(isa)
                var y = x
                y.withUnsafeMutableBufferPointer { buf in for r in 0..<rows { seg_layernorm_row(buf.baseAddress! + r * C, buf.baseAddress! + r * C, Int32(C), p(g), p(b)) } }
                assertClose(y, want, tol: 1e-6, "layerNorm isa \(isa) C=\(C)")
                var z = [Float](repeating: .nan, count: rows * (C + 1))
                z.withUnsafeMutableBufferPointer { layerNorm(rows: rows, p(xs), ldx: C + pad, $0.baseAddress!, ldy: C + 1, C, p(g), p(b)) }
                var zRows = [Float]()
                for r in 0..<rows { zRows += z[(r * (C + 1))..<(r * (C + 1) + C)] }
                XCTAssertEqual(zRows, y, "layerNorm(rows:) isa \(isa) C=\(C) differs from row by row")
                XCTAssertTrue((0..<rows).allSatisfy { z[$0 * (C + 1) + C].isNaN }, "layerNorm(rows:) wrote past C")
                // Rows gathered through a table (row r from row rows-1-r of xs): the same bits, row for row.
                let table = (0..<rows).map { Int32(rows - 1 - $0) }
                var gathered = [Float](repeating: .nan, count: rows * C)
                gathered.withUnsafeMutableBufferPointer {
                    layerNorm(rows: rows, p(xs), ldx: C + pad, xRows: p(table), $0.baseAddress!, ldy: C, C, p(g), p(b))
                }
                for r in 0..<rows {
                    XCTAssertEqual(Array(gathered[(r * C)..<(r * C + C)]), Array(y[((rows - 1 - r) * C)..<((rows - r) * C)]),
                                   "layerNorm(xRows:) isa \(isa) C=\(C) row \(r)")
                }
            }
            seg_kernel_select(-1)
        }
    }

    /// Window attention (q k^T + bias (+ -100 mask) -> softmax -> @ v) against its naive twin, for every kernel the
    /// CPU runs: window sizes 2x2 .. 8x8 (the fused AVX-512 path: N up to 64, 1 to 4 score vectors per row, row
    /// tails of its 6-row tiles) and 9x9 (N 81: the packed-GEMM path), head dims 4 .. 40 (more than one 32-column
    /// block of output).
    /// Tolerance: float32 sums of d products then of N products against double sums; the worst case measured is
    /// 2.6e-6 relative (N 49, d 40, scores of scale 5), so 5e-6 leaves 2x.
    func testWindowAttentionAgainstNaiveTwin() {
        var rng = Rand(5)
        let p = Pinned()
        defer { seg_kernel_select(-1) }
        let isas = kernelISAs()
        // N mod 6 = 0 .. 5 (the fused path's last tile has exactly that many rows), d below, at and past 16 (k^T is
        // transposed in 16 x 16 blocks), N = 17 (one live column in the last score vector), 81 (the GEMM path)
        for (N, d, ld) in [(4, 4, 12), (16, 8, 24), (49, 32, 96), (49, 40, 130), (36, 12, 36), (64, 16, 48), (81, 8, 24),
                           (17, 32, 96), (20, 24, 72), (27, 16, 50), (59, 32, 96)] {
            let qkv = rng.normal(N * ld, std: 1.5), bias = rng.normal(N * N)
            let mask = (0..<(N * N)).map { ($0 / N) % 3 != ($0 % N) % 3 ? Float(-100) : 0 }
            let work = UnsafeMutablePointer<Float>.allocate(capacity: seg_attention_work_floats(Int32(N), Int32(d)))
            defer { work.deallocate() }
            for masked in [false, true] {
                let q = p(qkv), k = q + d, v = q + 2 * d
                var want = [Float](repeating: .nan, count: N * d)
                want.withUnsafeMutableBufferPointer {
                    seg_window_attention_ref(Int32(N), Int32(d), q, k, v, Int32(ld), p(bias), masked ? p(mask) : nil, $0.baseAddress!, Int32(d))
                }
                for isa in isas {
                    seg_kernel_select(isa)
                    var got = [Float](repeating: .nan, count: N * d)
                    got.withUnsafeMutableBufferPointer {
                        seg_window_attention(Int32(N), Int32(d), q, k, v, Int32(ld), p(bias), masked ? p(mask) : nil, $0.baseAddress!, Int32(d), work)
                    }
                    assertClose(got, want, tol: 5e-6, "attention isa \(isa) N=\(N) d=\(d) masked=\(masked)")
                }
            }
        }
    }

    /// segment's GEMM (each micro-kernel the CPU can run) against its naive twin: odd M (row remainders of the 8-,
    /// 6- and 4-row tiles), N not a multiple of 32 (masked panels, in one- and two-panel tiles), N crossing the
    /// 256-column chunk, K crossing the 256 block, a K range of a wider packed weight (k0), start from zero or
    /// accumulate, bias, GELU; and a column split at a panel boundary (so the split computes with other tiles: the
    /// AVX-512 two-panel tiles then start at an odd panel) gives the same bits as one call; and with the rows of C
    /// addressed through a table (permuted, with rows of the buffer left out), the same bits land in those rows and
    /// no other row is touched.
    func testPackedGEMMAgainstNaiveTwin() {
        var rng = Rand(4)
        let p = Pinned()
        defer { seg_kernel_select(-1) }
        let isas = kernelISAs()
        for (M, N, Kp, K, k0) in [(1, 1, 1, 1, 0), (9, 33, 40, 40, 0), (17, 96, 600, 600, 0), (13, 70, 520, 260, 260), (8, 9, 96, 96, 0),
                                    (1, 64, 7, 7, 0), (23, 300, 64, 64, 0), (10, 64, 32, 32, 0), (14, 40, 16, 16, 0)] {
            let a = rng.normal(M * K), w = rng.normal(N * Kp, std: 1 / Double(K).squareRoot()), bias = rng.normal(N)
            let P = p.packed(w, N: N, K: Kp)
            XCTAssertEqual(P.unpacked(), w, "pack / unpack round trip N=\(N) K=\(Kp)")
            for accumulate: Int32 in [0, 1] { for gelu: Int32 in [0, 1] { for withBias in [false, true] {
                let c0 = rng.normal(M * N)
                var want = c0
                want.withUnsafeMutableBufferPointer {
                    seg_gemm_packed_ref(Int32(M), 0, Int32(N), Int32(K), p(a), Int32(K), P.data, Int32(Kp), Int32(k0),
                                        $0.baseAddress!, Int32(N), withBias ? p(bias) : nil, accumulate, gelu)
                }
                for isa in isas {
                    seg_kernel_select(isa)
                    var got = c0, split = c0
                    got.withUnsafeMutableBufferPointer {
                        seg_gemm_packed(Int32(M), 0, Int32(N), Int32(K), p(a), Int32(K), P.data, Int32(Kp), Int32(k0),
                                        $0.baseAddress!, Int32(N), withBias ? p(bias) : nil, accumulate, gelu)
                    }
                    split.withUnsafeMutableBufferPointer { out in
                        for (n0, n1) in [(0, min(N, 32)), (32, N)] where n1 > n0 {
                            seg_gemm_packed(Int32(M), Int32(n0), Int32(n1), Int32(K), p(a), Int32(K), P.data, Int32(Kp), Int32(k0),
                                            out.baseAddress!, Int32(N), withBias ? p(bias) : nil, accumulate, gelu)
                        }
                    }
                    let what = "GEMM isa \(isa) M=\(M) N=\(N) K=\(K) k0=\(k0) acc=\(accumulate) gelu=\(gelu) bias=\(withBias)"
                    assertClose(got, want, tol: 2e-6, what)
                    XCTAssertEqual(split, got, "\(what): a column split changed the result")
                    // Row i of the product in row table[i] = 2 (M - 1 - i) + 1 of a buffer of 2M + 1 rows (stride N + 3).
                    let ld = N + 3, table = (0..<M).map { Int32(2 * (M - 1 - $0) + 1) }
                    var wide = [Float](repeating: -7, count: (2 * M + 1) * ld)
                    for i in 0..<M { for n in 0..<N { wide[Int(table[i]) * ld + n] = c0[i * N + n] } }
                    for naive in [false, true] {
                        var c = wide
                        c.withUnsafeMutableBufferPointer {
                            (naive ? seg_gemm_packed_rows_ref : seg_gemm_packed_rows)(
                                Int32(M), 0, Int32(N), Int32(K), p(a), Int32(K), P.data, Int32(Kp), Int32(k0), $0.baseAddress!,
                                Int32(ld), p(table), withBias ? p(bias) : nil, accumulate, gelu)
                        }
                        var rowsOut = [Float](), rest = [Float]()
                        for i in 0..<M { rowsOut += c[(Int(table[i]) * ld)..<(Int(table[i]) * ld + N)] }
                        for r in 0..<(2 * M + 1) { for n in 0..<ld where r % 2 == 0 || n >= N { rest.append(c[r * ld + n]) } }
                        if naive {
                            XCTAssertEqual(rowsOut, want, "\(what): seg_gemm_packed_rows_ref differs from seg_gemm_packed_ref")
                        } else {
                            XCTAssertEqual(rowsOut, got, "\(what): the row table changed the result")
                        }
                        XCTAssertTrue(rest.allSatisfy { $0 == -7 }, "\(what): rows outside the table were written")
                    }
                }
            } } }
        }
    }

    func testLinearColumnSplitEqualsSingleCall() {
        var rng = Rand(3)
        let p = Pinned()
        let M = 5, K = 40, N = 200
        let x = rng.normal(M * K), w = rng.normal(N * K), b = rng.normal(N)
        let want = Reference.linear(x, K, p(w), N, p(b)).map { Reference.gelu($0) }
        for threads in [1, 2, 3] {
            var y = [Float](repeating: .nan, count: M * N)
            let pool = WorkerPool(threads: threads)
            y.withUnsafeMutableBufferPointer { linear(p(x), ldx: K, M: M, p.packed(w, N: N, K: K), $0.baseAddress!, ldo: N, .biasGELU(p(b)), pool: pool) }
            assertClose(y, want, tol: 1e-5, "linear+GELU threads \(threads)")
        }
    }

    // MARK: Swin block

    /// Random block weights scaled as the fixtures (peaked attention, unit-scale activations).
    func blockWeights(_ g: StageGeometry, hidden: Int, _ rng: inout Rand, _ p: Pinned) -> BlockWeights {
        let C = g.dim, N = g.tokensPerWindow
        let s = 1 / Double(C).squareRoot()
        return BlockWeights(norm1W: p(rng.normal(C, std: 0.3, mean: 1)), norm1B: p(rng.normal(C, std: 0.1)),
                            bias: p(rng.normal(g.heads * N * N)),
                            qkvW: p.packed(rng.normal(3 * C * C, std: 2 * s), N: 3 * C, K: C), qkvB: p(rng.normal(3 * C, std: 0.1)),
                            projW: p.packed(rng.normal(C * C, std: s), N: C, K: C), projB: p(rng.normal(C, std: 0.1)),
                            norm2W: p(rng.normal(C, std: 0.3, mean: 1)), norm2B: p(rng.normal(C, std: 0.1)),
                            fc1W: p.packed(rng.normal(hidden * C, std: s), N: hidden, K: C), fc1B: p(rng.normal(hidden, std: 0.1)),
                            fc2W: p.packed(rng.normal(C * hidden, std: 1 / Double(hidden).squareRoot()), N: C, K: hidden), fc2B: p(rng.normal(C, std: 0.1)))
    }

    func checkBlock(_ cfg: SwinUNetConfig, stage i: Int, batch B: Int, threads: [Int], shifted: Bool, seed: UInt64) {
        let g = cfg.stage(i), hidden = cfg.mlpHidden(g.dim)
        let shift = shifted ? g.shift : 0
        var rng = Rand(seed)
        let p = Pinned()
        let w = blockWeights(g, hidden: hidden, &rng, p)
        let x = rng.normal(B * g.resolution * g.resolution * g.dim)
        let want = Reference.swinBlock(x, batch: B, g, shift: shift, hidden: hidden, w)
        let lay = WindowLayout(g, shift: shift)
        let (mask, masked) = lay.shiftedMask()
        for t in threads {
            let pass = Pass(batch: B, pool: WorkerPool(threads: t), scratch: p.scratch(threads: t))
            let block = SwinTransformerBlock(geometry: g, shift: shift, hidden: hidden, w: w, mask: shift > 0 ? p(mask) : nil,
                                             masked: masked)
            let what = "block R=\(g.resolution) ws=\(g.window) shift=\(shift) C=\(g.dim) heads=\(g.heads) B=\(B) threads=\(t)"
            // Out of place (the first block of an encoder stage) and in place (every other block).
            var out = [Float](repeating: .nan, count: x.count)
            out.withUnsafeMutableBufferPointer { block(p(x), into: $0.baseAddress!, pass) }
            assertClose(out, want, tol: Self.layerTolerance, what)
            var inPlace = x
            inPlace.withUnsafeMutableBufferPointer { block($0.baseAddress!, into: $0.baseAddress!, pass) }
            XCTAssertEqual(inPlace, out, "\(what): in place differs from out of place")
        }
    }

    func testShiftedWindowBlock() {
        // 8x8 grid, 4x4 windows (4 per image), shift 2; 2 heads of 8.
        let cfg = SwinUNetConfig(imgSize: 32, patchSize: 4, embedDim: 16, depths: [2, 2], numHeads: [2, 4], windowSize: 4)
        checkBlock(cfg, stage: 0, batch: 2, threads: [1, 2, 3], shifted: true, seed: 10)
        checkBlock(cfg, stage: 0, batch: 2, threads: [2], shifted: false, seed: 11)
    }

    func testWindow7BlockWithUnevenThreads() {
        // 14x14 grid, 7x7 windows (4 per image), shift 3, C 12 with 3 heads of 4 (tails shorter than 8 lanes),
        // 4 windows over 3 threads.
        let cfg = SwinUNetConfig(imgSize: 56, patchSize: 4, embedDim: 12, depths: [2, 2], numHeads: [3, 6], windowSize: 7)
        checkBlock(cfg, stage: 0, batch: 1, threads: [3], shifted: true, seed: 12)
    }

    func testOneWindowStageSplitsColumns() {
        // Stage 1 is 4x4 with window 7 > 4: one 4x4 window, no shift. Batch 1 < threads: the columns are split.
        let cfg = SwinUNetConfig(imgSize: 32, patchSize: 4, embedDim: 24, depths: [2, 2], numHeads: [2, 6], windowSize: 7)
        checkBlock(cfg, stage: 1, batch: 1, threads: [1, 2, 4], shifted: true, seed: 13)
    }

    // MARK: resampling layers and head

    /// Runs `fast` on a pass of `batch` slices for 1 to 3 threads (M large enough to split rows; small M splits
    /// columns) and compares.
    func forThreads(_ what: String, batch: Int, want: [Float], count: Int, _ fast: (UnsafeMutablePointer<Float>, Pass) -> Void) {
        let p = Pinned()
        for t in [1, 2, 3] {
            var out = [Float](repeating: .nan, count: count)
            let pass = Pass(batch: batch, pool: WorkerPool(threads: t), scratch: p.scratch(threads: t))
            out.withUnsafeMutableBufferPointer { fast($0.baseAddress!, pass) }
            assertClose(out, want, tol: Self.layerTolerance, "\(what) threads \(t)")
        }
    }

    func testPatchEmbedding() {
        var rng = Rand(20)
        let p = Pinned()
        for (inChans, channels, img) in [(3, 3, 32), (3, 1, 32), (1, 1, 64)] {
            let cfg = SwinUNetConfig(imgSize: img, patchSize: 4, inChans: inChans, embedDim: 20, depths: [2, 2], numHeads: [2, 2])
            let B = 2, E = cfg.embedDim, K = inChans * 16
            let x = (0..<(B * channels * img * img)).map { _ in Float(rng.uniform()) }
            let w = p(rng.normal(E * K, std: 1 / Double(K).squareRoot())), b = p(rng.normal(E, std: 0.1))
            let nw = p(rng.normal(E, std: 0.3, mean: 1)), nb = p(rng.normal(E, std: 0.1))
            let want = Reference.patchEmbed(x, batch: B, channels: channels, cfg, w: w, b: b, normW: nw, normB: nb)
            let embed = PatchEmbed(inChans: inChans, patchSize: cfg.patchSize, imgSize: img, proj: p.packed(w, N: E, K: K),
                                   projBias: b, norm: LayerNorm(dim: E, weight: nw, bias: nb))
            forThreads("patchEmbed in=\(inChans) channels=\(channels)", batch: B, want: want, count: want.count) { out, pass in
                embed(p(x), channels: channels, into: out, pass)
            }
        }
    }

    func testPatchMergingAndExpanding() {
        var rng = Rand(21)
        let p = Pinned()
        for (R, C, B) in [(16, 12, 2), (4, 20, 1)] {     // 128 output rows (split by rows); 4 rows (split by columns)
            let x = rng.normal(B * R * R * C)
            let nw = p(rng.normal(4 * C, std: 0.3, mean: 1)), nb = p(rng.normal(4 * C, std: 0.1))
            let red = p(rng.normal(2 * C * 4 * C, std: 0.5 / Double(C).squareRoot()))
            let want = Reference.patchMerging(x, batch: B, resolution: R, dim: C, normW: nw, normB: nb, reduction: red)
            let merging = PatchMerging(resolution: R, dim: C, norm: LayerNorm(dim: 4 * C, weight: nw, bias: nb),
                                       reduction: p.packed(red, N: 2 * C, K: 4 * C))
            forThreads("patchMerging R=\(R) C=\(C)", batch: B, want: want, count: want.count) { out, pass in
                merging(p(x), into: out, pass)
            }
            let ew = p(rng.normal(2 * C * C, std: 1 / Double(C).squareRoot()))
            let enw = p(rng.normal(C / 2, std: 0.3, mean: 1)), enb = p(rng.normal(C / 2, std: 0.1))
            let wantUp = Reference.expand(x, batch: B, resolution: R, dim: C, scale: 2, outDim: C / 2, w: ew, normW: enw, normB: enb)
            let expanding = PatchExpand(resolution: R, dim: C, expand: p.packed(ew, N: 2 * C, K: C),
                                        norm: LayerNorm(dim: C / 2, weight: enw, bias: enb))
            forThreads("patchExpand R=\(R) C=\(C)", batch: B, want: wantUp, count: wantUp.count) { out, pass in
                expanding(p(x), into: out, pass)
            }
            let skip = rng.normal(x.count)
            let cw = p(rng.normal(C * 2 * C, std: 0.7 / Double(C).squareRoot())), cb = p(rng.normal(C, std: 0.1))
            let wantCat = Reference.concatBack(x, skip, dim: C, w: cw, b: cb)
            let concat = ConcatLinear(tokens: R * R, weight: p.packed(cw, N: C, K: 2 * C), bias: cb)
            forThreads("concatBack R=\(R) C=\(C)", batch: B, want: wantCat, count: wantCat.count) { out, pass in
                concat(p(x), p(skip), into: out, pass)
            }
        }
    }

    /// The output head (x4 expand GEMM in head order + seg_output_head) against the naive twin, at every kernel
    /// level and thread count: logits, the normalised features, first-maximum labels and softmax probabilities.
    /// Cases: the AVX-512 path (P 4) with channels not a multiple of 4 and more than 16 classes (two class passes),
    /// and P 2 (plain C at every level). Tolerance: E-term float sums against float sums in another order.
    func testOutputHeadLogitsLabelsProbabilities() {
        var rng = Rand(22)
        let p = Pinned()
        defer { seg_kernel_select(-1) }
        for (E, nc, P, img) in [(12, 5, 4, 48), (14, 19, 4, 32), (6, 3, 2, 24)] {
            let cfg = SwinUNetConfig(imgSize: img, patchSize: P, numClasses: nc, embedDim: E, depths: [2, 2], numHeads: [2, 2])
            let B = 2, R = cfg.patchesResolution, plane = img * img, sub = P * P
            let x = rng.normal(B * R * R * E)
            let ew = p(rng.normal(sub * E * E, std: 1 / Double(E).squareRoot()))
            let nw = p(rng.normal(E, std: 0.3, mean: 1)), nb = p(rng.normal(E, std: 0.1)), cw = p(rng.normal(nc * E, std: 0.3))
            let pew = p.packed(headOrder(ew, E: E, P: P), N: sub * E, K: E)
            let head = OutputHead(resolution: R, patchSize: P, numClasses: nc, expand: pew,
                                  norm: LayerNorm(dim: E, weight: nw, bias: nb), output: cw)
            let want = Reference.outputHead(x, batch: B, cfg, expand: ew, normW: nw, normB: nb, classW: cw)
            let wantFeatures = Reference.expand(x, batch: B, resolution: R, dim: E, scale: P, outDim: E, w: ew, normW: nw, normB: nb)
            for isa in kernelISAs() {
                seg_kernel_select(isa)
                let what = "outputHead E=\(E) nc=\(nc) P=\(P) isa \(isa)"
                forThreads(what + " logits", batch: B, want: want, count: want.count) { out, pass in
                    head(p(x), output: .logits(out), pass)
                }
                // Features (the kernel's fourth output); labels are the first maximum of the logits the head computes, and
                // probabilities their softmax.
                let pass = Pass(batch: B, pool: WorkerPool(threads: 2), scratch: p.scratch(threads: 2))
                var logits = [Float](repeating: .nan, count: want.count), probs = logits
                var features = [Float](repeating: .nan, count: wantFeatures.count)
                var labels = [UInt8](repeating: 255, count: B * plane)
                logits.withUnsafeMutableBufferPointer { l in features.withUnsafeMutableBufferPointer { f in
                    head(p(x), output: .logits(l.baseAddress!), features: f.baseAddress!, pass)
                } }
                assertClose(features, wantFeatures, tol: 1e-5, what + " features")
                labels.withUnsafeMutableBufferPointer { lab in probs.withUnsafeMutableBufferPointer { pr in
                    head(p(x), output: .labels(lab.baseAddress!, probabilities: pr.baseAddress!), pass)
                } }
                var wantProbs = [Float](repeating: 0, count: want.count)
                var wrongLabels = 0
                for b in 0..<B { for q in 0..<plane {
                    let scores = (0..<nc).map { logits[(b * nc + $0) * plane + q] }
                    if Int(labels[b * plane + q]) != scores.firstIndex(of: scores.max()!)! { wrongLabels += 1 }
                    for (k, v) in Reference.softmax(scores).enumerated() { wantProbs[(b * nc + k) * plane + q] = v }
                } }
                XCTAssertEqual(wrongLabels, 0, what + ": labels that are not the first maximum of the logits")
                assertClose(probs, wantProbs, tol: 5e-7, what + " probabilities")
            }
        }
    }
}
