//! `aekit cae` and `aekit ensemble`.

use super::{apply_data, apply_loop, parsed};
use crate::cli::{CaeArgs, CaeModelArgs, ClassifierArgs, EnsembleArgs};
use aekit::models::conv::CaeTrainConfig;
use aekit::run::cae::{self, CaeRun, ClassifierRun, EnsembleRun};
use aekit::run::Sections;
use anyhow::Result;

/// The model and classifier flags, over the file's or default settings.
fn apply_model(
    arch: &mut String,
    m: &mut CaeTrainConfig,
    c: &mut ClassifierRun,
    a: &CaeModelArgs,
    cls: &ClassifierArgs,
) -> Result<()> {
    if let Some(s) = &a.arch {
        *arch = s.clone();
    }
    if let Some(l) = parsed(&a.loss, "--loss")? {
        m.loss = l;
    }
    if let Some(n) = parsed(&a.noise, "--noise")? {
        m.noise = n;
    }
    if let Some(v) = a.min_improvement {
        m.min_improvement = v;
    }
    if a.standardize {
        m.standardize = true;
        m.linear_output = true;
        if a.loss.is_none() {
            m.loss = aekit::layers::Loss::Squared;
        }
    }
    match a.output.as_deref() {
        None => {}
        Some("identity" | "linear") => m.linear_output = true,
        Some("arch") => m.linear_output = false,
        Some(other) => anyhow::bail!("--output: `{other}` is not identity or arch"),
    }
    if let Some(k) = &cls.classifier {
        c.kind = k.clone();
    }
    if let Some(e) = cls.classifier_epochs {
        c.train.epochs = e;
    }
    if let Some(lr) = cls.classifier_lr {
        c.train.lr = lr;
    }
    if let Some(e) = cls.finetune_epochs {
        c.finetune_epochs = e;
    }
    if let Some(lr) = cls.finetune_lr {
        c.finetune_lr = lr;
    }
    Ok(())
}

pub fn cae(a: CaeArgs) -> Result<()> {
    if let Some(dir) = &a.resume.resume {
        cae::resume_cae(dir)?;
        return Ok(());
    }
    let mut c = match &a.config {
        Some(p) => CaeRun::read(p)?,
        None => CaeRun::default(),
    };
    apply_data(&mut c.data, &a.data, &a.split)?;
    apply_loop(&mut c.model.train, &a.train);
    apply_model(&mut c.arch, &mut c.model, &mut c.classifier, &a.model, &a.cls)?;
    cae::cae(c, &a.out.out())?;
    Ok(())
}

pub fn ensemble(a: EnsembleArgs) -> Result<()> {
    if let Some(dir) = &a.resume.resume {
        cae::resume_ensemble(dir)?;
        return Ok(());
    }
    let mut c = match &a.config {
        Some(p) => EnsembleRun::read(p)?,
        None => EnsembleRun::default(),
    };
    apply_data(&mut c.data, &a.data, &a.split)?;
    apply_loop(&mut c.model.train, &a.train);
    apply_model(&mut c.arch, &mut c.model, &mut c.classifier, &a.model, &a.cls)?;
    if let Some(k) = a.members {
        c.members = k;
    }
    cae::ensemble(c, &a.out.out())?;
    Ok(())
}
