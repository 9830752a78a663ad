//! A small NPY (version 1.0) writer and reader for f32 matrices, which
//! `numpy.load` reads.

use crate::error::{Error, Result};
use std::path::Path;

/// NPY bytes of a little-endian f32 array of `shape`.
pub fn npy_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes an f32 array as `.npy`, atomically.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    crate::io::atomic_write(path, &npy_bytes(shape, data))
}

/// Reads a little-endian f32 C-order `.npy` file: (shape, data).
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let b = crate::tensor::memory::read_bounded(path, ".npy file")?;
    let bad = |d: &str| Error::format(path, format!("not an f32 NPY file: {d}"));
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(bad("missing \\x93NUMPY magic"));
    }
    // Version 1 holds the header's length in 2 bytes; 2 and 3 (longer
    // headers; 3 a UTF-8 one) in 4.
    let (hlen, start): (usize, usize) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        2 | 3 => return Err(bad("header truncated")),
        v => return Err(bad(&format!("NPY format version {v} (aekit reads 1 to 3)"))),
    };
    let header = std::str::from_utf8(
        start
            .checked_add(hlen)
            .and_then(|end| b.get(start..end))
            .ok_or_else(|| bad("header truncated"))?,
    )
    .map_err(|_| bad("header is not text"))?;
    if !header.trim_end().ends_with('}') {
        return Err(bad("header truncated (its dictionary is not closed)"));
    }
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(bad("only little-endian f32 in C order is supported"));
    }
    let shape_txt = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape: Vec<usize> = shape_txt
        .trim()
        .trim_start_matches('(')
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_>>()?;
    let body = &b[start + hlen..];
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|n| n.checked_mul(4).is_some())
        .ok_or_else(|| bad(&format!("shape {shape:?} holds more values than memory")))?;
    if body.len() != 4 * n {
        return Err(bad(&format!("{} data bytes for shape {shape:?}", body.len())));
    }
    let data = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_round_trips() {
        let b = npy_bytes(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert!(std::str::from_utf8(&b[10..10 + hlen])
            .unwrap()
            .contains("'shape': (2, 3)"));
        let dir = tempfile::Builder::new().prefix("aekit-npy-").tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy(&p, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let (s, d) = read_npy(&p).unwrap();
        assert_eq!(s, vec![2, 3]);
        assert_eq!(d, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(npy_bytes(&[4], &[0.0; 4]).windows(4).any(|w| w == b"(4,)"));
    }

    #[test]
    fn versions_2_and_3_read_and_a_cut_or_unknown_header_is_refused() {
        // As numpy writes with version=(2, 0): the header's length in 4 bytes.
        let file = |version: u8, header: &str, values: &[f32]| {
            let mut b = b"\x93NUMPY".to_vec();
            b.extend([version, 0]);
            if version == 1 {
                b.extend((header.len() as u16).to_le_bytes());
            } else {
                b.extend((header.len() as u32).to_le_bytes());
            }
            b.extend(header.as_bytes());
            values.iter().for_each(|v| b.extend(v.to_le_bytes()));
            b
        };
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.npy");
        for v in [1, 2, 3] {
            std::fs::write(&p, file(v, dict, &[1.5, -2.0])).unwrap();
            assert_eq!(read_npy(&p).unwrap(), (vec![2], vec![1.5, -2.0]), "version {v}");
        }
        for (b, why) in [
            (file(9, dict, &[1.5, -2.0]), "version 9"),
            (file(1, &dict[..dict.len() - 5], &[1.5, -2.0]), "not closed"),
            (
                file(
                    1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                    &[],
                ),
                "more values than memory",
            ),
        ] {
            std::fs::write(&p, b).unwrap();
            let e = read_npy(&p).unwrap_err().to_string();
            assert!(e.contains("v.npy") && e.contains(why), "{e}");
        }
    }
}
