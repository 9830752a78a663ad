//! A run directory: `config.toml`, `metrics.csv`, `summary.json`, the model,
//! checkpoints and pictures. Every file is written atomically (a temporary
//! name, then a rename), and each of the three text files has one writer
//! here.

use crate::error::{Error, Result};
use crate::models::stacked::{FinetuneEpoch, PretrainEpoch};
use crate::train::EpochMetrics;
use std::path::{Path, PathBuf};

/// Where a run writes: a folder named by the user, or a fresh one under
/// `runs/`; `force` lets a named folder that holds an earlier run be
/// emptied and reused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Out {
    pub path: Option<PathBuf>,
    pub force: bool,
}

impl Out {
    /// A named folder, not forced.
    pub fn to(path: impl Into<PathBuf>) -> Out {
        Out {
            path: Some(path.into()),
            force: false,
        }
    }
}

/// The lock file a run holds in its folder while it writes.
pub const LOCK: &str = ".lock";

/// The folder one training command writes into, and holds (a lock file)
/// until it is dropped. A run directory belongs to one run: a named folder
/// that already holds files is refused (or, with `force`, emptied if it holds
/// an earlier run), a default name is never shared by two runs, and a second
/// process cannot write a folder that another holds.
#[derive(Debug)]
pub struct RunDir {
    pub path: PathBuf,
    lock: PathBuf,
    /// The verb that writes the run (`train`, `cae`, …), named on the first
    /// line of its `config.toml`.
    kind: String,
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

impl RunDir {
    /// The folder `out` names (made if needed), or a new one under `runs/`
    /// named `<prefix>-<unix time>` (with `-2`, `-3`, … when that is taken).
    pub fn claim(out: &Out, prefix: &str) -> Result<RunDir> {
        match &out.path {
            None => Self::claim_new(Path::new("runs"), prefix),
            Some(p) => Self::claim_named(p, out.force, prefix),
        }
    }

    /// A new folder under `parent`: the name is claimed by creating it, so
    /// two runs started in the same second get two folders.
    pub fn claim_new(parent: &Path, prefix: &str) -> Result<RunDir> {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create folder", parent, e))?;
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for n in 1.. {
            let name = if n == 1 {
                format!("{prefix}-{t}")
            } else {
                format!("{prefix}-{t}-{n}")
            };
            let p = parent.join(name);
            match std::fs::create_dir(&p) {
                Ok(()) => return Self::lock(p, prefix),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("cannot create run directory", &p, e)),
            }
        }
        unreachable!("some name is free")
    }

