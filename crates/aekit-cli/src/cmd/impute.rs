//! `aekit impute`, `aekit impute fit`, `aekit impute apply`.

use super::{apply_loop, parsed};
use crate::cli::{FillArgs, ImputeArgs, ImputeCommand, ImputeFitArgs};
use aekit::run::impute::{self, Fill, ImputeRun, TableData};
use aekit::run::Sections;
use anyhow::Result;

/// The config file (or defaults) with the flags applied on top.
fn resolve(a: &ImputeFitArgs) -> Result<ImputeRun> {
    let mut c = match &a.config {
        Some(p) => ImputeRun::read(p)?,
        None => ImputeRun::default(),
    };
    if let Some(d) = &a.data {
        c.data.path = Some(d.clone());
    }
    if let Some(d) = &a.delimiter {
        c.data.delimiter = Some(d.clone());
    }
    if let Some(m) = &a.missing {
        c.data.missing = m.clone();
    }
    let cols = &mut c.columns;
    for (flag, list) in [
        (&a.categorical, &mut cols.categorical),
        (&a.binary, &mut cols.binary),
        (&a.continuous, &mut cols.continuous),
        (&a.ignore, &mut cols.ignore),
    ] {
        if let Some(v) = flag {
            *list = v.clone();
        }
    }
    if a.drop_empty {
        cols.drop_empty = true;
    }
    if let Some(arch) = parsed(&a.arch, "--arch")? {
        c.model.arch = arch;
    }
    if let Some(l) = &a.layers {
        c.model.layers = l.clone();
    }
    if let Some(act) = parsed(&a.activation, "--activation")? {
        c.model.activation = act;
    }
    if let Some(v) = a.corruption {
        c.model.corruption = v;
    }
    if let Some(v) = a.dropout {
        c.model.dropout = v;
    }
    if let Some(l) = parsed(&a.loss_on, "--loss-on")? {
        c.model.loss_on = l;
    }
    if let Some(l) = parsed(&a.linear, "--linear")? {
        c.model.linear = l;
    }
    apply_loop(&mut c.model.train, &a.train);
    Ok(c)
}

fn fill(f: &FillArgs) -> Fill {
    Fill {
        m: f.m,
        long: f.long,
        mode: f.mode,
        strict: f.strict,
        force: f.force,
    }
}

pub fn run(a: ImputeArgs) -> Result<()> {
    match a.cmd {
        Some(ImputeCommand::Fit(f)) => {
            if let Some(dir) = &f.resume.resume {
                impute::resume_fit(dir)?;
            } else {
                impute::fit(resolve(&f.fit)?, &f.out.out())?;
            }
        }
        Some(ImputeCommand::Apply(p)) => {
            let data = TableData {
                path: Some(p.data.clone()),
                delimiter: p.delimiter.clone(),
                missing: p.missing.clone().unwrap_or_default(),
            };
            impute::apply(&p.model, &data, &p.out, &fill(&p.fill), p.seed)?;
        }
        None => {
            let out = a.out.clone().expect("clap requires --out");
            impute::impute(resolve(&a.fit)?, &out, &fill(&a.fill), a.overimpute)?;
        }
    }
    Ok(())
}
