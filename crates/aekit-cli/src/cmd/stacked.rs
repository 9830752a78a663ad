//! `aekit pretrain` and `aekit finetune`.

use super::{apply_data, apply_loop, parsed};
use crate::cli::{FinetuneArgs, PretrainArgs};
use aekit::run::stacked::{self, FinetuneRun, PretrainRun};
use aekit::run::Sections;
use anyhow::Result;

pub fn pretrain(a: PretrainArgs) -> Result<()> {
    if let Some(dir) = &a.resume.resume {
        stacked::resume_pretrain(dir)?;
        return Ok(());
    }
    let mut c = match &a.config {
        Some(p) => PretrainRun::read(p)?,
        None => PretrainRun::default(),
    };
    apply_data(&mut c.data, &a.data, &a.split)?;
    let m = &mut c.model;
    apply_loop(&mut m.train, &a.train);
    if let Some(e) = a.first_epochs {
        m.train.epochs = e;
    }
    if let Some(l) = &a.layers {
        if a.noise.is_none() && a.config.is_none() {
            // The default corruptions follow the layers given.
            *m = m.clone().with_layers(l);
        } else {
            m.layers = l.clone();
        }
    }
    if let Some(s) = parsed(&a.schedule, "--schedule")? {
        m.schedule = s;
    }
    if let Some(n) = &a.noise {
        m.noise = n
            .iter()
            .map(|n| n.parse().map_err(|e: String| anyhow::anyhow!("--noise: {e}")))
            .collect::<Result<_>>()?;
    }
    if let Some(l) = parsed(&a.loss, "--loss")? {
        m.loss = l;
    }
    if let Some(e) = a.layer_epochs {
        m.layer_epochs = e;
    }
    if let Some(d) = a.lr_decay {
        m.lr_decay = d;
    }
    if a.untied {
        m.untied = true;
    }
    stacked::pretrain(c, &a.out.out())?;
    Ok(())
}

pub fn finetune(a: FinetuneArgs) -> Result<()> {
    if let Some(dir) = &a.resume.resume {
        stacked::resume_finetune(dir)?;
        return Ok(());
    }
    let mut c = match &a.config {
        Some(p) => FinetuneRun::read(p)?,
        None => FinetuneRun::default(),
    };
    apply_data(&mut c.data, &a.data, &a.split)?;
    apply_loop(&mut c.model.train, &a.train);
    if let Some(d) = a.lr_decay {
        c.model.lr_decay = d;
    }
    if let Some(d) = a.dropout {
        c.model.dropout = d;
    }
    if let Some(d) = a.average {
        c.model.average = d;
    }
    if let Some(b) = a.max_norm {
        c.model.max_norm = b;
    }
    let model = a.model.clone().or_else(|| c.pretrained.clone()).ok_or_else(|| {
        anyhow::anyhow!("--model: fine-tuning needs a pretrained stack (from `aekit pretrain`)")
    })?;
    stacked::finetune(c, &aekit::run::dir::model_file(&model)?, &a.out.out())?;
    Ok(())
}
