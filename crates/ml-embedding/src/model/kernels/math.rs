//! Element-wise functions written so the compiler vectorises the loops that
//! call them: straight-line arithmetic, no branches, no calls into libm
//! (whose scalar `expf`/`erff` dominated the profile of the composed ops).

use std::f32::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI, LOG2_E};

/// Adding then subtracting 1.5 · 2²³ rounds an `f32` of magnitude below 2²²
/// to the nearest integer.
const ROUNDER: f32 = 12_582_912.0;

/// ln 2 split in two (Cody and Waite): the high part has so few bits that
/// `n · LN_2_HIGH` is exact for every `n` [`exp`] meets.
const LN_2_HIGH: f32 = 0.693_359_4; // rounds to 0x1.63p-1 exactly
const LN_2_LOW: f32 = -2.121_944_4e-4;

/// `eˣ` to within about two ulp for `x` in `-87..88`; `0` below about
/// `-88`, and large but finite above `88`.
///
/// Writes `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, takes `eʳ` from its Taylor
/// series to the 7th power (remainder below 1e-8 relative) and `2ⁿ` from the
/// exponent bits. Clamping to `-88..88` keeps `n + 127` in `0..=254`, so
/// `2ⁿ` is `0` (for `n = -127`) or a normal number.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    let x = x.clamp(-88.0, 88.0);
    let n = (x * LOG2_E + ROUNDER) - ROUNDER;
    let r = n.mul_add(-LN_2_LOW, n.mul_add(-LN_2_HIGH, x));
    let mut p: f32 = 1.0 / 5040.0;
    for coefficient in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p.mul_add(r, coefficient);
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    // n is a whole number in -127..=127, so n + 127 fits the exponent bits.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// The error function to within 3e-7 absolute. Below `|x| = 0.5`, its
/// Maclaurin series to `x¹¹` (remainder below 2e-8); above, Abramowitz and
/// Stegun's formula 7.1.26 (`1 − t·P(t)·e^{−x²}` with `t = 1/(1 + p·|x|)`,
/// error below 1.5e-7), which near 0 would lose digits to cancellation.
/// Both are computed and one chosen, so loops over it stay branch-free.
#[inline(always)]
pub(super) fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    // 2/√π · (−1)ⁿ / (n! (2n + 1)) for n = 5, 4, …, 0.
    const SERIES: [f32; 6] = [
        -8.548_327e-4,
        5.223_977e-3,
        -2.686_617_4e-2,
        0.112_837_91,
        -0.376_126_38,
        FRAC_2_SQRT_PI,
    ];
    let a = x.abs();
    let t = 1.0 / P.mul_add(a, 1.0);
    let mut poly = A[4];
    for coefficient in [A[3], A[2], A[1], A[0]] {
        poly = poly.mul_add(t, coefficient);
    }
    let tail = 1.0 - poly * t * exp(-a * a);
    let square = a * a;
    let mut series = SERIES[0];
    for coefficient in &SERIES[1..] {
        series = series.mul_add(square, *coefficient);
    }
    let magnitude = if a < 0.5 { series * a } else { tail };
    magnitude.copysign(x)
}

/// GELU in its exact form, `x · Φ(x) = x/2 · (1 + erf(x/√2))`, as BERT
/// checkpoints with `hidden_act = "gelu"` use it.
#[inline(always)]
pub(super) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2))
}

/// GELU's tanh approximation, for `hidden_act = "gelu_new"` and kin:
/// `x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))`, with `tanh` from `exp`.
#[inline(always)]
pub(super) fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let inner = SQRT_2_OVER_PI * (0.044_715 * x * x).mul_add(x, x);
    // 1 + tanh(u) = 2 − 2/(e^{2u} + 1), which is 2 or 0 at the clamps.
    x * (1.0 - 1.0 / (exp(2.0 * inner) + 1.0))
}

/// Number of independent partial sums the reductions below keep, so that
/// their loops vectorise (a single running `f32` sum cannot be reordered).
const LANES: usize = 16;

