//! Fetching datasets into a local cache: MNIST and Fashion-MNIST with a
//! SHA-256 check, CIFAR-10 and CIFAR-100 with an MD5 check, the original
//! MNIST variants of Larochelle et al. (2007) with a SHA-1 check.
//!
//! MNIST checksums are taken over the *decompressed* IDX bytes, so a mirror
//! that recompressed the files (as Linux distributions do) still verifies,
//! while a changed pixel does not. CIFAR comes as one gzipped tar archive per
//! dataset, and the only checksum its authors publish is the archive's MD5
//! (on <https://www.cs.toronto.edu/~kriz/cifar.html>), so that is what is
//! checked, before the `.bin` files are taken out of the archive (with
//! [`crate::data::tar`]) into the cache folder. The MNIST variants come as
//! ZIP archives from the LISA lab's site, checked against the SHA-1 sums
//! that the skdata library publishes for them, and their two `.amat` files
//! are taken out (with [`crate::data::formats::zip`]). A file is written to the cache
//! only after it verifies, under a temporary name then renamed.
//!
//! `AEKIT_MIRROR` (a base URL, `file://` allowed) replaces the built-in mirror
//! lists; the dataset name is appended as a folder
//! (`$AEKIT_MIRROR/mnist/train-images-idx3-ubyte.gz`,
//! `$AEKIT_MIRROR/cifar10/cifar-10-binary.tar.gz`).

use crate::data::cifar::CifarKind;
use crate::data::formats::zip;
use crate::data::idx::IDX_NAMES;
use crate::data::tar;
use crate::error::{Error, Result};
use crate::io::atomic_write;
use md5::Md5;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
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

/// A dataset that comes as one gzipped tar archive, of which some regular
/// files are kept.
#[derive(Debug, Clone)]
pub struct RemoteArchive {
    /// Cache sub-folder and name in messages (`cifar10`, `cifar100`).
    pub name: &'static str,
    /// The archive's file name on the mirror (`cifar-10-binary.tar.gz`).
    pub archive: String,
    /// Hex MD5 of the archive as downloaded (compressed).
    pub md5: String,
    /// Base URLs tried in turn, each ending in `/`.
    pub mirrors: Vec<String>,
    /// The folder inside the archive that holds the files.
    pub folder: String,
    /// The files to extract from `folder` into the cache folder.
    pub files: Vec<String>,
}

fn cifar_archive(name: &'static str, kind: CifarKind, archive: &str, md5: &str) -> RemoteArchive {
    RemoteArchive {
        name,
        archive: archive.into(),
        md5: md5.into(),
        mirrors: vec!["https://www.cs.toronto.edu/~kriz/".into()],
        folder: kind.folder().into(),
        files: kind.all_files().into_iter().map(String::from).collect(),
    }
}

/// CIFAR-10, binary version (Krizhevsky, 2009). The MD5 is the one published
/// beside the download link (and used by torchvision and
/// tensorflow-datasets); the archive is 170,052,171 bytes.
pub fn cifar10() -> RemoteArchive {
    cifar_archive(
        "cifar10",
        CifarKind::Cifar10,
        "cifar-10-binary.tar.gz",
        "c32a1d4ab5d03f1284b67883e8d87530",
    )
}

/// CIFAR-100, binary version (Krizhevsky, 2009); the archive is 168,513,733
/// bytes, its MD5 as published.
pub fn cifar100() -> RemoteArchive {
    cifar_archive(
        "cifar100",
        CifarKind::Cifar100,
        "cifar-100-binary.tar.gz",
        "03b5dce01913d631647c71ecec9e9cb8",
    )
}

/// One of the LISA archives of the MNIST variants (Larochelle et al. 2007):
/// a ZIP of two `.amat` files, training (12,000 images: the first 10,000
/// for training, the last 2,000 for validation) and test (50,000).
#[derive(Debug, Clone)]
pub struct RemoteZip {
    /// Cache sub-folder and name in messages (`mnist-rot`).
    pub name: &'static str,
    /// The archive's file name on the mirror (`mnist_rotation_new.zip`).
    pub archive: String,
    /// Hex SHA-1 of the archive as downloaded.
    pub sha1: String,
    /// Base URLs tried in turn, each ending in `/`.
    pub mirrors: Vec<String>,
    /// The training and test files, by their names in the archive (any
    /// folder), written under these names into the cache folder.
    pub files: [String; 2],
}

