//! Input corruption for denoising. The loss always compares the
//! reconstruction with the clean input; only the encoder sees the corruption.
//!
//! - masking(p): each input is set to 0 with probability p;
//! - gauss(σ): x̃ = x + N(0, σ²), not clipped;
//! - saltpepper(p): with probability p an input is replaced by 0 or 1, each
//!   with probability ½ (Vincent et al. 2010);
//! - block(s): one s×s square at a random place set to 0, the example read
//!   as a square one-channel image (an example whose length is not a
//!   square: a run of s² consecutive inputs), to train for inpainting.

use crate::error::{Error, Result};
use crate::tensor::rng::Rng;
use rand::{Rng as _, RngCore as _};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A corruption process, written `none`, `mask:P`, `gauss:SIGMA`,
/// `saltpepper:P` or `block:S` in configs and on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Corruption {
    #[default]
    None,
    Mask(f32),
    Gauss(f32),
    SaltPepper(f32),
    /// One S×S square of zeros.
    Block(u32),
    /// K S×S squares of zeros (they may overlap).
    Blocks(u32, u32),
}

impl Corruption {
    /// Writes the corrupted `clean` into `out`.
    pub fn apply(&self, out: &mut [f32], clean: &[f32], rng: &mut Rng) {
        assert_eq!(out.len(), clean.len());
        match *self {
            Corruption::None => out.copy_from_slice(clean),
            Corruption::Mask(p) => {
                // Two 32-bit uniform draws per 64-bit random number: an input is
                // dropped when its draw is below p·2³² (exact for p = 0 and 1).
                // The numbers are drawn in bulk, then applied without branches
                // (a branch on a 25% mask is mispredicted often): the same
                // stream and the same result as one draw per pair.
                let thr = (p as f64 * 4_294_967_296.0) as u64;
                // p = 1 drops everything (every 32-bit draw is below 2³²); the
                // numbers are still drawn, so the stream moves on the same.
                let (thr, all) = (thr.min(u32::MAX as u64) as u32, thr > u32::MAX as u64);
                let mut u = [0u32; 128];
                for (o, x) in out.chunks_mut(128).zip(clean.chunks(128)) {
                    for pair in u[..o.len().div_ceil(2) * 2].chunks_exact_mut(2) {
                        let r = rng.next_u64();
                        pair[0] = r as u32;
                        pair[1] = (r >> 32) as u32;
                    }
                    for ((o, &x), &u) in o.iter_mut().zip(x).zip(&u) {
                        let keep = ((u >= thr) as u32 & !all as u32).wrapping_neg();
                        *o = f32::from_bits(x.to_bits() & keep);
                    }
                }
            }
            Corruption::Gauss(sigma) => {
                for (o, &x) in out.iter_mut().zip(clean) {
                    let n: f32 = StandardNormal.sample(rng);
                    *o = x + sigma * n;
                }
            }
            Corruption::Block(s) => {
                out.copy_from_slice(clean);
                zero_square(out, s as usize, rng);
            }
            Corruption::Blocks(k, s) => {
                out.copy_from_slice(clean);
                for _ in 0..k {
                    zero_square(out, s as usize, rng);
                }
            }
            Corruption::SaltPepper(p) => {
                for (o, &x) in out.iter_mut().zip(clean) {
                    *o = if rng.random::<f32>() < p {
                        if rng.random::<bool>() {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        x
                    };
                }
            }
        }
    }

    /// Checks the level is in range.
    pub fn validate(&self, field: &str) -> Result<()> {
        match *self {
            Corruption::None => Ok(()),
            Corruption::Mask(p) | Corruption::SaltPepper(p) => {
                if (0.0..=1.0).contains(&p) {
                    Ok(())
                } else {
                    Err(Error::config(field, format!("probability {p} is not in [0, 1]")))
                }
            }
            Corruption::Gauss(s) => {
                if (0.0..=MAX_SIGMA).contains(&s) {
                    Ok(())
                } else {
                    let shown = if s.abs() >= 1e6 {
                        format!("{s:e}")
                    } else {
                        s.to_string()
                    };
                    Err(Error::config(
                        field,
                        format!("sigma {shown} is not in [0, {MAX_SIGMA}] (noise of that size drowns inputs scaled to [0, 1] or to unit variance)"),
                    ))
                }
            }
            Corruption::Blocks(k, _) if k as usize > MAX_BLOCKS => Err(Error::config(
                field,
                format!("{k} squares an example: give at most {MAX_BLOCKS}"),
            )),
            Corruption::Block(_) | Corruption::Blocks(..) => Ok(()),
        }
    }
}

/// The largest Gaussian noise level (`gauss:SIGMA`).
pub const MAX_SIGMA: f32 = 100.0;

/// The most squares `blocks:K:S` zeros in one example.
pub const MAX_BLOCKS: usize = 1000;

/// Zeros one random `s`×`s` square of a square image (or, when `out` is
/// not square, a random run of s² values).
fn zero_square(out: &mut [f32], s: usize, rng: &mut Rng) {
    let n = out.len();
    let side = (n as f64).sqrt().round() as usize;
    if side * side == n {
        let s = s.min(side);
        let (y0, x0) = (rng.random_range(0..=side - s), rng.random_range(0..=side - s));
        for y in y0..y0 + s {
            out[y * side + x0..y * side + x0 + s].fill(0.0);
        }
    } else {
        let run = (s * s).min(n);
        let at = rng.random_range(0..=n - run);
        out[at..at + run].fill(0.0);
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::None => write!(f, "none"),
            Corruption::Mask(p) => write!(f, "mask:{p}"),
            Corruption::Gauss(s) => write!(f, "gauss:{s}"),
            Corruption::SaltPepper(p) => write!(f, "saltpepper:{p}"),
            Corruption::Block(s) => write!(f, "block:{s}"),
            Corruption::Blocks(k, s) => write!(f, "blocks:{k}:{s}"),
        }
    }
}

