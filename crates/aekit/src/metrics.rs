//! Image quality against a reference: PSNR and SSIM for images with values
//! in [0, 1] (peak 1), and the 3×3 median filter that denoising is compared
//! with. Images are `[c, h, w]` planes, one after another.

/// Peak signal-to-noise ratio of `x` against the reference `r`, in dB, with
/// peak 1: 10·log₁₀(1 / MSE). Identical images give +∞.
pub fn psnr(r: &[f32], x: &[f32]) -> f64 {
    assert_eq!(r.len(), x.len(), "psnr: lengths differ");
    let mse = r
        .iter()
        .zip(x)
        .map(|(&a, &b)| {
            let d = a as f64 - b as f64;
            d * d
        })
        .sum::<f64>()
        / r.len().max(1) as f64;
    -10.0 * mse.log10()
}

/// Gaussian weights of the SSIM window: 11 taps, σ = 1.5, summing to 1.
fn window() -> [f64; 11] {
    let mut w = [0.0f64; 11];
    for (i, v) in w.iter_mut().enumerate() {
        let d = i as f64 - 5.0;
        *v = (-d * d / (2.0 * 1.5 * 1.5)).exp();
    }
    let s: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= s);
    w
}

/// Index `i` reflected into `0..n` about the edges (… b a | a b … y z | z y …).
fn reflect(mut i: isize, n: usize) -> usize {
    let n = n as isize;
    loop {
        if i < 0 {
            i = -i - 1;
        } else if i >= n {
            i = 2 * n - i - 1;
        } else {
            return i as usize;
        }
    }
}

/// The plane `p` (`[h, w]`) filtered by the Gaussian window along both axes.
fn blur(p: &[f64], h: usize, w: usize, k: &[f64; 11]) -> Vec<f64> {
    let mut rows = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            rows[y * w + x] = (0..11)
                .map(|t| k[t] * p[y * w + reflect(x as isize + t as isize - 5, w)])
                .sum();
        }
    }
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = (0..11)
                .map(|t| k[t] * rows[reflect(y as isize + t as isize - 5, h) * w + x])
                .sum();
        }
    }
    out
}

/// Structural similarity of `x` against the reference `r`, both `[c, h, w]`
/// with values in [0, 1]: Wang et al. (2004) with their settings (an 11×11
/// Gaussian window of σ = 1.5, K₁ = 0.01, K₂ = 0.03, population
/// covariances), each plane's map averaged away from a 5-pixel border (the
/// whole plane when it is smaller), then the planes averaged: the value
/// scikit-image's `structural_similarity(…, gaussian_weights=True,
/// sigma=1.5, use_sample_covariance=False, data_range=1)` gives.
pub fn ssim(r: &[f32], x: &[f32], c: usize, h: usize, w: usize) -> f64 {
    assert_eq!(r.len(), c * h * w, "ssim: reference size");
    assert_eq!(x.len(), c * h * w, "ssim: image size");
    let (c1, c2) = (0.01f64 * 0.01, 0.03f64 * 0.03);
    let k = window();
    let plane = h * w;
    let mut total = 0.0;
    for ch in 0..c {
        let a: Vec<f64> = r[ch * plane..(ch + 1) * plane]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let b: Vec<f64> = x[ch * plane..(ch + 1) * plane]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let prod = |f: &dyn Fn(usize) -> f64| (0..plane).map(f).collect::<Vec<f64>>();
        let (ma, mb) = (blur(&a, h, w, &k), blur(&b, h, w, &k));
        let aa = blur(&prod(&|i| a[i] * a[i]), h, w, &k);
        let bb = blur(&prod(&|i| b[i] * b[i]), h, w, &k);
        let ab = blur(&prod(&|i| a[i] * b[i]), h, w, &k);
        let (y0, y1) = if h > 10 { (5, h - 5) } else { (0, h) };
        let (x0, x1) = if w > 10 { (5, w - 5) } else { (0, w) };
        let mut s = 0.0;
        for yy in y0..y1 {
            for xx in x0..x1 {
                let i = yy * w + xx;
                let (va, vb) = (aa[i] - ma[i] * ma[i], bb[i] - mb[i] * mb[i]);
                let cov = ab[i] - ma[i] * mb[i];
                s += (2.0 * ma[i] * mb[i] + c1) * (2.0 * cov + c2)
                    / ((ma[i] * ma[i] + mb[i] * mb[i] + c1) * (va + vb + c2));
            }
        }
        total += s / ((y1 - y0) * (x1 - x0)) as f64;
    }
    total / c.max(1) as f64
}

/// Each plane of `x` (`[c, h, w]`) blurred by a Gaussian of standard
/// deviation `sigma` pixels (taps out to 3σ, edges reflected).
pub fn gaussian_blur(x: &[f32], c: usize, h: usize, w: usize, sigma: f64) -> Vec<f32> {
    assert_eq!(x.len(), c * h * w, "gaussian_blur: image size");
    let r = (3.0 * sigma).ceil().max(1.0) as isize;
    let mut k: Vec<f64> = (-r..=r)
        .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    let mut out = vec![0.0f32; x.len()];
    let mut rows = vec![0.0f64; h * w];
    for ch in 0..c {
        let p = &x[ch * h * w..(ch + 1) * h * w];
        for y in 0..h {
            for xx in 0..w {
                rows[y * w + xx] = (-r..=r)
                    .map(|d| k[(d + r) as usize] * p[y * w + reflect(xx as isize + d, w)] as f64)
                    .sum();
            }
        }
        for y in 0..h {
            for xx in 0..w {
                out[ch * h * w + y * w + xx] = (-r..=r)
                    .map(|d| k[(d + r) as usize] * rows[reflect(y as isize + d, h) * w + xx])
                    .sum::<f64>() as f32;
            }
        }
    }
    out
}

