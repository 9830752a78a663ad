//! The IDX format (MNIST, Fashion-MNIST): a 4-byte magic `0 0 dtype ndim`,
//! `ndim` big-endian u32 dims, then the data. Files may be gzipped. aekit reads
//! unsigned-byte tensors (dtype 0x08) and checks every header field, the file
//! length and the element count before allocating anything.

use crate::data::Dataset;
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// The largest tensor aekit will allocate from a header (4 GiB): anything
/// larger is a corrupt or hostile header, not a dataset.
pub const MAX_ELEMENTS: u64 = 1 << 32;

/// A u8 tensor read from an IDX file.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// An unsigned-byte IDX file (magic, big-endian dims, data), gzipped.
pub fn encode_idx_gz(dims: &[usize], data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut raw = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        raw.extend_from_slice(&(d as u32).to_be_bytes());
    }
    raw.extend_from_slice(data);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// Reads an IDX file, gzipped (detected by its magic 1f 8b) or raw.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let bytes = crate::tensor::memory::read_bounded(path, "IDX file")?;
    parse_idx(&bytes, path)
}

/// Parses IDX bytes (gzipped or raw); `path` only names the source in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        // Decompressed whole first (bounded), so that a gzip stream that is
        // fine but holds a short or long IDX payload is blamed on the
        // payload, not on gzip.
        let mut raw = Vec::new();
        GzDecoder::new(bytes)
            .take(MAX_ELEMENTS + 4 + 16 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| gz_err(path, e))?;
        let mut r = &raw[..];
        read_stream(&mut r, Some(raw.len() as u64), path, true)
    } else {
        let mut r = bytes;
        read_stream(&mut r, Some(bytes.len() as u64), path, false)
    }
}

fn gz_err(path: &Path, e: std::io::Error) -> Error {
    Error::format(path, format!("truncated or corrupt gzip data ({e})"))
}

fn read_stream(r: &mut dyn Read, total_len: Option<u64>, path: &Path, gz: bool) -> Result<IdxArray> {
    // A gzipped file arrives decompressed: its sizes are the content's.
    let file = if gz { "decompressed content" } else { "file" };
    let short = |what: &str| Error::format(path, format!("{file} ends inside the IDX header ({what})"));
    let mut magic = [0u8; 4];
    read_full(r, &mut magic).map_err(|_| short("magic"))?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(Error::format(
            path,
            format!(
                "not an IDX file: magic bytes {:02x} {:02x} {:02x} {:02x} should start with 00 00",
                magic[0], magic[1], magic[2], magic[3]
            ),
        ));
    }
    let dtype = magic[2];
    if dtype != 0x08 {
        let name = match dtype {
            0x09 => "i8",
            0x0B => "i16",
            0x0C => "i32",
            0x0D => "f32",
            0x0E => "f64",
            _ => "unknown",
        };
        return Err(Error::format(
            path,
            format!("IDX dtype 0x{dtype:02x} ({name}) is not supported: aekit reads unsigned-byte (0x08) IDX files"),
        ));
    }
    let ndim = magic[3] as usize;
    if ndim == 0 || ndim > 4 {
        return Err(Error::format(
            path,
            format!("IDX header declares {ndim} dimensions; expected 1 to 4"),
        ));
    }
    let mut dims = Vec::with_capacity(ndim);
    let mut count: u64 = 1;
    for i in 0..ndim {
        let mut d = [0u8; 4];
        read_full(r, &mut d).map_err(|_| short("dims"))?;
        let d = u32::from_be_bytes(d) as u64;
        count = count.saturating_mul(d);
        if count > MAX_ELEMENTS {
            return Err(Error::format(
                path,
                format!("IDX header is absurd: dimension {i} makes more than {MAX_ELEMENTS} elements"),
            ));
        }
        dims.push(d as usize);
    }
    let header = 4 + 4 * ndim as u64;
    if let Some(total) = total_len {
        if total != header + count {
            return Err(Error::format(
                path,
                format!(
                    "{file} is {total} bytes but its header {dims:?} needs {} ({})",
                    header + count,
                    if total < header + count {
                        "truncated"
                    } else {
                        "trailing bytes"
                    }
                ),
            ));
        }
    }
    let mut data = vec![0u8; count as usize];
    read_full(r, &mut data).map_err(|_| {
        Error::format(
            path,
            format!("{file} is shorter than its header says (truncated)"),
        )
    })?;
    Ok(IdxArray { dims, data })
}

/// `read_exact` that reports a short read as `UnexpectedEof`.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<()> {
    r.read_exact(buf)
}