impl std::str::FromStr for Corruption {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "none" {
            return Ok(Corruption::None);
        }
        let (kind, level) = s.split_once(':').ok_or_else(|| {
            format!("noise `{s}` should be none, mask:P, gauss:SIGMA, saltpepper:P, block:S or blocks:K:S")
        })?;
        if kind == "blocks" {
            let whole = |t: &str| t.parse::<u32>().ok().filter(|&v| v >= 1);
            return match level.split_once(':') {
                Some((k, side)) => match (whole(k), whole(side)) {
                    (Some(k), Some(side)) => {
                        let c = Corruption::Blocks(k, side);
                        c.validate("noise").map_err(|e| e.to_string())?;
                        Ok(c)
                    }
                    _ => Err(format!(
                        "`{s}`: the count and the side must be whole numbers of at least 1"
                    )),
                },
                None => Err(format!("`{s}` should be blocks:K:S (K squares of S×S)")),
            };
        }
        if kind == "block" {
            return level
                .parse::<u32>()
                .ok()
                .filter(|&s| s >= 1)
                .map(Corruption::Block)
                .ok_or_else(|| format!("block side `{level}` in `{s}` is not a whole number of at least 1"));
        }
        let v: f32 = level
            .parse()
            .map_err(|_| format!("noise level `{level}` in `{s}` is not a number"))?;
        let c = match kind {
            "mask" => Corruption::Mask(v),
            "gauss" => Corruption::Gauss(v),
            "saltpepper" => Corruption::SaltPepper(v),
            _ => {
                return Err(format!(
                    "unknown noise kind `{kind}` (expected mask, gauss, saltpepper or block)"
                ))
            }
        };
        c.validate("noise").map_err(|e| e.to_string())?;
        Ok(c)
    }
}

impl TryFrom<String> for Corruption {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<Corruption> for String {
    fn from(c: Corruption) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::rng::seeded;

    const N: usize = 200_000;

    fn run(c: Corruption, clean: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; clean.len()];
        c.apply(&mut out, clean, &mut seeded(11));
        out
    }

