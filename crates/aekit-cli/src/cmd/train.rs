//! `aekit train`: config file, then flags, then the library's workflow.

use super::{apply_data, apply_loop, parsed};
use crate::cli::TrainArgs;
use aekit::run::{ModelKind, RunConfig};
use aekit::train::Optimizer;
use anyhow::Result;

/// The config file (or defaults) with the flags applied on top, validated.
pub fn resolve_config(a: &TrainArgs) -> Result<RunConfig> {
    let mut c = match &a.config {
        Some(p) => RunConfig::read(p)?,
        None => RunConfig::default(),
    };
    apply_data(&mut c.data, &a.data, &a.split)?;
    apply_loop(&mut c.train, &a.train);
    if let Some(k) = parsed(&a.kind, "--kind")? {
        c.kind = k;
    }
    if let Some(o) = parsed(&a.optimizer, "--optimizer")? {
        c.train.optimizer = o;
    }
    if c.kind == ModelKind::Sparse && a.optimizer.is_none() {
        c.train.optimizer = Optimizer::Lbfgs;
    }
    if let Some(p) = parsed(&a.parallel, "--parallel")? {
        c.train.parallel = p;
    }
    let m = &mut c.model;
    if let Some(h) = a.hidden {
        m.n_hid = h;
        c.sparse.n_hid = h;
    }
    if let Some(n) = parsed(&a.noise, "--noise")? {
        m.noise = n;
    }
    if let Some(l) = parsed(&a.loss, "--loss")? {
        m.loss = l;
    }
    if a.untied {
        m.tied = false;
    }
    let s = &mut c.sparse;
    if let Some(r) = a.sparsity {
        s.sparsity_target = r;
    }
    if let Some(b) = a.beta {
        s.sparsity_weight = b;
    }
    if a.standardize {
        c.model.standardize = true;
        s.standardize = true;
        if a.output.is_none() {
            c.model.output_activation = aekit::layers::Activation::Identity;
            s.output_activation = aekit::layers::Activation::Identity;
        }
        if a.loss.is_none() {
            c.model.loss = aekit::layers::Loss::Squared;
        }
    }
    if let Some(o) = parsed(&a.output, "--output")? {
        s.output_activation = o;
        c.model.output_activation = o;
    }
    if let Some(w) = a.train.weight_decay {
        s.weight_decay = w as f64;
    }
    aekit::train::evolve::apply_flags(&mut c.ga, &mut c.es, a.population, a.sigma);
    if let Some(i) = a.max_iter {
        c.lbfgs.max_iter = i;
    }
    if let Some(seed) = a.train.seed {
        c.sparse.seed = seed;
    }
    c.validate()?;
    Ok(c)
}

pub fn run(a: TrainArgs) -> Result<()> {
    if let Some(dir) = &a.resume.resume {
        aekit::run::train::resume(dir)?;
        return Ok(());
    }
    let cfg = resolve_config(&a)?;
    aekit::run::train::train(cfg, &a.out.out())?;
    Ok(())
}
