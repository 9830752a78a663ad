//! The hot element-wise loops of minibatch training (the sigmoid, the
//! cross-entropy's loss and δ in one pass, the SGD update), each compiled three times: for
//! AVX-512, for AVX2 + FMA and portably, and run as [`super::isa::Isa::active`] says
//! (on x86 the portable copy is compiled a second time with FMA, which runs
//! where the CPU has it: `mul_add` is then one instruction, not a call).
//! One body per loop ([`vmath`]'s polynomial exp and ln, fixed lane
//! accumulators), so every instruction set gives the same bits.
#![allow(unsafe_code)]

use super::vmath;

/// Lanes of the loss accumulators (one AVX-512 register of f32).
const LANES: usize = 16;

/// Defines `pub fn $name` that runs `$body` compiled for the active
/// instruction set.
macro_rules! multiversion {
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn body($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512($($arg: $ty),*) -> $ret {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) -> $ret {
                body($($arg),*)
            }
            // The portable body where the CPU has an FMA instruction: the
            // same operations (Rust never contracts a·b + c), so the same
            // bits, but each `mul_add` is one instruction, not a call into
            // the runtime's `fmaf`.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "fma")]
            unsafe fn portable_fma($($arg: $ty),*) -> $ret {
                body($($arg),*)
            }
            match $crate::tensor::isa::Isa::active() {
                // SAFETY: `Isa::active` never exceeds what the CPU reports.
                #[cfg(target_arch = "x86_64")]
                $crate::tensor::isa::Isa::Avx512 => unsafe { avx512($($arg),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                $crate::tensor::isa::Isa::Avx2Fma => unsafe { avx2($($arg),*) },
                // SAFETY: the CPU reports FMA.
                #[cfg(target_arch = "x86_64")]
                _ if std::arch::is_x86_feature_detected!("fma") => unsafe { portable_fma($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}
pub(crate) use multiversion;

multiversion! {
    /// y ← σ(y).
    pub fn sigmoid(y: &mut [f32]) -> () {
        for v in y.iter_mut() {
            *v = vmath::sigmoid(*v);
        }
    }
}

multiversion! {
    /// The cross-entropy of σ(a) against x, Σ softplus(a) − x·a, and (when
    /// `da` is not empty) da = σ(a) − x, in one pass.
    pub fn xent(da: &mut [f32], a: &[f32], x: &[f32]) -> f64 {
        assert!(a.len() == x.len() && (da.is_empty() || da.len() == a.len()));
        let mut acc = [0.0f32; LANES];
        let term = |a: f32, x: f32| {
            // softplus(a) = max(a, 0) + ln(1 + e^−|a|)
            a.max(0.0) - x * a + vmath::ln(1.0 + vmath::exp(-a.abs()))
        };
        let whole = a.len() / LANES * LANES;
        for (ac, xc) in a[..whole].chunks_exact(LANES).zip(x[..whole].chunks_exact(LANES)) {
            for l in 0..LANES {
                acc[l] += term(ac[l], xc[l]);
            }
        }
        let mut total: f64 = acc.iter().map(|&v| v as f64).sum();
        for (&a, &x) in a[whole..].iter().zip(&x[whole..]) {
            total += term(a, x) as f64;
        }
        if !da.is_empty() {
            for ((d, &a), &x) in da.iter_mut().zip(a).zip(x) {
                *d = vmath::sigmoid(a) - x;
            }
        }
        total
    }
}

multiversion! {
    /// Classical momentum: v ← μ·v − η·g, then p ← p + v (no fused
    /// multiply-add, so every instruction set gives the same bits).
    pub fn sgd_momentum(p: &mut [f32], v: &mut [f32], g: &[f32], mu: f32, lr: f32) -> () {
        assert!(p.len() == v.len() && p.len() == g.len());
        for ((p, v), &g) in p.iter_mut().zip(v.iter_mut()).zip(g) {
            *v = mu * *v - lr * g;
            *p += *v;
        }
    }
}

multiversion! {
    /// Adam's update of one piece: m ← β₁·m + (1−β₁)·g,
    /// v ← β₂·v + (1−β₂)·g², p ← p − step·m / (√v·c + ε).
    pub fn adam(
        p: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        g: &[f32],
        beta1: f32,
        beta2: f32,
        step: f32,
        c: f32,
        eps: f32
    ) -> () {
        assert!(p.len() == m.len() && p.len() == v.len() && p.len() == g.len());
        for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            *m = beta1 * *m + (1.0 - beta1) * g;
            *v = beta2 * *v + (1.0 - beta2) * g * g;
            *p -= step * *m / (v.sqrt() * c + eps);
        }
    }
}

multiversion! {
    /// y ← s·y.
    pub fn scale(y: &mut [f32], s: f32) -> () {
        for v in y.iter_mut() {
            *v *= s;
        }
    }
}

multiversion! {
    /// p ← p + v, then v ← μ·v (the end of a momentum step whose velocity
    /// is kept premultiplied for the next).
    pub fn add_then_scale(p: &mut [f32], v: &mut [f32], mu: f32) -> () {
        assert!(p.len() == v.len());
        for (p, v) in p.iter_mut().zip(v.iter_mut()) {
            *p += *v;
            *v *= mu;
        }
    }
}

multiversion! {
    /// p ← p − η·g.
    pub fn sgd_plain(p: &mut [f32], g: &[f32], lr: f32) -> () {
        assert!(p.len() == g.len());
        for (p, &g) in p.iter_mut().zip(g) {
            *p -= lr * g;
        }
    }
}

multiversion! {
    /// y ← y − k·y + a·x: an SGD step with weight decay k = ηλ, the decay
    /// taken as its own small term (1 − k rounded to f32 would lose most of
    /// a decay near 10⁻⁶). No fused multiply-add, so every instruction set
    /// gives the same bits; with k = 0 it is the plain y ← y + a·x.
    pub fn axpy_decay(y: &mut [f32], k: f32, a: f32, x: &[f32]) -> () {
        assert!(y.len() == x.len());
        for (y, &x) in y.iter_mut().zip(x) {
            *y += a * x - k * *y;
        }
    }
}

multiversion! {
    /// y ← y − k·y.
    pub fn shrink(y: &mut [f32], k: f32) -> () {
        for y in y.iter_mut() {
            *y -= k * *y;
        }
    }
}

multiversion! {
    /// Returns Σ w·d (over fixed lanes), then sets w ← w − k·w + a·d: one
    /// pass over a weight row that back-propagation reads before SGD
    /// updates it ([`axpy_decay`]'s step).
    pub fn dot_then_axpy_decay(w: &mut [f32], d: &[f32], k: f32, a: f32) -> f32 {
        assert!(w.len() == d.len());
        let mut acc = [0.0f32; LANES];
        let whole = w.len() / LANES * LANES;
        let (wh, wt) = w.split_at_mut(whole);
        for (wc, dc) in wh.chunks_exact_mut(LANES).zip(d[..whole].chunks_exact(LANES)) {
            for l in 0..LANES {
                acc[l] += wc[l] * dc[l];
                wc[l] += a * dc[l] - k * wc[l];
            }
        }
        let mut tail = 0.0f32;
        for (w, &d) in wt.iter_mut().zip(&d[whole..]) {
            tail += *w * d;
            *w += a * d - k * *w;
        }
        // A fixed tree over the lanes, so the sum is the same on every ISA.
        let mut width = LANES / 2;
        while width > 0 {
            for l in 0..width {
                acc[l] += acc[l + width];
            }
            width /= 2;
        }
        acc[0] + tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xent_agrees_with_the_f64_formula_and_writes_the_delta() {
        let n = 1000;
        let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 4.0).collect();
        let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32 / 6.0).collect();
        let mut da = vec![0.0; n];
        let got = xent(&mut da, &a, &x);
        let want: f64 = a
            .iter()
            .zip(&x)
            .map(|(&a, &x)| {
                let (a, x) = (a as f64, x as f64);
                a.max(0.0) - x * a + (-a.abs()).exp().ln_1p()
            })
            .sum();
        assert!((got - want).abs() < 1e-5 * want.abs(), "{got} against {want}");
        for ((&d, &a), &x) in da.iter().zip(&a).zip(&x) {
            let s = 1.0 / (1.0 + (-(a as f64)).exp());
            assert!((d as f64 - (s - x as f64)).abs() < 1e-6);
        }
        // Without a δ buffer only the loss is computed.
        assert_eq!(xent(&mut [], &a, &x), got);
    }
}