    #[test]
    fn masking_zeroes_a_fraction_p_and_keeps_the_rest() {
        let clean: Vec<f32> = (0..N).map(|i| 0.1 + (i % 9) as f32 * 0.1).collect();
        let out = run(Corruption::Mask(0.25), &clean);
        let zeroed = out.iter().filter(|&&v| v == 0.0).count() as f64 / N as f64;
        // Binomial std at N=2e5 is ~0.001; 5 sigma.
        assert!((zeroed - 0.25).abs() < 0.005, "{zeroed}");
        assert!(out.iter().zip(&clean).all(|(o, c)| *o == 0.0 || o == c));
    }

    #[test]
    fn masking_extremes_and_odd_lengths() {
        let clean = vec![0.5f32; 7];
        assert!(run(Corruption::Mask(1.0), &clean).iter().all(|&v| v == 0.0));
        assert_eq!(run(Corruption::Mask(0.0), &clean), clean);
        let mut out = vec![9.0f32; 7];
        Corruption::Mask(0.5).apply(&mut out, &clean, &mut seeded(3));
        assert!(
            out.iter().all(|&v| v == 0.0 || v == 0.5),
            "the odd last element is set too: {out:?}"
        );
    }

    #[test]
    fn masking_draws_the_stream_of_one_number_per_pair() {
        // The bulk, branch-free mask against the plain definition: pair k of
        // inputs takes the k-th 64-bit number, low half first; an odd last
        // input takes the low half of its own number.
        for len in [1usize, 7, 127, 128, 129, 255, 256, 784, 1001] {
            let clean: Vec<f32> = (0..len).map(|i| 0.05 + (i % 19) as f32 * 0.05).collect();
            for p in [0.0f32, 0.1, 0.25, 0.5, 0.999, 1.0] {
                let thr = (p as f64 * 4_294_967_296.0) as u64;
                let mut rng = seeded(5);
                let want: Vec<f32> = clean
                    .chunks(2)
                    .flat_map(|x| {
                        let r = rng.next_u64();
                        let lo = if (r & 0xffff_ffff) < thr { 0.0 } else { x[0] };
                        let hi = x.get(1).map(|&v| if (r >> 32) < thr { 0.0 } else { v });
                        std::iter::once(lo).chain(hi)
                    })
                    .collect();
                let mut got = vec![9.0f32; len];
                let mut rng2 = seeded(5);
                Corruption::Mask(p).apply(&mut got, &clean, &mut rng2);
                assert_eq!(got, want, "len {len}, p {p}");
                assert_eq!(rng2.next_u64(), rng.next_u64(), "the stream moves on the same");
            }
        }
    }

    #[test]
    fn gaussian_noise_has_mean_zero_and_the_given_sigma() {
        let clean = vec![0.5f32; N];
        let out = run(Corruption::Gauss(0.1), &clean);
        let d: Vec<f64> = out.iter().map(|&o| (o - 0.5) as f64).collect();
        let mean = d.iter().sum::<f64>() / N as f64;
        let sd = (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / N as f64).sqrt();
        assert!(mean.abs() < 0.001, "mean {mean}");
        assert!((sd - 0.1).abs() < 0.001, "sd {sd}");
    }

    #[test]
    fn salt_and_pepper_sets_half_to_zero_half_to_one() {
        let clean = vec![0.5f32; N];
        let out = run(Corruption::SaltPepper(0.2), &clean);
        let salt = out.iter().filter(|&&v| v == 1.0).count() as f64 / N as f64;
        let pepper = out.iter().filter(|&&v| v == 0.0).count() as f64 / N as f64;
        let kept = out.iter().filter(|&&v| v == 0.5).count() as f64 / N as f64;
        assert!(
            (salt - 0.1).abs() < 0.004 && (pepper - 0.1).abs() < 0.004,
            "{salt} {pepper}"
        );
        assert!((kept - 0.8).abs() < 0.005, "{kept}");
    }