/// Each plane of `x` (`[c, h, w]`) through a 3×3 median filter, edges
/// reflected. (imageproc's median filter takes 8-bit images only; noisy
/// inputs are real-valued and leave [0, 1].)
pub fn median3(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    assert_eq!(x.len(), c * h * w, "median3: image size");
    let mut out = vec![0.0f32; x.len()];
    for ch in 0..c {
        let p = &x[ch * h * w..(ch + 1) * h * w];
        for y in 0..h {
            for xx in 0..w {
                let mut v = [0.0f32; 9];
                for (k, slot) in v.iter_mut().enumerate() {
                    let yy = reflect(y as isize + (k / 3) as isize - 1, h);
                    let xq = reflect(xx as isize + (k % 3) as isize - 1, w);
                    *slot = p[yy * w + xq];
                }
                v.sort_by(|a, b| a.total_cmp(b));
                out[ch * h * w + y * w + xx] = v[4];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_of_a_uniform_error() {
        // An error of 0.1 everywhere: MSE 0.01, so 20 dB.
        let r = vec![0.5f32; 100];
        let x = vec![0.6f32; 100];
        assert!((psnr(&r, &x) - 20.0).abs() < 1e-4);
        assert!(psnr(&r, &r).is_infinite());
    }

    #[test]
    fn ssim_is_one_for_the_same_image_and_falls_with_noise() {
        let (h, w) = (28, 28);
        let r: Vec<f32> = (0..h * w).map(|i| ((i * 7919) % 97) as f32 / 96.0).collect();
        assert!((ssim(&r, &r, 1, h, w) - 1.0).abs() < 1e-12);
        let mut last = 1.0;
        for amp in [0.05f32, 0.2, 0.5] {
            let x: Vec<f32> = r
                .iter()
                .enumerate()
                .map(|(i, &v)| v + amp * if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect();
            let s = ssim(&r, &x, 1, h, w);
            assert!(s < last, "ssim {s} at amplitude {amp} is not below {last}");
            last = s;
        }
    }

    #[test]
    fn ssim_matches_scikit_image() {
        // References from scikit-image 0.25's structural_similarity(r, x,
        // gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        // data_range=1.0), computed once by hand on these two pairs.
        let (h, w) = (28, 28);
        let r: Vec<f32> = (0..h * w).map(|i| ((i * 7919) % 97) as f32 / 96.0).collect();
        let x: Vec<f32> = r
            .iter()
            .enumerate()
            .map(|(i, &v)| v + if i % 2 == 0 { 0.2 } else { -0.2 })
            .collect();
        assert!((ssim(&r, &x, 1, h, w) - 0.809_107_264_597_780_4).abs() < 1e-6);
        let (h, w) = (20, 24);
        let mut r2 = vec![0.0f32; h * w];
        let mut x2 = vec![0.0f32; h * w];
        for y in 0..h {
            for xx in 0..w {
                let (dy, dx) = (y as f64 - 9.5, xx as f64 - 11.5);
                let disc = if dy * dy + dx * dx < 36.0 { 1.0 } else { 0.0 };
                r2[y * w + xx] = disc as f32;
                let v = disc * 0.8 + 0.1 + 0.05 * (xx as f64 * 1.3 + y as f64 * 0.7).sin();
                x2[y * w + xx] = v.clamp(0.0, 1.0) as f32;
            }
        }
        assert!((ssim(&r2, &x2, 1, h, w) - 0.933_001_096_705_214_3).abs() < 1e-6);
    }

    #[test]
    fn gaussian_blur_keeps_constants_and_averages_a_spike_out() {
        let (h, w) = (9, 9);
        let flat = vec![0.3f32; h * w];
        assert!(gaussian_blur(&flat, 1, h, w, 1.2)
            .iter()
            .all(|&v| (v - 0.3).abs() < 1e-6));
        let mut spike = vec![0.0f32; h * w];
        spike[4 * w + 4] = 1.0;
        let b = gaussian_blur(&spike, 1, h, w, 1.0);
        // Mass is kept away from the edges, and the peak is 1/(2πσ²) ≈ 0.16.
        assert!((b.iter().sum::<f32>() - 1.0).abs() < 1e-3);
        assert!((b[4 * w + 4] - 0.16).abs() < 0.01, "{}", b[4 * w + 4]);
    }

    #[test]
    fn median_removes_isolated_spikes_and_keeps_flat_regions() {
        let (h, w) = (6, 7);
        let mut x = vec![0.25f32; h * w];
        x[2 * w + 3] = 1.0;
        x[4 * w + 1] = 0.0;
        let m = median3(&x, 1, h, w);
        assert!(m.iter().all(|&v| v == 0.25), "{m:?}");
    }
}
