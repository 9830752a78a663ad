//! Fetching MNIST and Fashion-MNIST into a local cache, with a SHA-256 check.
//!
//! Checksums are taken over the *decompressed* IDX bytes, so a mirror that
//! recompressed the files (as Linux distributions do) still verifies, while a
//! changed pixel does not. A file is written to the cache only after it
//! verifies, under a temporary name then renamed. `AEKIT_MIRROR` (a base URL,
//! `file://` allowed) replaces the built-in mirror list; the dataset name is
//! appended as a folder (`$AEKIT_MIRROR/mnist/train-images-idx3-ubyte.gz`).

use crate::data::dataset::IDX_NAMES;
use crate::error::{Error, Result};
use crate::io::atomic_write;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One file of a remote dataset.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    /// File name in the cache and on the mirror (gzipped).
    pub name: String,
    /// Hex SHA-256 of the decompressed content.
    pub sha256: String,
}

/// A dataset that aekit knows how to fetch.
#[derive(Debug, Clone)]
pub struct RemoteDataset {
    /// Cache sub-folder and name in messages (`mnist`, `fashion-mnist`).
    pub name: &'static str,
    /// Base URLs tried in turn, each ending in `/`.
    pub mirrors: Vec<String>,
    pub files: Vec<RemoteFile>,
}

fn files(sums: [&str; 4]) -> Vec<RemoteFile> {
    IDX_NAMES
        .iter()
        .zip(sums)
        .map(|(n, s)| RemoteFile {
            name: format!("{n}.gz"),
            sha256: s.to_string(),
        })
        .collect()
}

/// MNIST (LeCun, Cortes and Burges).
pub fn mnist() -> RemoteDataset {
    RemoteDataset {
        name: "mnist",
        mirrors: vec![
            "https://ossci-datasets.s3.amazonaws.com/mnist/".into(),
            "https://storage.googleapis.com/cvdf-datasets/mnist/".into(),
        ],
        files: files([
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ]),
    }
}

/// Fashion-MNIST (Xiao, Rasul and Vollgraf, Zalando Research, MIT licence).
pub fn fashion_mnist() -> RemoteDataset {
    RemoteDataset {
        name: "fashion-mnist",
        mirrors: vec!["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/".into()],
        files: files([
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ]),
    }
}

/// The cache root: `$AEKIT_DATA`, else `$XDG_CACHE_HOME/aekit`, else
/// `~/.cache/aekit`, else `./.aekit-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AEKIT_DATA").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("aekit");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join(".cache").join("aekit");
    }
    PathBuf::from(".aekit-data")
}

/// Largest download accepted (the biggest file here is 26 MB).
const MAX_DOWNLOAD: u64 = 256 << 20;