    #[test]
    fn none_is_the_identity_and_specs_round_trip() {
        let clean = vec![0.25f32, 0.75];
        assert_eq!(run(Corruption::None, &clean), clean);
        for s in ["none", "mask:0.25", "gauss:0.1", "saltpepper:0.1", "block:8"] {
            assert_eq!(s.parse::<Corruption>().unwrap().to_string(), s);
        }
        assert!("mask:1.5".parse::<Corruption>().is_err());
        assert!("blur:0.1".parse::<Corruption>().is_err());
        assert!("mask".parse::<Corruption>().is_err());
        assert!("block:0".parse::<Corruption>().is_err());
        assert!("block:2.5".parse::<Corruption>().is_err());
        // Levels past the bounds name the bound.
        for (bad, why) in [
            ("gauss:1e30", "not in [0, 100]"),
            ("gauss:-0.1", "not in [0, 100]"),
            ("gauss:inf", "not in [0, 100]"),
            ("blocks:1001:2", "at most 1000"),
        ] {
            let e = bad.parse::<Corruption>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!("gauss:100".parse::<Corruption>().is_ok() && "blocks:1000:2".parse::<Corruption>().is_ok());
    }

    #[test]
    fn a_block_zeroes_one_square_of_a_square_image() {
        let clean = vec![1.0f32; 28 * 28];
        let mut rng = seeded(3);
        let mut out = vec![0.0; clean.len()];
        for _ in 0..50 {
            Corruption::Block(12).apply(&mut out, &clean, &mut rng);
            let zeros: Vec<usize> = (0..out.len()).filter(|&i| out[i] == 0.0).collect();
            assert_eq!(zeros.len(), 144);
            // One square: the zeros' bounding box is 12×12.
            let (ys, xs): (Vec<usize>, Vec<usize>) = zeros.iter().map(|&i| (i / 28, i % 28)).unzip();
            assert_eq!(ys.iter().max().unwrap() - ys.iter().min().unwrap(), 11);
            assert_eq!(xs.iter().max().unwrap() - xs.iter().min().unwrap(), 11);
        }
        // Not a square: a run of s² inputs; a block larger than the image: all of it.
        let clean = vec![1.0f32; 30];
        let mut out = vec![0.0; 30];
        Corruption::Block(3).apply(&mut out, &clean, &mut rng);
        assert_eq!(out.iter().filter(|&&v| v == 0.0).count(), 9);
        let clean = vec![1.0f32; 16];
        let mut out = vec![0.0; 16];
        Corruption::Block(9).apply(&mut out, &clean, &mut rng);
        assert!(out.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn blocks_zero_k_squares_and_parse_and_print() {
        let c: Corruption = "blocks:3:4".parse().unwrap();
        assert_eq!(
            (c, c.to_string()),
            (Corruption::Blocks(3, 4), "blocks:3:4".into())
        );
        for bad in ["blocks:3", "blocks:0:4", "blocks:2:x"] {
            assert!(bad.parse::<Corruption>().is_err(), "{bad}");
        }
        let clean = vec![1.0f32; 28 * 28];
        let (mut rng, mut out) = (seeded(5), vec![0.0; 28 * 28]);
        let mut counts = Vec::new();
        for _ in 0..200 {
            c.apply(&mut out, &clean, &mut rng);
            let z = out.iter().filter(|&&v| v == 0.0).count();
            // At most 3 squares of 16, at least one whole square.
            assert!((16..=48).contains(&z), "{z} zeros");
            counts.push(z);
        }
        // Squares overlap only now and then: mostly all three are whole.
        assert!(counts.iter().filter(|&&z| z == 48).count() > 100, "{counts:?}");
        // One of them is the same draw as block:S (the same stream).
        let (mut a, mut b) = (vec![0.0; 784], vec![0.0; 784]);
        Corruption::Blocks(1, 6).apply(&mut a, &clean, &mut seeded(9));
        Corruption::Block(6).apply(&mut b, &clean, &mut seeded(9));
        assert_eq!(a, b);
    }
}
