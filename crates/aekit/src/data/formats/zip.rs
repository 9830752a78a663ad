//! A minimal, strict reader for ZIP archives, enough to take the `.amat`
//! files out of the LISA archives of the MNIST variants.
//!
//! The `zip` crate was tried first: its `deflate-flate2` feature (2.6) does
//! not switch flate2 on, and its `deflate` feature also builds a zopfli
//! compressor that reading never needs, so reading goes through flate2
//! directly, as the tar reader does.
//!
//! A ZIP file ends with the *end of central directory* record (signature
//! `PK\x05\x06`, at most 64 KiB of comment after it), which gives the number
//! of entries and where the *central directory* starts. Each central entry
//! (`PK\x01\x02`, 46 bytes then name, extra field and comment) gives the
//! member's method, CRC-32, sizes and the offset of its *local header*
//! (`PK\x03\x04`, 30 bytes then name and extra field), after which the data
//! lie. Sizes are taken from the central directory, so members written with
//! a trailing data descriptor read as well.
//!
//! Stored (0) and deflated (8) members are read; encrypted members, other
//! methods, ZIP64 and multi-disk archives are refused. Every member's size
//! and CRC-32 are checked as it is written out. Every error names the
//! archive.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::Path;

/// One member of an archive, as its central directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipMember {
    /// The path inside the archive, `/`-separated.
    pub name: String,
    /// 0 (stored) or 8 (deflated).
    pub method: u16,
    pub crc32: u32,
    pub compressed: u64,
    pub size: u64,
    /// Where its local header starts.
    header: u64,
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// The members of the archive `bytes` (`archive` names it in errors), in
/// central-directory order.
pub fn zip_members(bytes: &[u8], archive: &Path) -> Result<Vec<ZipMember>> {
    let bad = |m: String| Error::format(archive, format!("is not a ZIP archive aekit can read: {m}"));
    const EOCD: usize = 22;
    if bytes.len() < EOCD {
        return Err(bad(format!("{} bytes is too short", bytes.len())));
    }
    let lowest = bytes.len().saturating_sub(EOCD + u16::MAX as usize);
    let end = (lowest..=bytes.len() - EOCD)
        .rev()
        .find(|&i| bytes[i..i + 4] == *b"PK\x05\x06")
        .ok_or_else(|| bad("no end-of-central-directory record".into()))?;
    let (disk, cd_disk) = (u16_at(bytes, end + 4), u16_at(bytes, end + 6));
    let entries = u16_at(bytes, end + 10) as usize;
    let (cd_size, cd_start) = (u32_at(bytes, end + 12) as usize, u32_at(bytes, end + 16) as usize);
    if disk != 0 || cd_disk != 0 || u16_at(bytes, end + 8) as usize != entries {
        return Err(bad("it spans several disks".into()));
    }
    if entries == 0xffff || cd_start == 0xffff_ffff || cd_size == 0xffff_ffff {
        return Err(bad("it is a ZIP64 archive".into()));
    }
    if cd_start.checked_add(cd_size).is_none_or(|e| e > end) {
        return Err(bad(format!(
            "its central directory ({cd_size} bytes at {cd_start}) lies outside the file"
        )));
    }
    let mut out = Vec::with_capacity(entries);
    let mut at = cd_start;
    for k in 0..entries {
        if at + 46 > end || bytes[at..at + 4] != *b"PK\x01\x02" {
            return Err(bad(format!("central directory entry {} is damaged", k + 1)));
        }
        let flags = u16_at(bytes, at + 8);
        let method = u16_at(bytes, at + 10);
        let crc32 = u32_at(bytes, at + 16);
        let compressed = u32_at(bytes, at + 20);
        let size = u32_at(bytes, at + 24);
        let (name_len, extra_len, comment_len) = (
            u16_at(bytes, at + 28) as usize,
            u16_at(bytes, at + 30) as usize,
            u16_at(bytes, at + 32) as usize,
        );
        let header = u32_at(bytes, at + 42);
        let name_end = at + 46 + name_len;
        if name_end > end {
            return Err(bad(format!("central directory entry {} is damaged", k + 1)));
        }
        let name = String::from_utf8_lossy(&bytes[at + 46..name_end]).into_owned();
        if flags & 1 != 0 {
            return Err(bad(format!("member {name} is encrypted")));
        }
        if [compressed, size, header].contains(&0xffff_ffff) {
            return Err(bad(format!("member {name} needs ZIP64")));
        }
        out.push(ZipMember {
            name,
            method,
            crc32,
            compressed: compressed as u64,
            size: size as u64,
            header: header as u64,
        });
        at = name_end + extra_len + comment_len;
    }
    Ok(out)
}

