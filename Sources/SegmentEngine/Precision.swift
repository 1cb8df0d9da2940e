// The engine's arithmetic precision: fp32 (the default, the exact path the parity tests pin down) or bf16 (bf16
// operands, fp32 sums) for the GEMMs and the attention's two products, on the bf16 kernels of SegmentKernels.
import SegmentKernels

/// What `--precision` asks for.
public enum Precision: String, CaseIterable, Sendable, Codable {
    case fp32, bf16, auto

    /// The precision an engine runs for this request on this CPU: `fp32` as asked; `bf16` if the CPU has bf16
    /// kernels (AVX512-BF16 or AMX-BF16), else an error naming what is missing; `auto`: bf16 where the CPU has AMX-BF16
    /// tiles, fp32 otherwise. Without AMX, the AVX512-BF16 dot product (vdpbf16ps) retires at a quarter of the rate
    /// of fp32 FMAs on the CPUs measured, so bf16 is slower than fp32 there (docs/PERFORMANCE.md, "bf16").
    public func resolved() throws -> Precision {
        switch self {
        case .fp32: return .fp32
        case .bf16:
            guard seg_bf16_isa() >= 1 else {
                throw EngineError(kind: .invalidArgument, message: "--precision bf16: this CPU has no bf16 kernels (it needs AVX512-BF16 or AMX-BF16, with AVX-512 enabled by the OS); use --precision fp32 or auto.")
            }
            return .bf16
        case .auto: return seg_bf16_isa() >= 2 ? .bf16 : .fp32
        }
    }

    /// The kernels an engine of this (resolved) precision runs on this CPU, as run reports and benchmarks name them.
    public var kernels: String {
        switch self {
        case .bf16: return seg_bf16_isa() >= 2 ? "amx-bf16" : "avx512-bf16"
        default:
            switch seg_kernel_isa() {
            case 2: return "avx512"
            case 1: return "avx2"
            default: return "portable-c"
            }
        }
    }
}
