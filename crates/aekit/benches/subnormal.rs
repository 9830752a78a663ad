//! What subnormal numbers cost the GEMM door, with and without
//! flush-to-zero (`aekit::tensor::ftz`):
//!
//! ```sh
//! cargo bench -p aekit --bench subnormal
//! ```
//!
//! A weight gradient's shape at batch 20 (aᵀ·δ: 1,000 × 20 times
//! 20 × 1,000, one thread), its inputs either of ordinary size or such that
//! every product underflows (activations of 10⁻²⁰ times deltas of 10⁻²⁰, as
//! in a net whose sigmoid units saturate). The four cases run in turns;
//! each line is the median of the rounds. Figures and what they meant:
//! docs/results/subnormals.md.

use aekit::tensor::ftz::FlushToZero;
use aekit::tensor::gemm::{gemm, Par};
use std::hint::black_box;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (m, n, k) = (1000, 1000, 20);
    // Varied values so that no product is special, scaled to the case.
    let fill = |len: usize, scale: f32| -> Vec<f32> {
        (0..len)
            .map(|i| scale * (0.5 + ((i * 7919) % 1000) as f32 / 1000.0))
            .collect()
    };
    let cases: [(&str, f32, f32); 2] = [
        ("ordinary inputs", 0.5, 0.01),
        ("underflowing products", 1e-20, 1e-20),
    ];
    let mut c = vec![0.0f32; m * n];
    let reps = 20;
    let rounds = 7;
    let mut times = vec![Vec::new(); 4];
    for _ in 0..rounds {
        for (ci, &(_, sa, sb)) in cases.iter().enumerate() {
            let (a, b) = (fill(m * k, sa), fill(k * n, sb));
            for flush in [false, true] {
                let guard = flush.then(FlushToZero::on);
                let t = Instant::now();
                for _ in 0..reps {
                    gemm(
                        m,
                        n,
                        k,
                        1.0,
                        black_box(&a),
                        true,
                        black_box(&b),
                        false,
                        false,
                        &mut c,
                        Par::Seq,
                    );
                }
                times[ci * 2 + flush as usize].push(t.elapsed().as_secs_f64() / reps as f64 * 1e3);
                drop(guard);
                black_box(&c);
            }
        }
    }
    let base = median(times[0].clone());
    println!("aᵀ·δ, 1000 × 20 by 20 × 1000, one thread, median of {rounds} rounds of {reps}:");
    for (ci, &(name, _, _)) in cases.iter().enumerate() {
        for flush in [false, true] {
            let t = median(times[ci * 2 + flush as usize].clone());
            let mode = if flush { "flush-to-zero" } else { "default mode " };
            println!(
                "  {name:<22} {mode}  {t:8.3} ms  ({:.1}× the ordinary inputs)",
                t / base
            );
        }
    }
}