/// The LISA archive of a variant. The SHA-1 sums are the ones the skdata
/// library (Bergstra et al.) checks its downloads of these files against;
/// the rot archive's MD5 that torchvision-style loaders check,
/// 0f9a947ff3d30e95cd685462cbf3b847, belongs to the same file. `rot` and
/// `bg-img-rot` are the corrected (`_new`) sets behind the revised tables.
pub fn lisa_variant(v: crate::data::variants::Variant) -> RemoteZip {
    use crate::data::variants::Variant;
    let (name, archive, sha1, stem) = match v {
        Variant::Basic => (
            "mnist-basic",
            "mnist.zip",
            "14ac2e9135705499b80bf7efac981377940150c8",
            "mnist_",
        ),
        Variant::Rot => (
            "mnist-rot",
            "mnist_rotation_new.zip",
            "e67f72fa42029f62fd8eb92b0638c1b9761c9a63",
            "mnist_all_rotation_normalized_float_",
        ),
        Variant::BgRand => (
            "mnist-bg-rand",
            "mnist_background_random.zip",
            "75e11ec966459c1162979e78ab4e21f9ab7fb5cd",
            "mnist_background_random_",
        ),
        Variant::BgImg => (
            "mnist-bg-img",
            "mnist_background_images.zip",
            "fb6fce9ed6372e0068ff7cb3e7b9e78dbda7ceae",
            "mnist_background_images_",
        ),
        Variant::BgImgRot => (
            "mnist-bg-img-rot",
            "mnist_rotation_back_image_new.zip",
            "902bb7e96136dd76e9f2924d7fdb9eb832f7bc33",
            "mnist_all_background_images_rotation_normalized_",
        ),
    };
    let train = if matches!(v, Variant::Rot | Variant::BgImgRot) {
        "train_valid"
    } else {
        "train"
    };
    RemoteZip {
        name,
        archive: archive.into(),
        sha1: sha1.into(),
        mirrors: vec!["http://www.iro.umontreal.ca/~lisa/icml2007data/".into()],
        files: [format!("{stem}{train}.amat"), format!("{stem}test.amat")],
    }
}

