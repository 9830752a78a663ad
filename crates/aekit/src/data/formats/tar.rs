//! A minimal, strict reader for tar archives (POSIX ustar, GNU and v7), enough
//! to take the `.bin` files out of the CIFAR archives without a `tar` crate.
//!
//! An archive is a sequence of 512-byte blocks. Each member starts with a
//! header block: name (bytes 0..100), size (124..136, octal ASCII), checksum
//! (148..156, octal: the sum of all 512 header bytes with the checksum field
//! counted as eight spaces), type flag (156), magic (257..263: `ustar\0` for
//! POSIX, `ustar ` for GNU, zeros for the pre-POSIX v7 layout) and, in POSIX
//! headers, a name prefix (345..500).
//! The member's data follows, padded with zeros to a whole block. Two zero
//! blocks end the archive.
//!
//! Every header's magic and checksum are verified. Regular files are returned
//! or skipped, directories and pax extended headers are skipped, and anything
//! else (links, devices, GNU long names, sparse files) is refused. Every error
//! names the archive.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Tar block size in bytes.
pub const BLOCK: usize = 512;

/// The largest member that will be read into memory (1 GiB): a header that
/// claims more is corrupt or hostile. The biggest CIFAR member is 154 MB.
pub const MAX_MEMBER: u64 = 1 << 30;

/// A regular file taken from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarFile {
    /// The member's path inside the archive (prefix and name joined by `/`).
    pub name: String,
    /// Its content.
    pub data: Vec<u8>,
}

/// Reads the tar stream `r` to its end-of-archive marker and returns the
/// regular files whose names `keep` accepts, in archive order; the data of
/// the other members is read and dropped. `archive` only names the source in
/// errors.
pub fn read_tar(
    r: &mut dyn Read,
    archive: &Path,
    keep: &mut dyn FnMut(&str) -> bool,
) -> Result<Vec<TarFile>> {
    let mut out = Vec::new();
    let mut header = [0u8; BLOCK];
    let mut index = 0usize;
    loop {
        read_block(r, &mut header, archive, || format!("header of member {index}"))?;
        if header.iter().all(|&b| b == 0) {
            read_block(r, &mut header, archive, || "end-of-archive marker".to_string())?;
            if header.iter().any(|&b| b != 0) {
                return Err(Error::format(
                    archive,
                    format!("tar: a zero block after member {index} is followed by data (expected a second zero block)"),
                ));
            }
            // Drain the padding to the end of the record so that a gzip
            // decoder underneath reaches its trailer and checks its CRC.
            std::io::copy(r, &mut std::io::sink()).map_err(|e| {
                Error::format(
                    archive,
                    format!("tar: cannot read past the end-of-archive marker ({e})"),
                )
            })?;
            return Ok(out);
        }
        let h = parse_header(&header, archive, index)?;
        let padded = h.size.div_ceil(BLOCK as u64) * BLOCK as u64;
        match h.kind {
            Kind::File if keep(&h.name) => {
                if h.size > MAX_MEMBER {
                    return Err(Error::format(
                        archive,
                        format!(
                            "tar: member {} claims {} bytes, more than the {MAX_MEMBER} aekit reads",
                            h.name, h.size
                        ),
                    ));
                }
                let mut data = vec![0u8; h.size as usize];
                r.read_exact(&mut data)
                    .map_err(|e| truncated(archive, &h.name, e))?;
                skip(r, padded - h.size, archive, &h.name)?;
                out.push(TarFile { name: h.name, data });
            }
            Kind::File | Kind::Skipped => skip(r, padded, archive, &h.name)?,
        }
        index += 1;
    }
}

/// What to do with a member.
enum Kind {
    /// A regular file.
    File,
    /// A directory or a pax extended header: its data (if any) is skipped.
    Skipped,
}

struct Header {
    name: String,
    size: u64,
    kind: Kind,
}

fn parse_header(b: &[u8; BLOCK], archive: &Path, index: usize) -> Result<Header> {
    let err = |detail: String| Error::format(archive, format!("tar: member {index}: {detail}"));
    let posix = &b[257..263] == b"ustar\0";
    let gnu = &b[257..263] == b"ustar ";
    let v7 = b[257..263].iter().all(|&c| c == 0);
    if !posix && !gnu && !v7 {
        return Err(err(format!(
            "not a tar header (magic {:02x?}, expected \"ustar\\0\", \"ustar \" or zeros)",
            &b[257..263]
        )));
    }
    let stored = parse_octal(&b[148..156]).ok_or_else(|| err("header checksum field is not octal".into()))?;
    // The checksum field itself counts as eight spaces. Historic writers
    // summed signed bytes, so either sum is accepted.
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &byte) in b.iter().enumerate() {
        let byte = if (148..156).contains(&i) { b' ' } else { byte };
        unsigned += u64::from(byte);
        signed += i64::from(byte as i8);
    }
    if stored != unsigned && i64::try_from(stored) != Ok(signed) {
        return Err(err(format!(
            "header checksum {stored:o} does not match the header's bytes (sum {unsigned:o}): corrupt archive"
        )));
    }
    let mut name = field_str(&b[0..100]);
    if posix {
        let prefix = field_str(&b[345..500]);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
    }
    if name.is_empty() {
        return Err(err("empty member name".into()));
    }
    if b[124] & 0x80 != 0 {
        return Err(err(format!(
            "{name}: base-256 sizes (members over 8 GiB) are not supported"
        )));
    }
    let size = parse_octal(&b[124..136]).ok_or_else(|| err(format!("{name}: size field is not octal")))?;
    let kind = match b[156] {
        b'0' | 0 | b'7' => Kind::File,
        b'5' | b'x' | b'g' => Kind::Skipped,
        t => {
            let what = match t {
                b'1' => "a hard link",
                b'2' => "a symbolic link",
                b'3' | b'4' => "a device",
                b'6' => "a FIFO",
                b'L' | b'K' => "a GNU long-name record",
                b'S' => "a GNU sparse file",
                _ => "of an unknown type",
            };
            return Err(err(format!(
                "{name} is {what} (type {:?}); only regular files and directories are accepted",
                t as char
            )));
        }
    };
    Ok(Header { name, size, kind })
}

