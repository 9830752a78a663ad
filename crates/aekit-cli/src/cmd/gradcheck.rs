//! `aekit gradcheck` and `aekit patches`: the sparse autoencoder exercise's
//! two helpers.

use crate::cli::{GradcheckArgs, PatchesArgs};
use aekit::data::patches::{normalize_patches, read_image_dir, sample_patches};
use aekit::models::gradcheck::{dae_suite, sparse_suite};
use anyhow::{bail, Result};

pub fn run(a: GradcheckArgs) -> Result<()> {
    // Small models: the checks run in f64 with two evaluations per
    // parameter checked.
    for (flag, v, most) in [
        ("--n-vis", a.n_vis, 4096),
        ("--hidden", a.hidden, 4096),
        ("--samples", a.samples, 10_000),
    ] {
        if !(1..=most).contains(&v) {
            bail!("{flag}: {v} is outside 1..={most} (gradient checks are for small models)");
        }
    }
    let results = match a.model.as_str() {
        "sparse" => sparse_suite(a.n_vis, a.hidden, a.samples, a.seed),
        "dae" => dae_suite(a.n_vis, a.hidden, a.samples, a.seed),
        "all" => [
            sparse_suite(a.n_vis, a.hidden, a.samples, a.seed),
            dae_suite(a.n_vis, a.hidden, a.samples, a.seed),
        ]
        .concat(),
        m => bail!("--model: unknown model `{m}` (expected sparse, dae or all)"),
    };
    let mut failed = 0;
    for (label, diff) in &results {
        let ok = *diff < a.tolerance;
        failed += usize::from(!ok);
        println!("{} {diff:.3e}  {label}", if ok { "ok  " } else { "FAIL" });
    }
    if failed > 0 {
        bail!(
            "{failed} of {} gradient checks exceeded {:e}",
            results.len(),
            a.tolerance
        );
    }
    eprintln!(
        "all {} gradient checks below {:e} (‖g−ĝ‖/‖g+ĝ‖, central differences, f64)",
        results.len(),
        a.tolerance
    );
    Ok(())
}

pub fn patches(a: PatchesArgs) -> Result<()> {
    // The outputs may replace neither each other nor an image read.
    let read: Vec<std::path::PathBuf> = std::fs::read_dir(&a.images)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    let mut inputs: Vec<&std::path::Path> = read.iter().map(|p| p.as_path()).collect();
    aekit::io::check_output_file(&a.out, a.force, &inputs)?;
    if let Some(p) = &a.picture {
        if p == &a.out {
            bail!("--picture and --out both name {}", p.display());
        }
        inputs.push(&a.out);
        aekit::io::check_output_file(p, a.force, &inputs)?;
    }
    let side = a.size as u128;
    aekit::tensor::memory::check_f32s("--count", (a.count as u128) * side * side)?;
    let images = read_image_dir(&a.images)?;
    let mut d = sample_patches(&images, a.size, a.count, a.seed)?;
    if a.normalize {
        normalize_patches(&mut d);
    }
    aekit::data::npy::write_npy(&a.out, &[d.n, d.dim], &d.x)?;
    if let Some(p) = &a.picture {
        let tiles: Vec<Vec<f32>> = (0..d.n.min(100)).map(|i| d.row(i).to_vec()).collect();
        let img = aekit::viz::tile_grid(&tiles, a.size, a.size, 10, aekit::viz::Scale::PerTile, 4);
        aekit::viz::save_png(p, &img)?;
    }
    eprintln!(
        "wrote {} patches of {}×{} from {} images to {}",
        d.n,
        a.size,
        a.size,
        images.len(),
        a.out.display()
    );
    Ok(())
}
