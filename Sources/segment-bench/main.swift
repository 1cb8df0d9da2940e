// segment-bench: the engine's benchmark driver (bench/engine_bench.py). Never a test: it only measures.
//   segment-bench make-model --out M.segm [--dtype f32] [--seed 1]    a Swin-T model file of random weights
//   segment-bench run --model M.segm --threads T --batch B [--warmup 2] [--iters 10] [--precision fp32|bf16|auto]
//                                                                          latency, load time (JSON)
//   segment-bench sgemm --threads T [--size 2048]                          the machine's OpenBLAS sgemm GFLOP/s (JSON)
import ArgumentParser
import CBLAS
import Foundation
import SegmentCore
import SegmentEngine
import SegmentFormat

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "segment-bench",
                                                    abstract: "Benchmark driver of the Swin-UNet engine.",
                                                    subcommands: [MakeModel.self, Run.self, Sgemm.self])
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// CPU seconds used by the whole process (all threads) so far.
func cpuTime() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) * 1e-6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) * 1e-6
}

/// This process's peak resident set in MB (VmHWM of /proc/self/status).
func peakRSSMB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Double(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else { return .nan }
    return kb / 1024
}

func printJSON(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

struct MakeModel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "make-model",
                                                    abstract: "Write a Swin-T (224, 96, [2,2,2,2], [3,6,12,24], 9 classes) model file of random weights.")
    @Option var out: String
    @Option var dtype: String = "f32"
    @Option var seed: UInt64 = 1

    func run() throws {
        guard let dtype = DType(rawValue: dtype) else { throw ValidationError("--dtype is f32, f16 or bf16") }
        let config = SwinUNetConfig()
        var random = SplitMix64(seed: seed)
        func uniform() -> Float { Float(random.next() >> 40) / Float(1 << 23) - 1 }    // [-1, 1)
        var writer = ModelFileWriter(metadata: ModelMetadata(config: config, classNames: ["background"] + (1..<config.numClasses).map { "class\($0)" },
                                                             provenance: ["note": "random weights for benchmarking"]))
        for spec in config.expectedTensors() {
            let values: [Float]
            if spec.name.hasSuffix("norm1.weight") || spec.name.hasSuffix("norm2.weight") || spec.name.hasSuffix("norm.weight") || spec.name.hasSuffix("norm_up.weight") {
                values = [Float](repeating: 1, count: spec.count)
            } else if spec.shape.count == 1 {
                values = (0..<spec.count).map { _ in 0.1 * uniform() }
            } else {
                let fanIn = Float(spec.shape.dropFirst().reduce(1, *))
                let scale = (3 / fanIn).squareRoot()            // unit variance outputs
                values = (0..<spec.count).map { _ in scale * uniform() }
            }
            try writer.add(spec.name, shape: spec.shape, values: values, dtype: dtype)
        }
        try writer.write(to: out)
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time the engine on a model file; print JSON.")
    @Option var model: String
    @Option var threads: Int = 1
    @Option var batch: Int = 1
    @Option var warmup: Int = 2
    @Option var iters: Int = 10
    @Option(help: "fp32, bf16 or auto (as segment run --precision).") var precision: String = "fp32"
    @Flag(help: "After the warm-up print {\"ready\": true}, then time one batch per line read from standard input, printing its per-slice ms, until end of input (--iters is not used); then the summary.")
    var lockstep = false

    func validate() throws {
        guard threads >= 1, batch >= 1, iters >= 1, warmup >= 0 else { throw ValidationError("threads, batch and iters must be >= 1") }
        guard Precision(rawValue: precision) != nil else { throw ValidationError("--precision must be fp32, bf16 or auto, not \(precision)") }
    }

    func run() throws {
        let t0 = now()
        let file = try ModelFile.open(model)
        let t1 = now()
        let engine = try SwinUNetEngine(model: file, threads: threads, maxBatch: batch, precision: Precision(rawValue: precision)!)
        let t2 = now()
        let cfg = engine.config, plane = cfg.imgSize * cfg.imgSize
        var state: UInt32 = 12345
        let input = (0..<(batch * cfg.inChans * plane)).map { _ -> Float in
            state = state &* 1_664_525 &+ 1_013_904_223
            return Float(state >> 8) / Float(1 << 24)
        }
        var labels = [UInt8](repeating: 0, count: batch * plane)
        var times: [Double] = [], cpus: [Double] = []
        func step() -> (Double, Double) {   // wall and CPU seconds per slice of one batch
            let s = now(), c = cpuTime()
            input.withUnsafeBufferPointer { inp in labels.withUnsafeMutableBufferPointer { lab in
                engine.predict(inp, batch: batch, channels: cfg.inChans, labels: lab, probabilities: nil)
            } }
            return ((now() - s) / Double(batch), (cpuTime() - c) / Double(batch))
        }
        if lockstep {
            for _ in 0..<warmup { _ = step() }
            printJSON(["ready": true])
            fflush(stdout)
            while readLine() != nil {
                let (t, c) = step()
                times.append(t); cpus.append(c)
                print(t * 1000)
                fflush(stdout)
            }
            guard !times.isEmpty else { throw ValidationError("--lockstep: no step was asked for") }
        } else {
            for i in 0..<(warmup + iters) {
                let (t, c) = step()
                if i >= warmup { times.append(t); cpus.append(c) }
            }
        }
        times.sort(); cpus.sort()
        printJSON(["model": model, "threads": threads, "batch": batch, "iters": times.count, "warmup": warmup,
                   "precision": engine.precision.rawValue, "kernels": engine.precision.kernels,
                   "open_seconds": t1 - t0, "load_seconds": t2 - t0,
                   "per_slice_ms_median": times[times.count / 2] * 1000, "per_slice_ms_min": times[0] * 1000, "cpu_ms_per_slice_median": cpus[cpus.count / 2] * 1000, "cpu_ms_per_slice_min": cpus[0] * 1000,
                   "per_slice_ms_all": times.map { $0 * 1000 }, "peak_rss_mb": peakRSSMB(), "label_checksum": labels.reduce(0) { $0 &+ Int($1) }])
    }
}

struct Sgemm: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "OpenBLAS sgemm throughput on square matrices; print JSON.")
    @Option var threads: Int = 1
    @Option var size: Int = 2048
    @Option var iters: Int = 5

    func run() throws {
        openblas_set_num_threads(Int32(threads))
        let n = size
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var best = Double.infinity
        for _ in 0..<(iters + 1) {
            let s = now()
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
            best = min(best, now() - s)
        }
        printJSON(["threads": threads, "size": n, "gflops": 2 * Double(n) * Double(n) * Double(n) / best / 1e9,
                   "openblas_config": String(cString: openblas_get_config())])
    }
}

Bench.main()
