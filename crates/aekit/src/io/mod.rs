//! Files: atomic writes, safetensors checkpoints, NPY export, run directories.

pub mod safetensors;

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder,
/// flushed to disk, then renamed over `path`: readers see the old file or the
/// new one, never half of one. A symbolic link is written through: its
/// target is replaced, the link stays.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |f| f.write_all(bytes))
}

/// Like [`atomic_write`], with the bytes written by `write` into the
/// temporary file (streamed: never held whole in memory).
pub fn atomic_write_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let resolved;
    let path = if path.is_symlink() {
        let target = std::fs::read_link(path).map_err(|e| Error::io("cannot read the link", path, e))?;
        resolved = match path.parent() {
            Some(d) if target.is_relative() => d.join(target),
            _ => target,
        };
        resolved.as_path()
    } else {
        path
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::format(path, "is not a file path"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        write(&mut f)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("cannot write", path, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("cannot rename into place", path, e)
    })
}

/// Checks, before any work, that a command may write its output file `out`:
/// never over one of the files it reads (`inputs`: its data file, its model
/// file; a link to one counts as the file), and over any other existing
/// file only with `force`. Refused too: a folder at `out`, and a missing
/// parent folder.
pub fn check_output_file(out: &Path, force: bool, inputs: &[&Path]) -> Result<()> {
    let parent = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::format(out, "cannot be written: its folder does not exist"));
    }
    if let Ok(o) = out.canonicalize() {
        if let Some(input) = inputs.iter().find(|i| i.canonicalize().is_ok_and(|i| i == o)) {
            let alias = if input.as_os_str() == out.as_os_str() {
                String::new()
            } else {
                format!(" ({} by another name)", input.display())
            };
            return Err(Error::format(
                out,
                format!("is a file this command reads{alias}: writing there would replace it; name another output"),
            ));
        }
    }
    if out.is_dir() {
        return Err(Error::format(out, "is a folder; the output is a file"));
    }
    if out.exists() && !force {
        return Err(Error::format(
            out,
            "already exists; pass --force to replace it, or name another output",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_and_leaves_no_temporary() {
        let scratch = tempfile::Builder::new()
            .prefix("aekit-atomic-")
            .tempdir()
            .unwrap();
        let dir = scratch.path();
        let p = dir.join("f.txt");
        atomic_write(&p, b"first").unwrap();
        atomic_write(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
        assert_eq!(left.len(), 1);
        let e = atomic_write(&dir.join("missing/f.txt"), b"x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing/f.txt"), "{e}");
    }

    #[test]
    fn a_link_is_written_through_not_replaced() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        std::fs::create_dir(dir.join("real")).unwrap();
        std::os::unix::fs::symlink("real/t.txt", dir.join("link.txt")).unwrap();
        atomic_write(&dir.join("link.txt"), b"through").unwrap();
        assert!(dir.join("link.txt").is_symlink(), "the link stays a link");
        assert_eq!(std::fs::read(dir.join("real/t.txt")).unwrap(), b"through");
    }

    #[test]
    fn an_output_never_replaces_an_input_and_an_existing_file_only_with_force() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let data = dir.join("data.npy");
        std::fs::write(&data, b"input").unwrap();
        std::os::unix::fs::symlink("data.npy", dir.join("link.npy")).unwrap();
        let new = dir.join("codes.npy");
        check_output_file(&new, false, &[&data]).unwrap();
        for out in [data.clone(), dir.join("link.npy"), dir.join(".").join("data.npy")] {
            for force in [false, true] {
                let e = check_output_file(&out, force, &[&data]).unwrap_err().to_string();
                assert!(e.contains("a file this command reads"), "{e}");
            }
        }
        let other = dir.join("old.csv");
        std::fs::write(&other, b"kept").unwrap();
        let e = check_output_file(&other, false, &[&data])
            .unwrap_err()
            .to_string();
        assert!(e.contains("old.csv") && e.contains("--force"), "{e}");
        check_output_file(&other, true, &[&data]).unwrap();
        let e = check_output_file(dir, true, &[]).unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
        let e = check_output_file(&dir.join("nope/x.npy"), true, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("folder does not exist"), "{e}");
        assert_eq!(std::fs::read(&data).unwrap(), b"input");
        assert_eq!(std::fs::read(&other).unwrap(), b"kept");
    }
}
