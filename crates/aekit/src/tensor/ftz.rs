//! Flush-to-zero for the threads that train.
//!
//! A result below f32's normal range (|x| < 2⁻¹²⁶ ≈ 1.2·10⁻³⁸) is a
//! subnormal number, and on x86 a multiply that makes or reads one takes a
//! microcode assist: the GEMM door on a weight gradient's shape ran 140×
//! slower on an Intel Xeon (Sapphire Rapids) when every product underflowed
//! (benches/subnormal.rs, docs/results/subnormals.md). A net whose sigmoid
//! units saturate (a large pretraining rate) makes them by the million: σ
//! of −90 is 10⁻³⁹, a velocity with no gradient decays through them, and
//! an activation of 10⁻²⁰ times a delta of 10⁻²⁰ underflows inside the
//! GEMM. Such a net trained three to six times
//! slower than an unsaturated one of the same shape. Flushing values in
//! the element-wise loops would not reach the products that underflow
//! inside the GEMM.
//!
//! The CPU's flush-to-zero mode (MXCSR bit 15 on x86-64) writes 0 for
//! every result that would be subnormal, at full speed. aekit sets it on
//! the threads it trains on: rayon's pools ([`super::init_threads`]), the
//! threads it spawns, and the calling thread for the length of a run
//! ([`FlushToZero`], which puts the previous mode back when dropped), as
//! PyTorch's `set_flush_denormal`, TensorFlow and XLA's CPU backend do.
//! Only flush-to-zero is set, not denormals-are-zero: with no subnormal
//! ever made, none is read. What it changes: a value that would have been
//! below 1.2·10⁻³⁸ is 0, which moves no weight (θ + v for such a v rounds
//! back to θ for any |θ| above 2⁻¹⁰²). Rust assumes the default
//! floating-point mode, so a compile-time constant may still fold to a
//! subnormal; nothing in aekit depends on either outcome. On other
//! architectures this is a no-op.
#![allow(unsafe_code)]

/// MXCSR's flush-to-zero bit.
#[cfg(target_arch = "x86_64")]
const FTZ: u32 = 1 << 15;

#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut c = 0u32;
    // SAFETY: stmxcsr stores the 4-byte register at a valid, writable,
    // aligned address (a local).
    unsafe {
        core::arch::asm!("stmxcsr [{}]", in(reg) &mut c as *mut u32, options(nostack, preserves_flags));
    }
    c
}

#[cfg(target_arch = "x86_64")]
fn set_mxcsr(c: u32) {
    // SAFETY: ldmxcsr reads 4 bytes from a valid address; `c` only ever
    // differs from a value read from the register in the FTZ bit, so no
    // reserved bit is set (which would fault).
    unsafe {
        core::arch::asm!("ldmxcsr [{}]", in(reg) &c as *const u32, options(nostack, preserves_flags, readonly));
    }
}

/// Whether this thread flushes subnormal results to zero.
pub fn enabled() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        mxcsr() & FTZ != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Sets flush-to-zero on this thread for good: for threads aekit owns
/// (rayon's workers, spawned trainers).
pub fn enable_for_thread() {
    #[cfg(target_arch = "x86_64")]
    set_mxcsr(mxcsr() | FTZ);
}

/// Flush-to-zero on this thread until dropped, then the mode it had.
#[must_use = "the mode reverts when the guard is dropped"]
pub struct FlushToZero {
    #[cfg(target_arch = "x86_64")]
    was_on: bool,
}

impl FlushToZero {
    /// Turns flush-to-zero on for this thread.
    pub fn on() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let was_on = enabled();
            enable_for_thread();
            FlushToZero { was_on }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushToZero {}
    }
}

impl Drop for FlushToZero {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if !self.was_on {
            set_mxcsr(mxcsr() & !FTZ);
        }
    }
}

/// A rayon pool of `n` threads that flush subnormal results to zero.
pub fn pool_builder(n: usize) -> rayon::ThreadPoolBuilder {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .start_handler(|_| enable_for_thread())
}

/// Builds rayon's global pool at rayon's own default size
/// (`RAYON_NUM_THREADS`, else one thread per CPU), its threads flushing
/// subnormal results to zero; nothing if the global pool exists already.
pub fn init_default_global_pool() {
    let _ = rayon::ThreadPoolBuilder::new()
        .start_handler(|_| enable_for_thread())
        .build_global();
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// 2⁻¹²⁶ · 2⁻¹⁰: subnormal by default, zero under flush-to-zero.
    fn underflow() -> f32 {
        black_box(f32::MIN_POSITIVE) * black_box(1.0 / 1024.0)
    }

    #[test]
    fn the_guard_flushes_and_puts_the_mode_back() {
        // Test threads start in the default mode.
        std::thread::spawn(|| {
            assert!(!enabled());
            assert!(underflow() > 0.0, "subnormal without the guard");
            {
                let _g = FlushToZero::on();
                assert!(enabled());
                assert_eq!(underflow(), 0.0);
                // Nested guards keep the mode until the outer one drops.
                drop(FlushToZero::on());
                assert!(enabled());
            }
            assert!(!enabled());
            assert!(underflow() > 0.0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn pool_threads_flush() {
        let pool = pool_builder(2).build().unwrap();
        let all: Vec<(bool, f32)> = pool.install(|| {
            use rayon::prelude::*;
            (0..64)
                .into_par_iter()
                .map(|_| (enabled(), underflow()))
                .collect()
        });
        assert!(all.iter().all(|&(on, u)| on && u == 0.0));
    }
}