/// An octal number, optionally led by spaces and ended by NUL or space; an
/// all-blank field is zero.
fn parse_octal(f: &[u8]) -> Option<u64> {
    let s = f.iter().position(|&c| c != b' ').unwrap_or(f.len());
    let e = f[s..]
        .iter()
        .position(|&c| c == 0 || c == b' ')
        .map_or(f.len(), |p| s + p);
    if f[e..].iter().any(|&c| c != 0 && c != b' ') {
        return None;
    }
    f[s..e].iter().try_fold(0u64, |acc, &c| {
        if (b'0'..=b'7').contains(&c) {
            acc.checked_mul(8)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

/// A NUL-terminated text field.
fn field_str(f: &[u8]) -> String {
    let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
    String::from_utf8_lossy(&f[..end]).into_owned()
}

fn read_block(
    r: &mut dyn Read,
    buf: &mut [u8; BLOCK],
    archive: &Path,
    what: impl Fn() -> String,
) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        let detail = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            format!("tar: archive ends inside the {} (truncated)", what())
        } else {
            format!("tar: cannot read the {} ({e})", what())
        };
        Error::format(archive, detail)
    })
}

fn truncated(archive: &Path, name: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::format(
            archive,
            format!("tar: archive ends inside member {name} (truncated)"),
        )
    } else {
        Error::format(archive, format!("tar: cannot read member {name} ({e})"))
    }
}

fn skip(r: &mut dyn Read, n: u64, archive: &Path, name: &str) -> Result<()> {
    let got = std::io::copy(&mut r.take(n), &mut std::io::sink()).map_err(|e| truncated(archive, name, e))?;
    if got != n {
        return Err(truncated(archive, name, std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(())
}

/// Test helpers: a ustar writer for the archives that tests build.
#[cfg(test)]
pub(crate) mod testutil {
    use super::BLOCK;

    /// One POSIX ustar header for a member of `size` bytes and type `kind`.
    pub fn header(name: &str, size: usize, kind: u8) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    /// A tar archive of regular files, ended by two zero blocks.
    pub fn write_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in files {
            out.extend_from_slice(&header(name, data.len(), b'0'));
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{header, write_tar};
    use super::*;

    fn read_all(bytes: &[u8]) -> Result<Vec<TarFile>> {
        read_tar(&mut &bytes[..], Path::new("a.tar"), &mut |_| true)
    }

    fn err(bytes: &[u8]) -> String {
        read_all(bytes).unwrap_err().to_string()
    }

    #[test]
    fn golden_header_fields() {
        // A 600-byte member needs two data blocks: 512 header + 1024 data +
        // 1024 end marker. Its size field is 600 in octal, "00000001130".
        let data: Vec<u8> = (0..600).map(|i| (i % 251) as u8).collect();
        let tar = write_tar(&[("d/a.bin", &data), ("b", b"xyz")]);
        assert_eq!(tar.len(), 512 + 1024 + 512 + 512 + 1024);
        assert_eq!(&tar[124..136], b"00000001130\0");
        let files = read_all(&tar).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].name.as_str(), &files[0].data), ("d/a.bin", &data));
        assert_eq!(
            (files[1].name.as_str(), files[1].data.as_slice()),
            ("b", &b"xyz"[..])
        );
    }

    #[test]
    fn keeps_only_the_chosen_files_and_skips_directories() {
        let mut tar = header("d/", 0, b'5').to_vec();
        tar.extend(write_tar(&[("d/a", b"1"), ("d/b", b"22")]));
        let files = read_tar(&mut &tar[..], Path::new("x.tar"), &mut |n| n == "d/b").unwrap();
        assert_eq!(
            files,
            vec![TarFile {
                name: "d/b".into(),
                data: b"22".to_vec()
            }]
        );
    }

    #[test]
    fn octal_fields() {
        assert_eq!(parse_octal(b"00000001130\0"), Some(600));
        assert_eq!(parse_octal(b"  1130 \0"), Some(600));
        assert_eq!(parse_octal(b"\0\0\0"), Some(0));
        assert_eq!(parse_octal(b"0009\0"), None);
        assert_eq!(parse_octal(b"12 3"), None);
    }

    #[test]
    fn corrupt_archives_are_refused_naming_the_archive() {
        let good = write_tar(&[("a", b"hello")]);
        let mut bad_sum = good.clone();
        bad_sum[0] = b'b';
        let e = err(&bad_sum);
        assert!(e.starts_with("a.tar: ") && e.contains("checksum"), "{e}");

        let mut bad_magic = good.clone();
        bad_magic[257] = b'x';
        assert!(err(&bad_magic).contains("not a tar header"));

        assert!(err(&good[..700]).contains("ends inside member a (truncated)"));
        assert!(err(&good[..512 + 512]).contains("ends inside the header of member 1"));
        assert!(err(&good[..good.len() - 512]).contains("end-of-archive marker (truncated)"));
        assert!(err(&[]).contains("header of member 0"));

        let mut link = header("l", 0, b'2').to_vec();
        link.resize(3 * BLOCK, 0);
        assert!(err(&link).contains("l is a symbolic link"));
    }
}