/// Encodes a u8 tensor as raw IDX bytes (for tests and for users' own data).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// The usual file names of an IDX dataset's four parts, without `.gz`.
pub const IDX_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl Dataset {
    /// Builds a dataset from u8 IDX images (`[n, h, w]` or `[n, d]`) scaled
    /// to [0, 1], and optional u8 labels `[n]`, checking that they agree.
    pub fn from_idx(
        images: IdxArray,
        labels: Option<IdxArray>,
        images_path: &Path,
        labels_path: &Path,
    ) -> Result<Dataset> {
        let (n, dim, image) = match images.dims.as_slice() {
            [n, h, w] => (*n, h * w, Some((*h, *w))),
            [n, d] => (*n, *d, None),
            d => {
                return Err(Error::format(
                    images_path,
                    format!("expected images of shape [n, h, w] or [n, d], got {d:?}"),
                ))
            }
        };
        let labels = match labels {
            None => None,
            Some(l) => {
                if l.dims.len() != 1 {
                    return Err(Error::format(
                        labels_path,
                        format!("expected labels of shape [n], got {:?}", l.dims),
                    ));
                }
                if l.dims[0] != n {
                    return Err(Error::format(
                        labels_path,
                        format!(
                            "has {} labels but {} has {} images",
                            l.dims[0],
                            images_path.display(),
                            n
                        ),
                    ));
                }
                Some(l.data)
            }
        };
        let x = images.data.iter().map(|&p| p as f32 / 255.0).collect();
        Ok(Dataset {
            x,
            labels,
            n,
            dim,
            image,
        })
    }

    /// Reads an image file and, optionally, its label file.
    pub fn read_idx_pair(images: &Path, labels: Option<&Path>) -> Result<Dataset> {
        let im = read_idx(images)?;
        let lb = labels.map(read_idx).transpose()?;
        Dataset::from_idx(im, lb, images, labels.unwrap_or(Path::new("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn err(bytes: &[u8]) -> String {
        parse_idx(bytes, Path::new("f.idx")).unwrap_err().to_string()
    }

    #[test]
    fn golden_header_parses() {
        // Two 2×3 images with values 0..12: magic 00 00 08 03, dims 2, 2, 3.
        let raw: Vec<u8> = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]
            .into_iter()
            .chain(0..12)
            .collect();
        let a = parse_idx(&raw, Path::new("x")).unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(a.data, (0..12).collect::<Vec<u8>>());
        assert_eq!(parse_idx(&gz(&raw), Path::new("x")).unwrap(), a);
        assert_eq!(encode_idx(&[2, 2, 3], &a.data), raw);
    }

    #[test]
    fn bad_headers_are_refused_with_the_reason() {
        let good = encode_idx(&[2, 3], &[1; 6]);
        assert!(err(&[0x12, 0x34, 8, 1, 0, 0, 0, 1, 7]).contains("magic bytes 12 34"));
        let mut f32file = good.clone();
        f32file[2] = 0x0D;
        assert!(err(&f32file).contains("dtype 0x0d (f32)"));
        assert!(err(&[0, 0, 8, 0]).contains("0 dimensions"));
        assert!(err(&good[..good.len() - 1]).contains("truncated"));
        let mut long = good.clone();
        long.push(9);
        assert!(err(&long).contains("trailing bytes"));
        assert!(err(&[0, 0, 8]).contains("header"));
    }

    #[test]
    fn absurd_dims_are_refused_before_allocating() {
        // 4 dims of 65535 would be 1.8e19 bytes.
        let mut h = vec![0, 0, 8, 4];
        for _ in 0..4 {
            h.extend_from_slice(&0xFFFFu32.to_be_bytes());
        }
        assert!(err(&h).contains("absurd"));
        assert!(err(&gz(&h)).contains("absurd"));
    }

    #[test]
    fn truncated_gzip_is_reported_as_such() {
        let z = gz(&encode_idx(&[100, 10], &[3; 1000]));
        let e = err(&z[..z.len() / 2]);
        assert!(e.contains("truncated or corrupt gzip"), "{e}");
    }

    #[test]
    fn a_short_or_long_payload_in_sound_gzip_is_blamed_on_the_payload() {
        let full = encode_idx(&[100, 10], &[3; 1000]);
        let e = err(&gz(&full[..full.len() - 10]));
        assert!(
            !e.contains("gzip")
                && e.contains("decompressed content is 1002 bytes")
                && e.contains("truncated"),
            "{e}"
        );
        let long = gz(&[encode_idx(&[2], &[1, 2]), vec![5]].concat());
        assert!(err(&long).contains("trailing bytes"), "{}", err(&long));
    }
}