/// Writes the content of member `m` of `bytes` to `out`, checking its size
/// and CRC-32; returns the bytes written.
pub fn extract_member(bytes: &[u8], m: &ZipMember, out: &mut dyn Write, archive: &Path) -> Result<u64> {
    let bad = |what: String| Error::format(archive, format!("member {}: {what}", m.name));
    let h = m.header as usize;
    if h + 30 > bytes.len() || bytes[h..h + 4] != *b"PK\x03\x04" {
        return Err(bad("its local header is missing or damaged".into()));
    }
    let start = h + 30 + u16_at(bytes, h + 26) as usize + u16_at(bytes, h + 28) as usize;
    let data = start
        .checked_add(m.compressed as usize)
        .filter(|&e| e <= bytes.len())
        .map(|e| &bytes[start..e])
        .ok_or_else(|| {
            bad(format!(
                "its {} bytes of data run past the end of the file",
                m.compressed
            ))
        })?;
    let mut reader: Box<dyn Read> = match m.method {
        0 => Box::new(data),
        8 => Box::new(flate2::read::DeflateDecoder::new(data)),
        other => {
            return Err(bad(format!(
                "compression method {other} (only stored and deflated are read)"
            )))
        }
    };
    // One byte past the stated size is read to catch a longer member.
    let mut limited = (&mut reader).take(m.size + 1);
    let mut crc = flate2::Crc::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut written = 0u64;
    loop {
        let n = limited
            .read(&mut buf)
            .map_err(|e| bad(format!("its data do not decompress ({e})")))?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
        written += n as u64;
        out.write_all(&buf[..n])
            .map_err(|e| Error::io("cannot write", archive, e))?;
    }
    if written > m.size {
        return Err(bad(format!(
            "it holds more than the {} bytes its directory says",
            m.size
        )));
    }
    if written < m.size {
        return Err(bad(format!(
            "it holds {written} bytes, its directory says {}",
            m.size
        )));
    }
    if crc.sum() != m.crc32 {
        return Err(bad(format!(
            "CRC-32 {:08x} of its content, its directory says {:08x}",
            crc.sum(),
            m.crc32
        )));
    }
    Ok(written)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ZIP archive of `files` (name, content, deflated?), as Info-ZIP
    /// writes one: local headers with sizes, then the central directory.
    pub(crate) fn make_zip(files: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, content, deflate) in files {
            let mut crc = flate2::Crc::new();
            crc.update(content);
            let data = if *deflate {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(content).unwrap();
                e.finish().unwrap()
            } else {
                content.to_vec()
            };
            let method: u16 = if *deflate { 8 } else { 0 };
            let offset = out.len() as u32;
            let fields = |v: &mut Vec<u8>| {
                v.extend(20u16.to_le_bytes()); // version needed
                v.extend(0u16.to_le_bytes()); // flags
                v.extend(method.to_le_bytes());
                v.extend([0u8; 4]); // time, date
                v.extend(crc.sum().to_le_bytes());
                v.extend((data.len() as u32).to_le_bytes());
                v.extend((content.len() as u32).to_le_bytes());
                v.extend((name.len() as u16).to_le_bytes());
                v.extend(0u16.to_le_bytes()); // extra
            };
            out.extend(b"PK\x03\x04");
            fields(&mut out);
            out.extend(name.as_bytes());
            out.extend(&data);
            central.extend(b"PK\x01\x02");
            central.extend(20u16.to_le_bytes()); // version made by
            fields(&mut central);
            central.extend([0u8; 6]); // comment length, disk, internal attributes
            central.extend(0u32.to_le_bytes()); // external attributes
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_start = out.len() as u32;
        out.extend(&central);
        out.extend(b"PK\x05\x06");
        out.extend([0u8; 4]);
        out.extend((files.len() as u16).to_le_bytes());
        out.extend((files.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_start.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
        let p = Path::new("t.zip");
        zip_members(bytes, p)?
            .iter()
            .map(|m| {
                let mut v = Vec::new();
                extract_member(bytes, m, &mut v, p)?;
                Ok((m.name.clone(), v))
            })
            .collect()
    }

    #[test]
    fn reads_stored_and_deflated_members() {
        let text = b"0.5 0.25 1\n".repeat(1000);
        let z = make_zip(&[("a/train.amat", &text, true), ("b.txt", b"hello", false)]);
        let got = read_all(&z).unwrap();
        assert_eq!(got[0], ("a/train.amat".to_string(), text.clone()));
        assert_eq!(got[1], ("b.txt".to_string(), b"hello".to_vec()));
        // The deflated member really was compressed.
        assert!(z.len() < text.len() / 4, "{}", z.len());
    }

    #[test]
    fn damaged_archives_are_refused_naming_the_archive() {
        let z = make_zip(&[("x.amat", b"abcdefgh", false)]);
        // A changed content byte fails the CRC.
        let mut bad = z.clone();
        bad[30 + 6] ^= 1;
        let e = read_all(&bad).unwrap_err().to_string();
        assert!(
            e.contains("t.zip") && e.contains("x.amat") && e.contains("CRC-32"),
            "{e}"
        );
        // Cut off: no end record.
        let e = read_all(&z[..z.len() - 10]).unwrap_err().to_string();
        assert!(e.contains("end-of-central-directory"), "{e}");
        // Not a ZIP at all.
        assert!(read_all(b"plain text, not an archive").is_err());
        // An unknown method.
        let mut m = z.clone();
        let cd = z.len() - 22 - (46 + 6);
        m[cd + 10] = 12;
        let e = read_all(&m).unwrap_err().to_string();
        assert!(e.contains("compression method 12"), "{e}");
        // Encrypted.
        let mut enc = z.clone();
        enc[cd + 8] = 1;
        assert!(read_all(&enc).unwrap_err().to_string().contains("encrypted"));
        // A directory that claims a longer member.
        let mut long = z;
        long[cd + 24] = 9;
        let e = read_all(&long).unwrap_err().to_string();
        assert!(e.contains("its directory says 9"), "{e}");
    }
}
