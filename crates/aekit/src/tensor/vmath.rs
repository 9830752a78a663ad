//! Vectorisable exp, ln and sigmoid for f32 (Cephes-style range reduction
//! and polynomials, about 1–2 ulp), written with float and integer bit
//! operations only, so that loops over them compile to SIMD on any target
//! instead of one libm call per element.

const LOG2E: f32 = std::f32::consts::LOG2_E;
// ln 2 split in two so n·C1 is exact (Cephes expf).
const C1: f32 = 0.693_359_4;
const C2: f32 = -2.121_944_4e-4;
/// 1.5·2²³: adding and subtracting it rounds to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// e^x, clamped to the finite f32 range (e^−87.3 to e^88.7).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.7);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * C1 - n * C2;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // t = ROUND + n exactly, so its low bits hold n: 2ⁿ from integer
    // operations alone (a saturating `n as i32` would not vectorise).
    let k = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    e * f32::from_bits(((k + 127) << 23) as u32)
}

/// ln x for finite x > 0.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    // Mantissa in [0.5, 1).
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= small as i32;
    m = if small { m + m - 1.0 } else { m - 1.0 };
    let ef = e as f32;
    let z = m * m;
    let mut y = 7.037_683_6e-2f32;
    y = y * m - 1.151_461e-1;
    y = y * m + 1.167_699_9e-1;
    y = y * m - 1.242_014_1e-1;
    y = y * m + 1.424_932_3e-1;
    y = y * m - 1.666_805_8e-1;
    y = y * m + 2.000_071_4e-1;
    y = y * m - 2.499_999_4e-1;
    y = y * m + 3.333_333e-1;
    y *= m * z;
    y += C2 * ef;
    y -= 0.5 * z;
    m + y + C1 * ef
}

/// 1 / (1 + e^−a).
#[inline(always)]
pub fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + exp(-a))
}

/// softplus(a) − x·a = −[x ln σ(a) + (1−x) ln(1−σ(a))], stable for any a.
#[inline(always)]
pub fn xent_logit(a: f32, x: f32) -> f32 {
    a.max(0.0) - x * a + ln(1.0 + exp(-a.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_ln_are_within_a_few_ulp_of_libm() {
        let mut worst_exp = 0.0f64;
        let mut worst_ln = 0.0f64;
        for i in 0..200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let (a, b) = (exp(x) as f64, (x as f64).exp());
            worst_exp = worst_exp.max((a - b).abs() / b);
            let y = 1e-30f32 * 1.0005f32.powi(i % 150_000);
            let (c, d) = (ln(y) as f64, (y as f64).ln());
            worst_ln = worst_ln.max((c - d).abs() / d.abs().max(1e-3));
        }
        assert!(worst_exp < 4e-7, "exp relative error {worst_exp}");
        assert!(worst_ln < 4e-7, "ln error {worst_ln}");
    }

    #[test]
    fn sigmoid_and_xent_match_the_reference_layers() {
        for i in -400..=400 {
            let a = i as f32 * 0.25;
            let s = crate::layers::activation::sigmoid(a);
            assert!((sigmoid(a) - s).abs() <= 2e-7 * s.max(1e-30) + 1e-38, "{a}");
            for x in [0.0f32, 0.3, 1.0] {
                let r = crate::layers::loss::xent_forward(&[a as f64], &[x as f64]);
                assert!((xent_logit(a, x) as f64 - r).abs() < 1e-6 * r.max(1.0), "{a} {x}");
            }
        }
        assert_eq!(sigmoid(-1000.0), 0.0f32.max(sigmoid(-1000.0)));
        assert!(sigmoid(1000.0) == 1.0 && sigmoid(-1000.0) < 1e-37);
    }
}
