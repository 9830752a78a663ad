//! Row-major buffers and the numeric trait shared by f32 (training) and f64
//! (gradient checks). Matrices are plain slices with explicit dims; the only
//! path to matrix products is [`gemm::gemm`].

pub mod ftz;
pub mod fused;
pub mod gemm;
pub mod im2col;
pub mod isa;
pub mod memory;
pub mod par;
pub mod rng;
pub mod simd;
pub mod spmm;
pub mod vmath;

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A real floating-point scalar: f32 for training, f64 for gradient checks.
pub trait Real:
    faer::traits::ComplexField
    + Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    const ZERO: Self;
    const ONE: Self;
    fn of(v: f64) -> Self;
    fn f64(self) -> f64;
    fn exp_(self) -> Self;
    fn ln_(self) -> Self;
    fn ln_1p_(self) -> Self;
    fn tanh_(self) -> Self;
    fn abs_(self) -> Self;
    fn max_(self, other: Self) -> Self;
    /// 1/(1 + e^−x): vectorisable polynomial exp in f32 ([`vmath`], ~1 ulp),
    /// the exact libm formula in f64 (which the gradient checks use).
    fn sigmoid_(self) -> Self;
    /// tanh x, likewise.
    fn tanh_fast(self) -> Self;
    /// y ← σ(y) over a slice: f32 runs [`simd::sigmoid`] (AVX-512, AVX2 or
    /// portable, as [`isa::Isa::active`] says).
    fn sigmoid_slice(y: &mut [Self]);
    /// Σ softplus(a) − x·a (the cross-entropy of σ(a) against x) and, when
    /// `da` is not empty, da = σ(a) − x, in one pass; f32 runs
    /// [`simd::xent`].
    fn xent_slice(da: &mut [Self], a: &[Self], x: &[Self]) -> f64;
    /// y ← s·y over a slice; f32 runs [`simd::scale`].
    fn scale_slice(y: &mut [Self], s: Self);
}

fn scale_slice_scalar<T: Real>(y: &mut [T], s: T) {
    y.iter_mut().for_each(|v| *v *= s);
}

fn sigmoid_slice_scalar<T: Real>(y: &mut [T]) {
    y.iter_mut().for_each(|v| *v = v.sigmoid_());
}

fn xent_slice_scalar<T: Real>(da: &mut [T], a: &[T], x: &[T]) -> f64 {
    let mut s = 0.0f64;
    for (&a, &x) in a.iter().zip(x) {
        s += (a.max_(T::ZERO) - x * a + (-a.abs_()).exp_().ln_1p_()).f64();
    }
    for ((d, &a), &x) in da.iter_mut().zip(a).zip(x) {
        *d = a.sigmoid_() - x;
    }
    s
}

macro_rules! impl_real {
    ($t:ty, $sigmoid:expr, $tanh:expr, $sig_slice:expr, $xent:expr, $scale:expr) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline(always)]
            fn of(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp_(self) -> Self {
                self.exp()
            }
            #[inline(always)]
            fn ln_(self) -> Self {
                self.ln()
            }
            #[inline(always)]
            fn ln_1p_(self) -> Self {
                self.ln_1p()
            }
            #[inline(always)]
            fn tanh_(self) -> Self {
                self.tanh()
            }
            #[inline(always)]
            fn abs_(self) -> Self {
                self.abs()
            }
            #[inline(always)]
            fn max_(self, other: Self) -> Self {
                self.max(other)
            }
            #[inline(always)]
            fn sigmoid_(self) -> Self {
                $sigmoid(self)
            }
            #[inline(always)]
            fn tanh_fast(self) -> Self {
                $tanh(self)
            }
            fn sigmoid_slice(y: &mut [Self]) {
                $sig_slice(y)
            }
            fn xent_slice(da: &mut [Self], a: &[Self], x: &[Self]) -> f64 {
                $xent(da, a, x)
            }
            fn scale_slice(y: &mut [Self], s: Self) {
                $scale(y, s)
            }
        }
    };
}

/// Logistic function in f64, stable at both ends.
#[inline(always)]
fn sigmoid64(a: f64) -> f64 {
    if a >= 0.0 {
        1.0 / (1.0 + (-a).exp())
    } else {
        let e = a.exp();
        e / (1.0 + e)
    }
}

