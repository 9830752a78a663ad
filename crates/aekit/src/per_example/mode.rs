//! How the lock-step modes share out the work: workers per core, blocks of
//! hidden units, and re-sharing rows by measured speed.

/// Workers the `split` and `rows` modes run for `threads`: at most one per
/// core. Their workers move in lock step, many times per example, so two
/// sharing a core wait for each other's time slices (measured on 2 cores, 10k
/// examples: 0.38 s with 2 workers, 15.7 s with 4, 47 s with 8). The epoch
/// drivers themselves run exactly the count they are given.
pub fn lockstep_workers(threads: usize) -> usize {
    threads
        .min(std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// Splits `n_hid` hidden units into at most `threads` blocks whose starts
/// are multiples of 16, as equal as that allows.
pub fn hidden_blocks(n_hid: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    let chunks = n_hid.div_ceil(16);
    let t = threads.clamp(1, chunks.max(1));
    (0..t)
        .map(|k| {
            let a = (chunks * k / t * 16).min(n_hid);
            let b = (chunks * (k + 1) / t * 16).min(n_hid);
            a..b
        })
        .collect()
}

/// Examples between two re-sharings of the rows in the `balanced` mode, for
/// an epoch of `n`: 4000 (a fraction of a second at 784×500), or an eighth of
/// a short epoch, but at least 200.
pub fn balance_every(n: usize) -> usize {
    (n / 8).clamp(200, 4000)
}

/// New contiguous row bounds for the `balanced` mode: each worker's share
/// moves halfway towards its speed's share (its rows over `busy` seconds),
/// on multiples of 16 rows, and every worker keeps at least one block.
pub fn rebalanced(bounds: &[usize], busy: &[f64]) -> Vec<usize> {
    let t = busy.len();
    assert_eq!(bounds.len(), t + 1);
    let nv = bounds[t];
    if !busy.iter().all(|b| b.is_finite() && *b > 0.0) {
        return bounds.to_vec();
    }
    let rows: Vec<f64> = (0..t).map(|k| (bounds[k + 1] - bounds[k]) as f64).collect();
    let speed: Vec<f64> = rows.iter().zip(busy).map(|(r, b)| r / b).collect();
    let total: f64 = speed.iter().sum();
    let unit = if nv >= 16 * t { 16 } else { 1 };
    let mut out = vec![0usize; t + 1];
    let mut acc = 0.0f64;
    for k in 0..t {
        acc += 0.5 * rows[k] + 0.5 * nv as f64 * speed[k] / total;
        let cut = ((acc / unit as f64).round() as usize * unit).min(nv);
        // At least `unit` rows for this worker and for each one after it.
        out[k + 1] = cut.clamp(out[k] + unit, nv - (t - 1 - k) * unit);
    }
    out[t] = nv;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebalancing_moves_rows_to_the_faster_worker() {
        // Worker 1 took twice as long for the same rows: its share moves
        // halfway from 392 towards 784/3.
        let b = rebalanced(&[0, 392, 784], &[1.0, 2.0]);
        assert_eq!(b, vec![0, 464, 784]);
        // Equal speeds keep equal shares; bounds stay on 16-row steps.
        assert_eq!(rebalanced(&[0, 400, 784], &[1.0, 0.96]), vec![0, 400, 784]);
        // A hopeless worker loses half its rows per round, and keeps one block.
        assert_eq!(rebalanced(&[0, 16, 784], &[1.0, 1e9]), vec![0, 400, 784]);
        assert_eq!(rebalanced(&[0, 768, 784], &[1.0, 1e9]), vec![0, 768, 784]);
        // Tiny layers step by single rows.
        assert_eq!(rebalanced(&[0, 3, 6], &[1.0, 1.0]), vec![0, 3, 6]);
        // No timing (zero or NaN) changes nothing.
        assert_eq!(rebalanced(&[0, 392, 784], &[0.0, 1.0]), vec![0, 392, 784]);
        assert_eq!(rebalanced(&[0, 392, 784], &[f64::NAN, 1.0]), vec![0, 392, 784]);
    }

    #[test]
    fn hidden_blocks_cover_everything_aligned() {
        assert_eq!(hidden_blocks(500, 2), vec![0..256, 256..500]);
        assert_eq!(hidden_blocks(100, 3), vec![0..32, 32..64, 64..100]);
        assert_eq!(hidden_blocks(20, 8), vec![0..16, 16..20]);
        assert_eq!(hidden_blocks(500, 1), vec![0..500]);
    }
}