/// `softmax(row)` in place: the maximum subtracted for range, `exp`, and
/// the row scaled to sum to 1.
pub(super) fn softmax(row: &mut [f32]) {
    let max = reduce(row, f32::NEG_INFINITY, f32::max, f32::max);
    for value in row.iter_mut() {
        *value = exp(*value - max);
    }
    let scale = 1.0 / sum(row);
    for value in row.iter_mut() {
        *value *= scale;
    }
}

/// The sum of `values`.
pub(super) fn sum(values: &[f32]) -> f32 {
    reduce(values, 0.0, |a, b| a + b, |a, b| a + b)
}

/// The sum of the squares of `values`.
pub(super) fn sum_of_squares(values: &[f32]) -> f32 {
    reduce(values, 0.0, |a, x| x.mul_add(x, a), |a, b| a + b)
}

/// Folds `values` into [`LANES`] interleaved partial results with `step`,
/// then those into one with `combine`.
fn reduce(
    values: &[f32],
    init: f32,
    step: impl Fn(f32, f32) -> f32,
    combine: impl Fn(f32, f32) -> f32,
) -> f32 {
    let mut lanes = [init; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &value) in lanes.iter_mut().zip(chunk) {
            *lane = step(*lane, value);
        }
    }
    let tail = chunks.remainder().iter().fold(init, |a, &b| step(a, b));
    lanes.into_iter().fold(tail, combine)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points spread over `low..high`, both ends included.
    fn grid(low: f32, high: f32, steps: u16) -> impl Iterator<Item = f32> {
        (0..=steps).map(move |i| low + (high - low) * f32::from(i) / f32::from(steps))
    }

    #[test]
    fn exp_is_within_a_few_ulp() {
        for x in grid(-87.0, 88.0, 20_000).chain(grid(-1.0, 1.0, 2_000)) {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            assert!(
                ((got - want) / want).abs() < 3e-7,
                "exp({x}) = {got}, want {want}"
            );
        }
        assert_eq!(exp(-1e9), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(1e9).is_finite());
    }

    #[test]
    fn erf_is_within_3e_7() {
        for x in grid(-6.0, 6.0, 24_000) {
            let want = libm_erf(f64::from(x));
            let got = f64::from(erf(x));
            assert!((got - want).abs() < 3e-7, "erf({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn gelus_match_their_definitions() {
        for x in grid(-10.0, 10.0, 4_000) {
            let x64 = f64::from(x);
            let exact = 0.5 * x64 * (1.0 + libm_erf(x64 / std::f64::consts::SQRT_2));
            assert!((f64::from(gelu(x)) - exact).abs() < 3e-6 * x64.abs().max(1.0));
            let inner = (2.0 / std::f64::consts::PI).sqrt() * (x64 + 0.044_715 * x64.powi(3));
            let approximate = 0.5 * x64 * (1.0 + inner.tanh());
            assert!((f64::from(gelu_tanh(x)) - approximate).abs() < 3e-6 * x64.abs().max(1.0));
        }
    }

    #[test]
    fn softmax_sums_to_one() {
        #[allow(clippy::cast_precision_loss)]
        let mut row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 30.0).collect();
        let expected: Vec<f64> = {
            let exps: Vec<f64> = row.iter().map(|&x| f64::from(x).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.iter().map(|x| x / sum).collect()
        };
        softmax(&mut row);
        for (got, want) in row.iter().zip(&expected) {
            assert!((f64::from(*got) - want).abs() < 1e-7, "{got} vs {want}");
        }
    }

    /// `erf` in f64 from its Maclaurin series (small |x|) or its continued
    /// fraction for `erfc` (large |x|): accurate to ~1e-13 over the range
    /// the tests use; the standard library has no `erf`.
    fn libm_erf(x: f64) -> f64 {
        let a = x.abs();
        let value = if a < 3.0 {
            let mut term = a;
            let mut sum = a;
            for n in 1..200 {
                let n = f64::from(n);
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(a) = e^{-a²}/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + 2/(a + …)))))
            let mut fraction = a;
            for k in (1..60).rev() {
                fraction = a + f64::from(k) / 2.0 / fraction;
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / fraction
        };
        value.copysign(x)
    }
}