impl_real!(
    f32,
    self::vmath::sigmoid,
    |x: f32| 2.0 * self::vmath::sigmoid(2.0 * x) - 1.0,
    self::simd::sigmoid,
    self::simd::xent,
    self::simd::scale
);
impl_real!(
    f64,
    sigmoid64,
    f64::tanh,
    sigmoid_slice_scalar,
    xent_slice_scalar,
    scale_slice_scalar
);

/// How a result r is written into a buffer: `out ← β·out + α·r`, or
/// `out ← α·r` written over when `beta` is `None` (a buffer that needs
/// neither clearing first nor rescaling after). A backward pass writes its
/// gradients so; with β = μ and α = −η the buffer is SGD's velocity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradWrite<T> {
    pub alpha: T,
    pub beta: Option<T>,
}

impl<T: Real> GradWrite<T> {
    /// Added into what the buffer holds: α = β = 1.
    pub const ADD: Self = Self {
        alpha: T::ONE,
        beta: Some(T::ONE),
    };

    /// The same write of `s` times the result (α·s): a summed gradient
    /// written as a mean, with `s` = 1/batch.
    pub fn scaled(self, s: T) -> Self {
        Self {
            alpha: self.alpha * s,
            ..self
        }
    }
}

/// Converts a slice between precisions (f32 parameters into an f64 check).
pub fn convert<A: Real, B: Real>(src: &[A]) -> Vec<B> {
    src.iter().map(|&v| B::of(v.f64())).collect()
}

/// Adds each column of `src` (`[rows, cols]`) into `dst` (`[cols]`).
pub fn add_column_sums<T: Real>(dst: &mut [T], src: &[T], rows: usize, cols: usize) {
    assert_eq!(dst.len(), cols);
    assert_eq!(src.len(), rows * cols);
    par::column_blocks(dst, rows, |c0, d| {
        for row in src.chunks_exact(cols.max(1)).take(rows) {
            for (d, &s) in d.iter_mut().zip(&row[c0..]) {
                *d += s;
            }
        }
    });
}

/// Adds `bias` (`[cols]`) to every row of `dst` (`[rows, cols]`).
pub fn add_row_bias<T: Real>(dst: &mut [T], bias: &[T], cols: usize) {
    assert_eq!(bias.len(), cols);
    if cols == 0 {
        return;
    }
    assert_eq!(dst.len() % cols, 0);
    par::chunks(dst, |off, piece| {
        // The piece may start and end mid-row.
        let j0 = off % cols;
        let head = if j0 == 0 { 0 } else { (cols - j0).min(piece.len()) };
        let (first, rest) = piece.split_at_mut(head);
        first.iter_mut().zip(&bias[j0..]).for_each(|(d, &b)| *d += b);
        for row in rest.chunks_mut(cols) {
            row.iter_mut().zip(bias).for_each(|(d, &b)| *d += b);
        }
    });
}

/// Sizes rayon's global pool (used by multi-threaded GEMM) once per process,
/// its threads flushing subnormal results to zero ([`ftz`]); later calls
/// keep the first size. Called on the thread named by
/// [`pool_includes_this_thread`], that thread becomes one of the pool's `n`
/// threads.
pub fn init_threads(n: usize) {
    let builder = ftz::pool_builder(n);
    let here = POOL_THREAD
        .get()
        .is_some_and(|t| *t == std::thread::current().id())
        && n > 1
        && std::env::var("AEKIT_POOL_MAIN").map_or(true, |v| v != "0");
    let _ = if here {
        // The start handler runs only on the threads rayon starts; this
        // thread's mode was set by whoever called pool_includes_this_thread.
        builder.use_current_thread().build_global()
    } else {
        builder.build_global()
    };
}

static POOL_THREAD: std::sync::OnceLock<std::thread::ThreadId> = std::sync::OnceLock::new();

/// Asks that the calling thread be one of the global pool's threads when
/// [`init_threads`] builds it from this thread (`AEKIT_POOL_MAIN=0` turns
/// this off). A parallel loop called from a thread outside the pool hands
/// its work to the pool and sleeps until the pool has done it, which costs
/// a wake-up of that thread per loop; from a thread of the pool the loop
/// starts at once and the thread does a share of the work. For a program's
/// main thread that lives as long as the process and has flush-to-zero set
/// ([`ftz::enable_for_thread`]), as the `aekit` command's does; a thread
/// that may exit before the process must not call it.
pub fn pool_includes_this_thread() {
    let _ = POOL_THREAD.set(std::thread::current().id());
}