    fn claim_named(p: &Path, force: bool, kind: &str) -> Result<RunDir> {
        if p.exists() {
            if !p.is_dir() {
                return Err(Error::config(
                    "out",
                    format!("{} exists and is not a folder", p.display()),
                ));
            }
            if p.join(LOCK).exists() {
                // A run that was killed leaves its lock behind: that one is
                // removed (it guards nothing); a live holder's is an error.
                if !holder_has_ended(p) {
                    return Err(locked(p));
                }
                let lock = p.join(LOCK);
                std::fs::remove_file(&lock)
                    .map_err(|e| Error::io("cannot remove the stale lock", &lock, e))?;
            }
            let entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io("cannot read folder", p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            if !entries.is_empty() {
                let run = p.join("config.toml").is_file() || p.join("summary.json").is_file();
                if !force {
                    return Err(Error::config(
                        "out",
                        format!(
                            "{} already holds {}; choose another --out, or give --force to replace {}",
                            p.display(),
                            if run { "a run" } else { "files" },
                            if run {
                                "it"
                            } else {
                                "them (only a run directory is replaced)"
                            },
                        ),
                    ));
                }
                if !run {
                    return Err(Error::config(
                        "out",
                        format!(
                            "{} holds files but no run (no config.toml or summary.json): --force replaces only a run directory",
                            p.display()
                        ),
                    ));
                }
                let mut kept = Vec::new();
                for e in entries {
                    let name = e
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if !written_by_a_run(&name) {
                        kept.push(name);
                        continue;
                    }
                    let r = if e.is_dir() && !e.is_symlink() {
                        std::fs::remove_dir_all(&e)
                    } else {
                        std::fs::remove_file(&e)
                    };
                    r.map_err(|err| Error::io("cannot remove the earlier run's", &e, err))?;
                }
                if !kept.is_empty() {
                    kept.sort();
                    eprintln!(
                        "--force: kept {} in {} (no run writes {}); the earlier run's files are replaced",
                        kept.join(", "),
                        p.display(),
                        if kept.len() == 1 {
                            "that name"
                        } else {
                            "those names"
                        }
                    );
                }
            }
        } else {
            std::fs::create_dir_all(p).map_err(|e| Error::io("cannot create run directory", p, e))?;
        }
        Self::lock(p.to_path_buf(), kind)
    }

    /// Takes the folder's lock, or says who holds it.
    fn lock(path: PathBuf, kind: &str) -> Result<RunDir> {
        let lock = path.join(LOCK);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => locked(&path),
                _ => Error::io("cannot create the lock file", &lock, e),
            })?;
        use std::io::Write as _;
        let _ = writeln!(f, "{}", std::process::id());
        Ok(RunDir {
            path,
            lock,
            kind: kind.to_string(),
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A sub-folder (created if needed), e.g. `checkpoints` or `members/3`.
    pub fn folder(&self, name: &str) -> Result<PathBuf> {
        let p = self.file(name);
        std::fs::create_dir_all(&p).map_err(|e| Error::io("cannot create folder", &p, e))?;
        Ok(p)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        crate::io::atomic_write(&self.file(name), bytes)
    }

    /// `config.toml`: the resolved configuration, after a comment line
    /// naming the verb that wrote it (`# aekit train run`), which `--resume`
    /// of another verb reads to say whose run it is.
    pub fn write_config(&self, toml: &str) -> Result<()> {
        let text = format!("{KIND_LINE}{} run\n{toml}", self.kind);
        self.write("config.toml", text.as_bytes())
    }

    /// `summary.json`: the run's final figures, with aekit's version added.
    pub fn write_summary(&self, summary: &serde_json::Value) -> Result<()> {
        let mut s = summary.clone();
        if let Some(o) = s.as_object_mut() {
            o.insert("aekit_version".into(), env!("CARGO_PKG_VERSION").into());
        }
        let text = serde_json::to_string_pretty(&s).expect("JSON values always serialise");
        self.write("summary.json", text.as_bytes())
    }

    /// Rewrites `name` (a metrics file) with every row so far: called after
    /// each epoch, so an interrupted run keeps its history.
    pub fn write_rows<R: MetricsRow>(&self, name: &str, rows: &[R]) -> Result<()> {
        self.write(name, metrics_csv(rows).as_bytes())
    }

    /// [`RunDir::write_rows`] into `metrics.csv`.
    pub fn write_metrics<R: MetricsRow>(&self, rows: &[R]) -> Result<()> {
        self.write_rows("metrics.csv", rows)
    }

    /// Writes checkpoint `n` (the run's `n`th epoch, counted over all its
    /// stages): `checkpoints/epoch-<n>/` holding `model.safetensors` (written
    /// by `model`, a model file every verb reads) and `state.safetensors`
    /// (what `--resume` needs). The folder is filled under a temporary name
    /// and renamed into place, so it is complete or absent; the checkpoints
    /// older than the last [`KEEP`] are then removed.
    pub fn save_checkpoint(
        &self,
        n: usize,
        model: impl FnOnce(&Path) -> Result<()>,
        state: &crate::train::State,
    ) -> Result<PathBuf> {
        save_checkpoint(&self.path, n, model, state)
    }

    /// Reopens the run directory `path` to continue it with `verb`: it must
    /// hold a run (its `config.toml`) of that verb that has not finished (no
    /// `summary.json`), and no live process may hold it (a lock left by a
    /// killed run is taken over).
    pub fn reopen(path: &Path, verb: &str) -> Result<RunDir> {
        let config = path.join("config.toml");
        if !config.is_file() {
            return Err(Error::config(
                "resume",
                format!("{} holds no run to resume (no config.toml)", path.display()),
            ));
        }
        if let Some(by) = run_kind(&config)?.filter(|by| by != verb) {
            return Err(another_verbs_run(path, &by));
        }
        if path.join("summary.json").is_file() {
            return Err(Error::config(
                "resume",
                format!(
                    "the run in {} has finished (it has a summary.json): nothing to resume",
                    path.display()
                ),
            ));
        }
        let lock = path.join(LOCK);
        if lock.exists() {
            let pid = std::fs::read_to_string(&lock).unwrap_or_default();
            let alive = pid
                .trim()
                .parse::<u32>()
                .is_ok_and(|p| p != std::process::id() && process_alive(p));
            if alive || !Path::new("/proc/self").exists() {
                return Err(locked(path));
            }
            std::fs::remove_file(&lock).map_err(|e| Error::io("cannot remove the stale lock", &lock, e))?;
        }
        Self::lock(path.to_path_buf(), verb)
    }
}

/// [`RunDir::save_checkpoint`] into the run (or member) folder `run`.
pub fn save_checkpoint(
    run: &Path,
    n: usize,
    model: impl FnOnce(&Path) -> Result<()>,
    state: &crate::train::State,
) -> Result<PathBuf> {
    let root = run.join(CHECKPOINTS);
    std::fs::create_dir_all(&root).map_err(|e| Error::io("cannot create folder", &root, e))?;
    let tmp = root.join(format!(".epoch-{n}.partial"));
    let done = root.join(format!("epoch-{n}"));
    for p in [&tmp, &done] {
        if p.exists() {
            std::fs::remove_dir_all(p).map_err(|e| Error::io("cannot remove", p, e))?;
        }
    }
    std::fs::create_dir(&tmp).map_err(|e| Error::io("cannot create folder", &tmp, e))?;
    model(&tmp.join("model.safetensors"))?;
    state.save(&tmp.join(STATE))?;
    std::fs::rename(&tmp, &done)
        .map_err(|e| Error::io("cannot move the checkpoint into place:", &done, e))?;
    for (k, old) in checkpoints(run)? {
        if k + KEEP <= n {
            let _ = std::fs::remove_dir_all(old);
        }
    }
    // Fault injection for the tests of resuming: die here, as `kill -9`
    // would, once checkpoint `n` is written.
    if std::env::var(KILL_AFTER).ok().and_then(|v| v.parse().ok()) == Some(n) {
        std::process::abort();
    }
    Ok(done)
}

/// The environment variable that makes a run abort right after writing the
/// checkpoint it names (for tests of resuming after a kill).
pub const KILL_AFTER: &str = "AEKIT_KILL_AFTER_CHECKPOINT";

/// Reads the `config.toml` of the run reopened as `run` with `read`. When
/// it does not parse and the run's last checkpoint was written by another
/// verb (a config from before its first line named the verb), the error
/// says whose run it is instead of naming the field the parser tripped on.
pub fn read_config<T>(run: &RunDir, read: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    read(&run.file("config.toml")).map_err(|e| {
        let by = last_state(&run.path)
            .ok()
            .flatten()
            .and_then(|(_, s)| s.get::<String>("verb").ok());
        match by {
            Some(by) if by != run.kind => another_verbs_run(&run.path, &by),
            _ => e,
        }
    })
}

/// The state to resume the run (or ensemble member) in `folder` from: its
/// last complete checkpoint, which must have been written by `verb`; `None`
/// (said on stderr) when it has none, and the run starts from the beginning.
pub fn resume_state(folder: &Path, verb: &str) -> Result<Option<crate::train::State>> {
    let Some((n, s)) = last_state(folder)? else {
        eprintln!(
            "no checkpoint in {}: starting from the beginning",
            folder.display()
        );
        return Ok(None);
    };
    let by: String = s.get("verb")?;
    if by != verb {
        return Err(another_verbs_run(folder, &by));
    }
    eprintln!("resuming from checkpoint {n} in {}", folder.display());
    Ok(Some(s))
}

/// The names a run writes at the top of its folder: exact, or with one `*`
/// for any text. `--force` removes these and keeps any other entry (a
/// user's notes, the data file a run was given).
const RUN_ENTRIES: &[&str] = &[
    // Every run, and the lock and temporary files of one that was killed.
    "config.toml",
    "summary.json",
    "metrics.csv",
    "model.safetensors",
    "checkpoints",
    LOCK,
    ".*.tmp",
    // The verbs' own files and folders.
    "filters.png",
    "reconstructions.png",
    "codes.png",
    "model-finetuned.safetensors",
    "pretrain.csv",
    "finetune.csv",
    "finetune-error.png",
    "members",
    "denoised",
    "denoised.npy",
    "denoised.png",
    "noisy.npy",
    "inpainted",
    "inpainted.npy",
    "inpainted.png",
    "mask.npy",
    "explained-variance.csv",
    "explained-variance.png",
    "error-vs-components.csv",
    "relative-xent.png",
    // Experiments and benchmarks.
    "results.csv",
    "results.md",
    "summary.csv",
    "runs.csv",
    "variants.csv",
    "points.csv",
    "eager.csv",
    "eager.md",
    "baselines.csv",
    "coverage.csv",
    "bench.csv",
    "bench.png",
    "curve.csv",
    "curve.png",
    "two_core_check.csv",
    "inputs",
    "masks",
    "examples-*.png",
    "dae-*.png",
    "error-*.png",
    "recon-*.png",
    "rmse-*.png",
    "loss-vs-*.png",
    "digits-*.png",
    "builtin-*.png",
    "mnist-*.png",
    "fashion-mnist-*.png",
    "cifar10-*.png",
    "cifar100-*.png",
];

/// Whether a run writes an entry named `name` at the top of its folder.
fn written_by_a_run(name: &str) -> bool {
    RUN_ENTRIES.iter().any(|pattern| match pattern.split_once('*') {
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
        None => name == *pattern,
    })
}

/// The start of `config.toml`'s first line, before the verb's name.
const KIND_LINE: &str = "# aekit ";

/// The verb named on the first line of the `config.toml` at `path`; `None`
/// for a file without that line (written before aekit named it).
fn run_kind(path: &Path) -> Result<Option<String>> {
    use std::io::{BufRead as _, Read as _};
    let f = std::fs::File::open(path).map_err(|e| Error::io("cannot read config", path, e))?;
    let mut first = String::new();
    // A first line that is not text is no kind line; the config's own
    // reader says what is wrong with the file.
    let _ = std::io::BufReader::new(f).take(256).read_line(&mut first);
    Ok(first
        .trim_end()
        .strip_prefix(KIND_LINE)
        .and_then(|rest| rest.strip_suffix(" run"))
        .map(str::to_string))
}

/// The error for resuming with one verb a run that another verb wrote.
fn another_verbs_run(folder: &Path, by: &str) -> Error {
    // `impute fit` writes the runs that carry the checkpoints' `impute`.
    let command = if by == "impute" { "impute fit" } else { by };
    Error::config(
        "resume",
        format!(
            "{} holds a run of `aekit {command}`; resume it with `aekit {command} --resume {}`",
            folder.display(),
            folder.display()
        ),
    )
}

/// The last complete checkpoint's state in the run (or member) folder
/// `run`, and its number.
pub fn last_state(run: &Path) -> Result<Option<(usize, crate::train::State)>> {
    match checkpoints(run)?.pop() {
        Some((n, p)) => Ok(Some((n, crate::train::State::load(&p.join(STATE))?))),
        None => Ok(None),
    }
}

/// Whether process `pid` runs (and is not a zombie: killed, not yet reaped).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The folder of a run's checkpoints.
pub const CHECKPOINTS: &str = "checkpoints";
/// A checkpoint's resume state, beside its `model.safetensors`.
pub const STATE: &str = "state.safetensors";
/// How many of the newest checkpoints a run keeps.
pub const KEEP: usize = 2;

/// The complete checkpoints of the run in `run`, oldest first.
pub fn checkpoints(run: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let root = run.join(CHECKPOINTS);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut out: Vec<(usize, PathBuf)> = std::fs::read_dir(&root)
        .map_err(|e| Error::io("cannot read folder", &root, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("epoch-")?.parse().ok()?;
            e.path().join(STATE).is_file().then(|| (n, e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The model file a `--model` path means: a file as it is; a checkpoint
/// folder's `model.safetensors`; a run directory's `model.safetensors`, or,
/// for a run that has not finished, its last checkpoint's (said on stderr).
pub fn model_file(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let direct = path.join("model.safetensors");
    if direct.is_file() {
        return Ok(direct);
    }
    if let Some((n, p)) = checkpoints(path)?.pop() {
        eprintln!(
            "note: {} has no final model; using checkpoint {n}",
            path.display()
        );
        return Ok(p.join("model.safetensors"));
    }
    Err(Error::config(
        "model",
        format!(
            "{} is a folder with no model.safetensors and no checkpoint",
            path.display()
        ),
    ))
}

/// Adds to an interruption how to continue the run in `run`.
pub fn resume_hint(e: Error, run: &RunDir, verb: &str) -> Error {
    match e {
        Error::Interrupted(why) => Error::Interrupted(format!(
            "{why}; the last complete checkpoint is kept: continue with `aekit {verb} --resume {}`",
            run.path.display()
        )),
        e => e,
    }
}

/// Whether the process named in `p`'s lock has ended (killed without
/// releasing it). Unknown (no pid yet, this process, or no `/proc` to ask)
/// counts as not ended.
fn holder_has_ended(p: &Path) -> bool {
    let pid = std::fs::read_to_string(p.join(LOCK)).unwrap_or_default();
    Path::new("/proc/self").exists()
        && pid
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| pid != std::process::id() && !process_alive(pid))
}

/// The error for a folder another run holds.
fn locked(p: &Path) -> Error {
    let pid = std::fs::read_to_string(p.join(LOCK)).unwrap_or_default();
    Error::config(
        "out",
        format!(
            "{} is being written by another run (process {}); if no run is, remove {}",
            p.display(),
            pid.trim(),
            p.join(LOCK).display()
        ),
    )
}

/// A row of a metrics file: its header and how it is written.
pub trait MetricsRow {
    const HEADER: &'static str;
    fn csv(&self) -> String;
}

/// The header, then one line per row.
pub fn metrics_csv<R: MetricsRow>(rows: &[R]) -> String {
    let mut s = format!("{}\n", R::HEADER);
    for r in rows {
        s.push_str(&r.csv());
        s.push('\n');
    }
    s
}

/// An empty field when there is no value.
fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_default()
}

impl MetricsRow for EpochMetrics {
    const HEADER: &'static str = "epoch,train_loss,val_loss,seconds";
    fn csv(&self) -> String {
        format!(
            "{},{:.6},{},{:.3}",
            self.epoch,
            self.train_loss,
            opt(self.val_loss, 6),
            self.seconds
        )
    }
}

impl MetricsRow for PretrainEpoch {
    const HEADER: &'static str = "layer,phase,epoch,train_loss,updates,seconds";
    fn csv(&self) -> String {
        format!(
            "{},{},{},{:.6},{},{:.3}",
            self.layer, self.phase, self.epoch, self.train_loss, self.updates, self.seconds
        )
    }
}

impl MetricsRow for FinetuneEpoch {
    const HEADER: &'static str = "epoch,train_loss,val_error,seconds";
    fn csv(&self) -> String {
        format!(
            "{},{:.6},{:.4},{:.3}",
            self.epoch, self.train_loss, self.val_error, self.seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_directory_belongs_to_one_run() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("run");
        // A new folder is made and locked while the run holds it.
        let first = RunDir::claim(&Out::to(&p), "x").unwrap();
        first.write_config("a = 1\n").unwrap();
        let e = RunDir::claim(&Out::to(&p), "x").unwrap_err().to_string();
        assert!(e.contains("another run") && e.contains(".lock"), "{e}");
        drop(first);
        assert!(!p.join(LOCK).exists(), "the lock goes with the run");
        // The finished run is kept: a second run into it is refused, unless forced.
        let e = RunDir::claim(&Out::to(&p), "x").unwrap_err().to_string();
        assert!(e.contains("already holds a run") && e.contains("--force"), "{e}");
        assert!(p.join("config.toml").is_file());
        std::fs::create_dir_all(p.join("checkpoints")).unwrap();
        std::fs::write(p.join("checkpoints/epoch-9.safetensors"), b"old").unwrap();
        std::fs::write(p.join("examples-rot.png"), b"old").unwrap();
        std::fs::write(p.join(".model.safetensors.99.tmp"), b"half").unwrap();
        // What no run writes stays: a user's notes, the data a run was given.
        for mine in ["notes.txt", "data.csv"] {
            std::fs::write(p.join(mine), b"mine").unwrap();
        }
        let forced = RunDir::claim(
            &Out {
                path: Some(p.clone()),
                force: true,
            },
            "x",
        )
        .unwrap();
        let mut left: Vec<_> = std::fs::read_dir(&p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [LOCK, "data.csv", "notes.txt"],
            "the old run's files are gone"
        );
        assert_eq!(std::fs::read(p.join("notes.txt")).unwrap(), b"mine");
        drop(forced);
        for mine in ["notes.txt", "data.csv"] {
            std::fs::remove_file(p.join(mine)).unwrap();
        }
        // --force replaces only a run: other files are refused even then.
        let other = tmp.path().join("photos");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("a.png"), b"png").unwrap();
        let e = RunDir::claim(
            &Out {
                path: Some(other.clone()),
                force: true,
            },
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no config.toml"), "{e}");
        assert!(other.join("a.png").is_file());
        // A lock left by a killed run is removed; a live run's stays.
        if Path::new("/proc/self").exists() {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let dead = child.id();
            child.wait().unwrap();
            std::fs::write(p.join("config.toml"), "a = 1\n").unwrap();
            std::fs::write(p.join(LOCK), format!("{dead}\n")).unwrap();
            let e = RunDir::claim(&Out::to(&p), "x").unwrap_err().to_string();
            assert!(e.contains("already holds a run"), "{e}");
            assert!(!p.join(LOCK).exists(), "the dead run's lock is gone");
            std::fs::write(p.join(LOCK), format!("{dead}\n")).unwrap();
            let forced = Out {
                path: Some(p.clone()),
                force: true,
            };
            drop(RunDir::claim(&forced, "x").unwrap());
            std::fs::write(p.join("config.toml"), "a = 1\n").unwrap();
            std::fs::write(p.join(LOCK), "1\n").unwrap();
            let e = RunDir::claim(&forced, "x").unwrap_err().to_string();
            assert!(e.contains("another run (process 1)"), "{e}");
            std::fs::remove_file(p.join(LOCK)).unwrap();
        }
        // A file is not a folder.
        let e = RunDir::claim(&Out::to(other.join("a.png")), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a folder"), "{e}");
    }

    #[test]
    fn a_run_is_reopened_only_by_the_verb_that_wrote_it() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("run");
        drop({
            let run = RunDir::claim(&Out::to(&p), "impute").unwrap();
            run.write_config("[data]\npath = \"t.csv\"\n").unwrap();
            run
        });
        let text = std::fs::read_to_string(p.join("config.toml")).unwrap();
        assert!(text.starts_with("# aekit impute run\n[data]"), "{text}");
        let e = RunDir::reopen(&p, "train").unwrap_err().to_string();
        let again = format!("aekit impute fit --resume {}", p.display());
        assert!(
            e.contains("holds a run of `aekit impute fit`") && e.contains(&again),
            "{e}"
        );
        assert!(!p.join(LOCK).exists(), "a refused reopen takes no lock");
        let run = RunDir::reopen(&p, "impute").unwrap();
        assert!(p.join(LOCK).is_file());
        drop(run);
        // A config written before the kind line: reopened, then read; when
        // it does not parse, the last checkpoint's verb names the run.
        std::fs::write(p.join("config.toml"), "[data]\n").unwrap();
        let run = RunDir::reopen(&p, "train").unwrap();
        let refuse = |_: &Path| -> Result<()> { Err(Error::config("data", "unknown field `path`")) };
        let e = read_config(&run, refuse).unwrap_err().to_string();
        assert!(
            e.contains("unknown field"),
            "no checkpoint, the parser's word: {e}"
        );
        let mut st = crate::train::State::new();
        st.put("verb", "impute");
        save_checkpoint(&p, 1, |m| crate::io::atomic_write(m, b"model"), &st).unwrap();
        let e = read_config(&run, refuse).unwrap_err().to_string();
        assert!(e.contains(&again), "{e}");
        assert_eq!(read_config(&run, |_| Ok(7)).unwrap(), 7);
    }

    #[test]
    fn default_names_are_never_shared() {
        let tmp = tempfile::tempdir().unwrap();
        let runs: Vec<RunDir> = (0..3)
            .map(|_| RunDir::claim_new(tmp.path(), "train").unwrap())
            .collect();
        let mut names: Vec<&PathBuf> = runs.iter().map(|r| &r.path).collect();
        names.dedup();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(runs
            .iter()
            .all(|r| r.path.starts_with(tmp.path()) && r.path.is_dir()));
    }
}