/// Hex SHA-1 of the bytes as they are.
pub fn sha1_hex(bytes: &[u8]) -> String {
    sha1::Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cache folder of a LISA archive under `root`, downloaded and
/// unpacked when either `.amat` file is missing.
pub fn ensure_zip(ds: &RemoteZip, root: &Path) -> Result<PathBuf> {
    let dir = root.join(ds.name);
    ensure_zip_files(ds, &mirrors_for(ds.name, &ds.mirrors), &dir)?;
    Ok(dir)
}

/// Unless `dir` holds both files of `ds`, fetches `ds.archive` from the
/// first of `mirrors` that serves it with SHA-1 `ds.sha1`, checks that it
/// holds both files whole (sizes and CRC-32), then writes each into `dir`
/// atomically, streamed from the archive.
pub fn ensure_zip_files(ds: &RemoteZip, mirrors: &[String], dir: &Path) -> Result<()> {
    if ds.files.iter().all(|f| dir.join(f).is_file()) {
        return Ok(());
    }
    let mut tried = Vec::new();
    if let Some((url, bytes)) = fetch_verified(&ds.archive, mirrors, "SHA-1", &ds.sha1, sha1_hex, &mut tried)
    {
        // The checksum matched: a damaged or incomplete archive is an error
        // of the checksum table, not of the mirror.
        let archive = Path::new(&url);
        let members = zip::zip_members(&bytes, archive)?;
        let mut wanted = Vec::new();
        for f in &ds.files {
            let m = members
                .iter()
                .find(|m| m.name.rsplit('/').next() == Some(f.as_str()))
                .ok_or_else(|| {
                    Error::format(
                        archive,
                        format!("the archive has no member {f}; nothing was written"),
                    )
                })?;
            zip::extract_member(&bytes, m, &mut std::io::sink(), archive)?;
            wanted.push((f, m));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        for (f, m) in wanted {
            crate::io::atomic_write_with(&dir.join(f), |file| {
                let mut w = std::io::BufWriter::new(file);
                zip::extract_member(&bytes, m, &mut w, archive)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                w.flush()
            })?;
        }
        return Ok(());
    }
    Err(Error::Download(format!(
        "could not fetch {} archive {} into {}:\n  {}\nIf this machine is offline, unzip {} by hand and copy {} \
         into {}, set AEKIT_MIRROR to a mirror, or pass --data DIR (the folder of the .amat files)",
        ds.name,
        ds.archive,
        dir.display(),
        tried.join("\n  "),
        ds.archive,
        ds.files.join(" and "),
        dir.display()
    )))
}

/// Largest download accepted (the biggest files here are the 219 MB
/// random-background archive of the MNIST variants and the 170 MB CIFAR-10
/// archive).
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

/// Fetches `archive` from the first of `mirrors` that serves it with the
/// checksum `want` (`sum` computes it, `algo` names it): that URL and the
/// bytes, or `None` with each mirror's failure added to `tried`.
fn fetch_verified(
    archive: &str,
    mirrors: &[String],
    algo: &str,
    want: &str,
    sum: fn(&[u8]) -> String,
    tried: &mut Vec<String>,
) -> Option<(String, Vec<u8>)> {
    for m in mirrors {
        let url = format!("{m}{archive}");
        eprintln!("downloading {url}");
        match fetch(&url) {
            Err(e) => tried.push(format!("{url}: {e}")),
            Ok(bytes) => {
                let got = sum(&bytes);
                if got == want {
                    return Some((url, bytes));
                }
                tried.push(format!(
                    "{url}: checksum mismatch ({algo} of the {} bytes received {got}, expected {want})",
                    bytes.len()
                ));
            }
        }
    }
    None
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

/// Hex MD5 of the bytes as they are (no decompression: the published CIFAR
/// sums are over the compressed archives).
pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `$AEKIT_MIRROR/<name>/` when that variable is set, else `defaults`.
fn mirrors_for(name: &str, defaults: &[String]) -> Vec<String> {
    match std::env::var("AEKIT_MIRROR") {
        Ok(m) if !m.is_empty() => vec![format!("{}/{}/", m.trim_end_matches('/'), name)],
        _ => defaults.to_vec(),
    }
}

/// Makes sure every file of `ds` is in `root/<name>/`, downloading and
/// verifying the missing ones. Returns that folder.
pub fn ensure_dataset(ds: &RemoteDataset, root: &Path) -> Result<PathBuf> {
    let dir = root.join(ds.name);
    ensure_files(ds.name, &ds.files, &mirrors_for(ds.name, &ds.mirrors), &dir)?;
    Ok(dir)
}

/// Makes sure the files of `ds` are in `root/<name>/`, downloading and
/// unpacking its archive when any is missing. Returns that folder.
pub fn ensure_archive(ds: &RemoteArchive, root: &Path) -> Result<PathBuf> {
    let dir = root.join(ds.name);
    ensure_archive_files(ds, &mirrors_for(ds.name, &ds.mirrors), &dir)?;
    Ok(dir)
}

/// The CIFAR-10 cache folder under `root`, downloaded when incomplete.
pub fn ensure_cifar10(root: &Path) -> Result<PathBuf> {
    ensure_archive(&cifar10(), root)
}

/// The CIFAR-100 cache folder under `root`, downloaded when incomplete.
pub fn ensure_cifar100(root: &Path) -> Result<PathBuf> {
    ensure_archive(&cifar100(), root)
}

/// Unless `dir` (or `dir/<folder>`) already holds every file of `ds`,
/// fetches `ds.archive` from the first of `mirrors` that serves it with MD5
/// `ds.md5`, and writes the wanted files from the archive's `ds.folder`
/// into `dir`, each atomically. Nothing is written unless the archive
/// verifies and holds every wanted file.
pub fn ensure_archive_files(ds: &RemoteArchive, mirrors: &[String], dir: &Path) -> Result<()> {
    let have = |d: &Path| ds.files.iter().all(|f| d.join(f).is_file());
    if have(dir) || have(&dir.join(&ds.folder)) {
        return Ok(());
    }
    let mut tried = Vec::new();
    if let Some((url, bytes)) = fetch_verified(&ds.archive, mirrors, "MD5", &ds.md5, md5_hex, &mut tried) {
        // The checksum matched, so a malformed archive is not a mirror's
        // fault but a wrong checksum table: stop with that error.
        let files = extract(ds, &bytes, &url)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        for (name, data) in files {
            atomic_write(&dir.join(name), &data)?;
        }
        return Ok(());
    }
    Err(Error::Download(format!(
        "could not fetch {} archive {} into {}:\n  {}\nIf this machine is offline, unpack {} by hand and copy its {} \
         into {}, set AEKIT_MIRROR to a mirror, or pass --data DIR",
        ds.name,
        ds.archive,
        dir.display(),
        tried.join("\n  "),
        ds.archive,
        ds.files.join(", "),
        dir.display()
    )))
}

/// The wanted files of a verified archive, as (file name, content), in the
/// order of `ds.files`.
fn extract<'a>(ds: &'a RemoteArchive, bytes: &[u8], url: &str) -> Result<Vec<(&'a str, Vec<u8>)>> {
    let archive = Path::new(url);
    let path_of = |f: &str| format!("{}/{f}", ds.folder);
    let mut dec = flate2::read::GzDecoder::new(bytes);
    let mut found = tar::read_tar(&mut dec, archive, &mut |name| {
        let name = name.strip_prefix("./").unwrap_or(name);
        ds.files.iter().any(|f| name == path_of(f))
    })?;
    let mut out = Vec::with_capacity(ds.files.len());
    for f in &ds.files {
        let want = path_of(f);
        match found
            .iter()
            .position(|t| t.name.strip_prefix("./").unwrap_or(&t.name) == want)
        {
            Some(i) => out.push((f.as_str(), found.swap_remove(i).data)),
            None => {
                return Err(Error::format(
                    archive,
                    format!("the archive has no member {want}; nothing was written"),
                ))
            }
        }
    }
    Ok(out)
}

/// The file that records which cached files passed their checksum (name,
/// size and modification time), so that each is hashed once, not every run.
const VERIFIED: &str = ".verified";

/// Checks a file already in the cache against its published checksum (once:
/// a file that passed is listed in `dir/.verified` with its size and
/// modification time; a cache that cannot be written is hashed every time).
fn verify_cached(path: &Path, sha256: &str, dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let line = format!("{name} {} {mtime} {sha256}", meta.len());
    let stamp = dir.join(VERIFIED);
    let known = std::fs::read_to_string(&stamp).unwrap_or_default();
    if known.lines().any(|l| l == line) {
        return Ok(());
    }
    let bytes = crate::tensor::memory::read_bounded(path, "dataset file")?;
    let sum = content_sha256(&bytes).map_err(|e| Error::format(path, format!("not valid gzip ({e})")))?;
    if sum != sha256 {
        return Err(Error::Download(format!(
            "{}: the cached file does not match its published checksum (SHA-256 of content {sum}, expected {sha256}); \
             remove it to download it again, or pass --data {} to use the folder as it is",
            path.display(),
            dir.display()
        )));
    }
    // A cache folder marked read-only is left as it is.
    let read_only = std::fs::metadata(dir).is_ok_and(|m| m.permissions().readonly());
    if read_only {
        return Ok(());
    }
    let mut text: String = known
        .lines()
        .filter(|l| !l.starts_with(&format!("{name} ")))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&line);
    text.push('\n');
    let _ = crate::io::atomic_write(&stamp, text.as_bytes());
    Ok(())
}

/// Downloads each of `files` that `dir` lacks from the first mirror that
/// serves it with the right checksum; checks those it has.
pub fn ensure_files(what: &str, files: &[RemoteFile], mirrors: &[String], dir: &Path) -> Result<()> {
    for f in files {
        let target = dir.join(&f.name);
        let raw = dir.join(f.name.trim_end_matches(".gz"));
        if let Some(have) = [&target, &raw].into_iter().find(|p| p.is_file()) {
            verify_cached(have, &f.sha256, dir)?;
            continue;
        }
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
                        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
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
    use crate::data::cifar;

    /// A fresh scratch directory, removed when the guard drops (also on panic).
    fn tmp(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("aekit-dl-{name}-"))
            .tempdir()
            .unwrap()
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
        let mirror_dir = tmp("mirror");
        let mirror = mirror_dir.path();
        let cache_dir = tmp("cache");
        let cache = cache_dir.path();
        std::fs::write(mirror.join("a.gz"), gz(b"hello")).unwrap();
        let files = [RemoteFile {
            name: "a.gz".into(),
            sha256: content_sha256(b"hello").unwrap(),
        }];
        let mirrors = [format!("file://{}/", mirror.display())];
        ensure_files("test", &files, &mirrors, cache).unwrap();
        assert_eq!(std::fs::read(cache.join("a.gz")).unwrap(), gz(b"hello"));
    }

    #[test]
    fn a_bad_checksum_writes_nothing_and_says_why() {
        let mirror_dir = tmp("badmirror");
        let mirror = mirror_dir.path();
        let cache_dir = tmp("badcache");
        let cache = cache_dir.path();
        std::fs::write(mirror.join("a.gz"), gz(b"tampered")).unwrap();
        let files = [RemoteFile {
            name: "a.gz".into(),
            sha256: content_sha256(b"hello").unwrap(),
        }];
        let mirrors = [format!("file://{}/", mirror.display())];
        let e = ensure_files("test", &files, &mirrors, cache)
            .unwrap_err()
            .to_string();
        assert!(e.contains("checksum mismatch"), "{e}");
        assert!(!cache.join("a.gz").exists());
    }

    #[test]
    fn offline_gives_a_clear_message() {
        let cache_dir = tmp("offline");
        let cache = cache_dir.path();
        let files = [RemoteFile {
            name: "a.gz".into(),
            sha256: "0".repeat(64),
        }];
        // Port 9 on loopback: nothing listens, the connection is refused at once.
        let mirrors = ["http://127.0.0.1:9/".to_string()];
        let e = ensure_files("mnist", &files, &mirrors, cache)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("could not fetch mnist file a.gz") && e.contains("offline"),
            "{e}"
        );
    }

    #[test]
    fn a_cached_file_is_checked_once_and_a_bad_one_refused() {
        let cache = tmp("cached");
        let good = RemoteFile {
            name: "a.gz".into(),
            sha256: content_sha256(b"hello").unwrap(),
        };
        std::fs::write(cache.path().join("a.gz"), gz(b"hello")).unwrap();
        ensure_files("test", std::slice::from_ref(&good), &[], cache.path()).unwrap();
        let stamp = std::fs::read_to_string(cache.path().join(VERIFIED)).unwrap();
        assert!(
            stamp.starts_with("a.gz ") && stamp.contains(&good.sha256),
            "{stamp}"
        );
        // A file changed in the cache is checked again, and refused.
        std::fs::write(cache.path().join("a.gz"), gz(b"hellO!")).unwrap();
        let e = ensure_files("test", &[good], &[], cache.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("does not match its published checksum") && e.contains("a.gz"),
            "{e}"
        );
    }

    #[test]
    fn md5_golden_values() {
        // RFC 1321, appendix A.5.
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn the_cifar_tables_name_the_official_files() {
        let c10 = cifar10();
        assert_eq!(c10.files.len(), 6);
        assert_eq!(c10.folder, "cifar-10-batches-bin");
        assert_eq!(
            format!("{}{}", c10.mirrors[0], c10.archive),
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
        );
        let c100 = cifar100();
        assert_eq!(c100.files, ["train.bin", "test.bin"]);
        assert_eq!(c100.folder, "cifar-100-binary");
        for sum in [&c10.md5, &c100.md5] {
            assert!(sum.len() == 32 && sum.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    /// A fake `cifar-100-binary.tar.gz`: the two wanted files, one record
    /// each, plus a directory entry and a file that is not wanted.
    fn fake_cifar100() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let px = vec![7u8; cifar::PIXELS];
        let train = cifar::encode_cifar(CifarKind::Cifar100, &[(2, 42)], &[&px]);
        let test = cifar::encode_cifar(CifarKind::Cifar100, &[(3, 61)], &[&px]);
        let mut t = tar::testutil::header("cifar-100-binary/", 0, b'5').to_vec();
        t.extend(tar::testutil::write_tar(&[
            ("cifar-100-binary/fine_label_names.txt", b"apple\n"),
            ("cifar-100-binary/train.bin", &train),
            ("cifar-100-binary/test.bin", &test),
        ]));
        (gz(&t), train, test)
    }

    fn fake_spec(md5: String) -> RemoteArchive {
        RemoteArchive {
            md5,
            mirrors: Vec::new(),
            ..cifar100()
        }
    }

    #[test]
    fn unpacks_a_verified_archive_from_a_file_mirror() {
        let mirror_dir = tmp("arcmirror");
        let mirror = mirror_dir.path();
        let cache_dir = tmp("arccache");
        let cache = cache_dir.path().join("cifar100");
        let (archive, train, test) = fake_cifar100();
        std::fs::write(mirror.join("cifar-100-binary.tar.gz"), &archive).unwrap();
        let spec = fake_spec(md5_hex(&archive));
        let mirrors = [format!("file://{}/", mirror.display())];
        ensure_archive_files(&spec, &mirrors, &cache).unwrap();
        assert_eq!(std::fs::read(cache.join("train.bin")).unwrap(), train);
        assert_eq!(std::fs::read(cache.join("test.bin")).unwrap(), test);
        assert!(!cache.join("fine_label_names.txt").exists());
        let (tr, te) = cifar::read_cifar100_dir(&cache).unwrap();
        assert_eq!((tr.labels, te.labels), (Some(vec![42]), Some(vec![61])));
        // Extracted already: no fetch, even from a mirror that is gone.
        std::fs::remove_file(mirror.join("cifar-100-binary.tar.gz")).unwrap();
        ensure_archive_files(&spec, &mirrors, &cache).unwrap();
    }

    #[test]
    fn a_wrong_archive_checksum_writes_nothing() {
        let mirror_dir = tmp("arcbad");
        let mirror = mirror_dir.path();
        let cache_dir = tmp("arcbadcache");
        let cache = cache_dir.path().join("cifar100");
        let (archive, _, _) = fake_cifar100();
        std::fs::write(mirror.join("cifar-100-binary.tar.gz"), &archive).unwrap();
        let spec = fake_spec(cifar100().md5);
        let mirrors = [format!("file://{}/", mirror.display())];
        let e = ensure_archive_files(&spec, &mirrors, &cache)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("could not fetch cifar100 archive cifar-100-binary.tar.gz")
                && e.contains("checksum mismatch")
                && e.contains(&md5_hex(&archive))
                && e.contains("expected 03b5dce01913d631647c71ecec9e9cb8"),
            "{e}"
        );
        assert!(!cache.exists());
    }

    #[test]
    fn an_archive_without_the_wanted_files_writes_nothing() {
        let mirror_dir = tmp("arcmissing");
        let mirror = mirror_dir.path();
        let cache_dir = tmp("arcmissingcache");
        let cache = cache_dir.path().join("cifar100");
        let archive = gz(&tar::testutil::write_tar(&[("cifar-100-binary/train.bin", b"x")]));
        std::fs::write(mirror.join("cifar-100-binary.tar.gz"), &archive).unwrap();
        let spec = fake_spec(md5_hex(&archive));
        let mirrors = [format!("file://{}/", mirror.display())];
        let e = ensure_archive_files(&spec, &mirrors, &cache)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cifar-100-binary.tar.gz") && e.contains("no member cifar-100-binary/test.bin"),
            "{e}"
        );
        assert!(!cache.exists());
    }

    #[test]
    fn real_mnist_verifies_through_a_file_mirror() {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/mnist");
        if !shared.is_dir() {
            eprintln!("skipped: {} is absent", shared.display());
            return;
        }
        let cache_dir = tmp("real");
        let cache = cache_dir.path();
        let ds = mnist();
        let mirrors = [format!("file://{}/", shared.canonicalize().unwrap().display())];
        ensure_files(ds.name, &ds.files, &mirrors, &cache.join("mnist")).unwrap();
        for f in &ds.files {
            assert!(cache.join("mnist").join(&f.name).is_file());
        }
    }

    /// An `.amat` text of 2×2 images stored column by column.
    fn amat(rows: &[([f32; 4], u8)]) -> Vec<u8> {
        rows.iter()
            .map(|(px, l)| {
                let t: Vec<String> = px.iter().map(|v| format!("{v:.6e}")).collect();
                format!("{}   {l}.000000e+00\n", t.join("   "))
            })
            .collect::<String>()
            .into_bytes()
    }

    fn lisa_test_zip(files: &[(&str, &[u8])]) -> (Vec<u8>, RemoteZip) {
        let z: Vec<(&str, &[u8], bool)> = files.iter().map(|(n, c)| (*n, *c, true)).collect();
        let bytes = zip::tests::make_zip(&z);
        let ds = RemoteZip {
            name: "mnist-rot",
            archive: "mnist_rotation_new.zip".into(),
            sha1: sha1_hex(&bytes),
            mirrors: vec![],
            files: lisa_variant(crate::data::variants::Variant::Rot).files,
        };
        (bytes, ds)
    }

    #[test]
    fn sha1_golden_values() {
        // FIPS 180-1, appendix A.
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn the_lisa_tables_name_the_archives_and_their_files() {
        use crate::data::variants::Variant;
        let rot = lisa_variant(Variant::Rot);
        assert_eq!(rot.archive, "mnist_rotation_new.zip");
        assert_eq!(
            rot.files,
            [
                "mnist_all_rotation_normalized_float_train_valid.amat",
                "mnist_all_rotation_normalized_float_test.amat"
            ]
        );
        assert_eq!(
            lisa_variant(Variant::Basic).files,
            ["mnist_train.amat", "mnist_test.amat"]
        );
        assert_eq!(
            lisa_variant(Variant::BgRand).files[0],
            "mnist_background_random_train.amat"
        );
        for v in [
            Variant::Basic,
            Variant::Rot,
            Variant::BgRand,
            Variant::BgImg,
            Variant::BgImgRot,
        ] {
            let z = lisa_variant(v);
            assert_eq!(z.name, format!("mnist-{v}"));
            assert!(z.sha1.len() == 40 && z.sha1.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn unpacks_a_verified_lisa_zip_and_reads_it_untransposed() {
        let mirror_dir = tmp("zipmirror");
        let mirror = mirror_dir.path();
        // A vertical bar in column 0, stored column-major: the first two
        // stored values are column 0.
        let train = amat(&[([1.0, 1.0, 0.0, 0.0], 3), ([0.0, 0.0, 1.0, 0.0], 5)]);
        let test = amat(&[([0.0, 0.0, 0.0, 1.0], 9)]);
        let (bytes, ds) = lisa_test_zip(&[
            (
                "mnist_rotation_new/mnist_all_rotation_normalized_float_train_valid.amat",
                &train,
            ),
            (
                "mnist_rotation_new/mnist_all_rotation_normalized_float_test.amat",
                &test,
            ),
        ]);
        std::fs::write(mirror.join(&ds.archive), &bytes).unwrap();
        let cache = tmp("zipcache");
        let dir = cache.path().join("mnist-rot");
        let url = format!("file://{}/", mirror.display());
        ensure_zip_files(&ds, std::slice::from_ref(&url), &dir).unwrap();
        assert_eq!(std::fs::read(dir.join(&ds.files[0])).unwrap(), train);
        let (tr, te) = crate::data::formats::amat::read_amat_dir(&dir).unwrap();
        assert_eq!(tr.x, vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!((tr.labels.unwrap(), te.labels.unwrap()), (vec![3, 5], vec![9]));
        // Cached: no mirror is needed the second time.
        ensure_zip_files(&ds, &[], &dir).unwrap();
    }

    #[test]
    fn a_lisa_zip_with_a_wrong_checksum_or_a_missing_file_writes_nothing() {
        let mirror_dir = tmp("zipbad");
        let mirror = mirror_dir.path();
        let train = amat(&[([1.0, 0.0, 0.0, 0.0], 1)]);
        let (bytes, mut ds) =
            lisa_test_zip(&[("mnist_all_rotation_normalized_float_train_valid.amat", &train)]);
        std::fs::write(mirror.join(&ds.archive), &bytes).unwrap();
        let url = format!("file://{}/", mirror.display());
        let cache = tmp("zipbadcache");
        let dir = cache.path().join("mnist-rot");
        // The checksum matches, but the test file is not in the archive.
        let e = ensure_zip_files(&ds, std::slice::from_ref(&url), &dir)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no member mnist_all_rotation_normalized_float_test.amat"),
            "{e}"
        );
        assert!(!dir.exists());
        // A wrong checksum: the mirror is skipped, and the message says so.
        ds.sha1 = "0".repeat(40);
        let e = ensure_zip_files(&ds, &[url], &dir).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch") && e.contains("SHA-1"), "{e}");
        assert!(e.contains("unzip mnist_rotation_new.zip by hand"), "{e}");
        assert!(!dir.exists());
    }
}