fn fetch(url: &str) -> std::result::Result<Vec<u8>, String> {
    if let Some(path) = url.strip_prefix("file://") {
        return std::fs::read(path).map_err(|e| e.to_string());
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(MAX_DOWNLOAD)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Hex SHA-256 of the content, decompressing gzip first.
pub fn content_sha256(bytes: &[u8]) -> std::io::Result<String> {
    let mut h = Sha256::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut dec = flate2::read::GzDecoder::new(bytes);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = dec.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else {
        h.update(bytes);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn mirrors_for(ds: &RemoteDataset) -> Vec<String> {
    match std::env::var("AEKIT_MIRROR") {
        Ok(m) if !m.is_empty() => vec![format!("{}/{}/", m.trim_end_matches('/'), ds.name)],
        _ => ds.mirrors.clone(),
    }
}

/// Makes sure every file of `ds` is in `root/<name>/`, downloading and
/// verifying the missing ones. Returns that folder.
pub fn ensure_dataset(ds: &RemoteDataset, root: &Path) -> Result<PathBuf> {
    let dir = root.join(ds.name);
    ensure_files(ds.name, &ds.files, &mirrors_for(ds), &dir)?;
    Ok(dir)
}

/// Downloads each of `files` that `dir` lacks from the first mirror that
/// serves it with the right checksum.
pub fn ensure_files(what: &str, files: &[RemoteFile], mirrors: &[String], dir: &Path) -> Result<()> {
    for f in files {
        let target = dir.join(&f.name);
        let raw = dir.join(f.name.trim_end_matches(".gz"));
        if target.is_file() || raw.is_file() {
            continue;
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        let mut tried = Vec::new();
        let mut done = false;
        for m in mirrors {
            let url = format!("{m}{}", f.name);
            eprintln!("downloading {url}");
            match fetch(&url) {
                Err(e) => tried.push(format!("{url}: {e}")),
                Ok(bytes) => match content_sha256(&bytes) {
                    Err(e) => tried.push(format!("{url}: not valid gzip ({e})")),
                    Ok(sum) if sum != f.sha256 => tried.push(format!(
                        "{url}: checksum mismatch (SHA-256 of content {sum}, expected {})",
                        f.sha256
                    )),
                    Ok(_) => {
                        atomic_write(&target, &bytes)?;
                        done = true;
                        break;
                    }
                },
            }
        }
        if !done {
            return Err(Error::Download(format!(
                "could not fetch {what} file {} into {}:\n  {}\nIf this machine is offline, copy the files ({}) into {} by hand, \
                 set AEKIT_MIRROR to a mirror, or pass --data DIR",
                f.name,
                dir.display(),
                tried.join("\n  "),
                files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
                dir.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("aekit-dl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn checksum_is_over_decompressed_content() {
        // SHA-256("abc"), from FIPS 180-2's example.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(content_sha256(b"abc").unwrap(), abc);
        assert_eq!(content_sha256(&gz(b"abc")).unwrap(), abc);
    }

    #[test]
    fn fetches_from_a_file_mirror_and_verifies() {
        let mirror = tmp("mirror");
        let cache = tmp("cache");
        std::fs::write(mirror.join("a.gz"), gz(b"hello")).unwrap();
        let files = [RemoteFile {
            name: "a.gz".into(),
            sha256: content_sha256(b"hello").unwrap(),
        }];
        let mirrors = [format!("file://{}/", mirror.display())];
        ensure_files("test", &files, &mirrors, &cache).unwrap();
        assert_eq!(std::fs::read(cache.join("a.gz")).unwrap(), gz(b"hello"));
    }

    #[test]
    fn a_bad_checksum_writes_nothing_and_says_why() {
        let mirror = tmp("badmirror");
        let cache = tmp("badcache");
        std::fs::write(mirror.join("a.gz"), gz(b"tampered")).unwrap();
        let files = [RemoteFile {
            name: "a.gz".into(),
            sha256: content_sha256(b"hello").unwrap(),
        }];
        let mirrors = [format!("file://{}/", mirror.display())];
        let e = ensure_files("test", &files, &mirrors, &cache)
            .unwrap_err()
            .to_string();
        assert!(e.contains("checksum mismatch"), "{e}");
        assert!(!cache.join("a.gz").exists());
    }

    #[test]
    fn offline_gives_a_clear_message() {
        let cache = tmp("offline");
        let files = [RemoteFile {
            name: "a.gz".into(),
            sha256: "0".repeat(64),
        }];
        // Port 9 on loopback: nothing listens, the connection is refused at once.
        let mirrors = ["http://127.0.0.1:9/".to_string()];
        let e = ensure_files("mnist", &files, &mirrors, &cache)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("could not fetch mnist file a.gz") && e.contains("offline"),
            "{e}"
        );
    }

    #[test]
    fn real_mnist_verifies_through_a_file_mirror() {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/mnist");
        if !shared.is_dir() {
            eprintln!("skipped: {} is absent", shared.display());
            return;
        }
        let cache = tmp("real");
        let ds = mnist();
        let mirrors = [format!("file://{}/", shared.canonicalize().unwrap().display())];
        ensure_files(ds.name, &ds.files, &mirrors, &cache.join("mnist")).unwrap();
        for f in &ds.files {
            assert!(cache.join("mnist").join(&f.name).is_file());
        }
    }
}
