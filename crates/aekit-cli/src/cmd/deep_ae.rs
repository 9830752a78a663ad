//! `aekit deep-ae`.

use super::{apply_data, apply_loop, parsed};
use crate::cli::DeepAeArgs;
use aekit::run::deep_ae::{self, DeepAeRun};
use aekit::run::Sections;
use anyhow::Result;

pub fn run(a: DeepAeArgs) -> Result<()> {
    if let Some(dir) = &a.resume.resume {
        deep_ae::resume(dir)?;
        return Ok(());
    }
    let mut c = match &a.config {
        Some(p) => DeepAeRun::read(p)?,
        None => DeepAeRun::default(),
    };
    if a.quick {
        c = c.quick();
    }
    apply_data(&mut c.data, &a.data, &a.split)?;
    let m = &mut c.model;
    apply_loop(&mut m.train, &a.train);
    if let Some(l) = &a.layers {
        m.layers = l.clone();
    }
    if let Some(v) = parsed(&a.code, "--code")? {
        m.code = v;
    }
    if let Some(v) = parsed(&a.pretrain, "--pretrain")? {
        m.pretrain = v;
    }
    if let Some(e) = a.pretrain_epochs {
        m.rbm.epochs = e;
        m.dae.train.epochs = e;
    }
    if let Some(k) = a.cd_k {
        m.rbm.k = k;
    }
    if let Some(v) = parsed(&a.optimizer, "--optimizer")? {
        m.train.optimizer = v;
        if a.train.lr.is_none() && a.config.is_none() {
            // Each optimizer's usual step.
            m.train.lr = match v {
                aekit::train::Optimizer::Sgd => 0.1,
                _ => 1e-3,
            };
        }
        if v == aekit::train::Optimizer::Lbfgs && a.train.batch.is_none() && a.config.is_none() {
            m.train.batch = 1000;
        }
    }
    if let Some(n) = a.line_searches {
        m.line_searches = n;
    }
    if let Some(l) = parsed(&a.loss, "--loss")? {
        m.loss = l;
    }
    if let Some(n) = parsed(&a.noise, "--noise")? {
        m.noise = n;
    }
    if a.standardize {
        m.standardize = true;
        m.output = aekit::models::deep_ae::Code::Linear;
        if a.loss.is_none() {
            m.loss = aekit::layers::Loss::Squared;
        }
    }
    if let Some(o) = parsed(&a.output, "--output")? {
        m.output = o;
    }
    if let Some(f) = a.lr_decay {
        m.lr_decay = f;
    }
    if let Some(e) = a.decay_from {
        m.decay_from = e;
    }
    if let Some(t) = a.train.threads {
        m.rbm.threads = t;
        m.dae.train.threads = t;
    }
    if let Some(s) = a.train.seed {
        m.rbm.seed = s;
        m.dae.train.seed = s;
    }
    deep_ae::deep_ae(c, &a.out.out())?;
    Ok(())
}
