"""Fits the rational erf of the GELU epilogue (Sources/SegmentKernels/simd_math.h): erf(u) ~ u P(u^2) / Q(u^2) on
[0, C], P of degree DP and Q of degree DQ (Q(0) = 1), by linearised least squares (Sanathanan-Koerner: weights
1 / Q of the previous pass) with Lawson-style reweighting towards the largest errors (near-minimax). Prints the
error in double and in float32 Horner evaluation over [-C, C], and the coefficients as the header's #defines.

Usage: python bench/kernels/erf_fit.py [C DP DQ]   (the shipped fit: 3.92 6 4)
"""
import sys

import numpy as np
from scipy.special import erf


def fit(c: float, dp: int, dq: int, passes: int = 60):
    u = np.linspace(0, c, 20001)[1:]
    s, f = u * u, erf(u) / u
    weight, q_prev = np.ones_like(u), np.ones_like(u)
    powers_p = np.vstack([s**i for i in range(dp + 1)]).T
    powers_q = np.vstack([s**i for i in range(1, dq + 1)]).T
    for _ in range(passes):
        # P(s) - f Q(s) = f with Q = 1 + q1 s + ...: linear in the coefficients; the error in erf is u (P/Q - f).
        a = np.hstack([powers_p, -f[:, None] * powers_q])
        w = (weight * u / q_prev)[:, None]
        coef, *_ = np.linalg.lstsq(a * w, f * w[:, 0], rcond=None)
        p, q = coef[: dp + 1], np.concatenate([[1.0], coef[dp + 1 :]])
        q_prev = np.polyval(q[::-1], s)
        err = u * np.polyval(p[::-1], s) / q_prev - erf(u)
        weight *= 1 + 0.5 * np.abs(err) / np.abs(err).max()
        weight /= weight.mean()
    return p, q, np.abs(err).max()


def float32_error(p, q, c: float) -> float:
    u = np.linspace(-c, c, 400001).astype(np.float32)
    s = u * u
    pv, qv = np.full_like(s, np.float32(p[-1])), np.full_like(s, np.float32(q[-1]))
    for k in p[-2::-1]:
        pv = pv * s + np.float32(k)
    for k in q[-2::-1]:
        qv = qv * s + np.float32(k)
    e = np.clip((u * pv) / qv, -1, 1)
    return float(np.abs(e.astype(np.float64) - erf(u.astype(np.float64))).max())


if __name__ == "__main__":
    c, dp, dq = (float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) == 4 else (3.92, 6, 4)
    p, q, e64 = fit(c, dp, dq)
    print(f"// erf on [0, {c}], P degree {dp}, Q degree {dq}: max |error| {e64:.2e} (double), "
          f"{float32_error(p, q, c):.2e} (float32 Horner, quotient clamped to [-1, 1])")
    for i, k in enumerate(p):
        print(f"#define ERF_P{i} {np.float32(k):.9e}f")
    for i, k in enumerate(q[1:], 1):
        print(f"#define ERF_Q{i} {np.float32(k):.9e}f")
