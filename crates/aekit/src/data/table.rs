//! Tables with holes: a CSV file read with the `csv` crate into its header
//! and its cells' exact text (so that an observed cell is written back as it
//! was read), with the delimiter detected, a UTF-8 byte-order mark skipped,
//! and the usual markers of a missing cell recognised.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The texts that mean "missing" besides those a user adds: an empty (or
/// blank) cell, `NA`, `NaN`, `?`, `null` (and their lower/upper-case forms).
pub const MISSING: &[&str] = &[
    "", "NA", "na", "N/A", "NaN", "nan", "NAN", "?", "null", "NULL", "None",
];

/// How a CSV file is read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CsvOptions {
    /// The field delimiter; detected from the header line (comma, semicolon
    /// or tab) when `None`.
    pub delimiter: Option<u8>,
    /// Extra texts that mean "missing".
    pub missing: Vec<String>,
}

/// A table: its header and its cells' text, row-major, held in one buffer
/// (8 bytes of offset per cell beside the text itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    text: String,
    /// Cell k's text is `text[ends[k - 1]..ends[k]]` (`ends[-1]` = 0);
    /// 4 bytes a cell, so a table's cell text is at most 4 GiB.
    ends: Vec<u32>,
    pub delimiter: u8,
    pub path: PathBuf,
    missing: Vec<String>,
}

impl Table {
    /// A table from its header and rows of cells (for tests and callers that
    /// hold their data already); `path` names it in messages.
    pub fn from_rows(header: Vec<String>, rows: &[Vec<String>], path: &Path) -> Result<Table> {
        let mut t = Table {
            header,
            text: String::new(),
            ends: Vec::new(),
            delimiter: b',',
            path: path.to_path_buf(),
            missing: Vec::new(),
        };
        check_header(&t.header, path)?;
        for (r, row) in rows.iter().enumerate() {
            if row.len() != t.header.len() {
                return Err(ragged(path, r, t.header.len(), row.len()));
            }
            for c in row {
                t.text.push_str(c);
                t.ends.push(end_of(t.text.len(), path)?);
            }
        }
        Ok(t)
    }

    /// Reads `path` as `opts` says. Refused, with the row and column: a file
    /// that is not UTF-8, rows of different lengths, a header with an empty
    /// or repeated name, no data rows.
    pub fn read(path: &Path, opts: &CsvOptions) -> Result<Table> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot read", path, e))?;
        if !meta.is_file() {
            return Err(Error::format(path, "is not a regular file"));
        }
        let delimiter = match opts.delimiter {
            Some(d) => d,
            None => sniff(path)?,
        };
        let mut rd = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(false)
            .from_path(path)
            .map_err(|e| Error::format(path, e.to_string()))?;
        let header: Vec<String> = rd
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = if i == 0 {
                    h.trim_start_matches('\u{feff}')
                } else {
                    h
                };
                h.trim().to_string()
            })
            .collect();
        check_header(&header, path)?;
        let mut t = Table {
            header,
            text: String::with_capacity(meta.len() as usize),
            ends: Vec::new(),
            delimiter,
            path: path.to_path_buf(),
            missing: opts.missing.clone(),
        };
        let mut rec = csv::StringRecord::new();
        loop {
            match rd.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    for f in rec.iter() {
                        t.text.push_str(f);
                        t.ends.push(end_of(t.text.len(), path)?);
                    }
                }
                Err(e) => return Err(csv_error(path, e)),
            }
        }
        // The `csv` crate reads an unclosed quote to the end of the file as
        // one field; that file is cut or miswritten, not a table.
        if let Some(line) = unclosed_quote(path, delimiter)? {
            return Err(Error::format(
                path,
                format!("line {line}: a quoted field opens here and never closes (a `\"` is missing)"),
            ));
        }
        if t.n_rows() == 0 {
            return Err(Error::format(path, "has a header but no data rows"));
        }
        t.text.shrink_to_fit();
        t.ends.shrink_to_fit();
        Ok(t)
    }

    /// The same table with `missing` as its extra missing markers.
    pub fn with_missing(mut self, missing: &[String]) -> Table {
        self.missing = missing.to_vec();
        self
    }

    pub fn n_rows(&self) -> usize {
        self.ends.len() / self.header.len().max(1)
    }

    pub fn n_cols(&self) -> usize {
        self.header.len()
    }

    /// The text of row `r`, column `c`, exactly as read.
    pub fn cell(&self, r: usize, c: usize) -> &str {
        let k = r * self.n_cols() + c;
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        &self.text[start..self.ends[k] as usize]
    }

    /// Whether a cell's text means "missing" (trimmed; see [`MISSING`] and
    /// [`CsvOptions::missing`]).
    pub fn is_missing(&self, text: &str) -> bool {
        let t = text.trim();
        MISSING.contains(&t) || self.missing.iter().any(|m| m == t)
    }

    /// The index of the column named `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Writes the header and `rows` (each a cell text per column) to `path`
    /// with this table's delimiter, quoting only where CSV needs it,
    /// atomically.
    pub fn write_rows<'a>(
        &self,
        path: &Path,
        header: &[String],
        rows: impl Iterator<Item = Vec<&'a str>>,
    ) -> Result<()> {
        // Streamed into the temporary file that replaces `path` whole: the
        // filled table is never held in memory.
        crate::io::atomic_write_with(path, |f| {
            use std::io::Write as _;
            let mut w = csv::WriterBuilder::new()
                .delimiter(self.delimiter)
                .quote_style(csv::QuoteStyle::Necessary)
                .from_writer(std::io::BufWriter::with_capacity(1 << 20, f));
            w.write_record(header).map_err(std::io::Error::other)?;
            for row in rows {
                w.write_record(&row).map_err(std::io::Error::other)?;
            }
            w.flush()?;
            w.into_inner()
                .map_err(|e| std::io::Error::other(e.to_string()))?
                .flush()
        })
    }
}

/// A cell's end offset as the table keeps it; an error past 4 GiB of cell
/// text.
fn end_of(len: usize, path: &Path) -> Result<u32> {
    u32::try_from(len).map_err(|_| {
        Error::format(
            path,
            "holds more than 4 GiB of cell text, past what a table is read into (split the file)",
        )
    })
}

/// The delimiter of the header line: whichever of comma, semicolon and tab
/// appears most often outside quotes (comma when none does).
fn sniff(path: &Path) -> Result<u8> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mut head = vec![0u8; 64 * 1024];
    let n = f.read(&mut head).map_err(|e| Error::io("cannot read", path, e))?;
    let line = head[..n].split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).expect("three");
    Ok([b',', b';', b'\t'][best])
}

/// The line where a quoted field opens that the file never closes, by the
/// rules the `csv` crate reads with: a field that starts with `"` is quoted
/// up to a `"` not followed by another (`""` is a quote inside it); a `"`
/// anywhere else is text.
fn unclosed_quote(path: &Path, delimiter: u8) -> Result<Option<usize>> {
    use std::io::BufRead as _;
    let f = std::fs::File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mut rd = std::io::BufReader::with_capacity(1 << 16, f);
    let (mut line, mut opened_at) = (1usize, None::<usize>);
    // Whether the next byte starts a field; whether the last byte, inside
    // quotes, was a `"` that may close them (or start a `""`).
    let (mut field_start, mut maybe_closed) = (true, false);
    loop {
        let buf = rd.fill_buf().map_err(|e| Error::io("cannot read", path, e))?;
        if buf.is_empty() {
            break;
        }
        for &b in buf {
            if opened_at.is_some() {
                if maybe_closed {
                    maybe_closed = false;
                    if b != b'"' {
                        opened_at = None;
                        field_start = b == delimiter || b == b'\n';
                    }
                } else if b == b'"' {
                    maybe_closed = true;
                }
            } else if field_start && b == b'"' {
                opened_at = Some(line);
                field_start = false;
            } else {
                field_start = b == delimiter || b == b'\n';
            }
            if b == b'\n' {
                line += 1;
            }
        }
        let n = buf.len();
        rd.consume(n);
    }
    Ok(opened_at.filter(|_| !maybe_closed))
}

fn check_header(header: &[String], path: &Path) -> Result<()> {
    if header.is_empty() || header.iter().all(|h| h.is_empty()) {
        return Err(Error::format(
            path,
            "has no header row (the first line must name the columns)",
        ));
    }
    // A first line of numbers is a data row, unless it counts the columns
    // (0, 1, 2, … as pandas writes an array's, or 1, 2, 3, …).
    let numbers: Option<Vec<f64>> = header.iter().map(|h| h.parse::<f64>().ok()).collect();
    if let Some(v) = numbers {
        let counts_from = |k: f64| v.iter().enumerate().all(|(i, &x)| x == i as f64 + k);
        if !counts_from(0.0) && !counts_from(1.0) {
            let shown: Vec<&str> = header.iter().take(4).map(String::as_str).collect();
            return Err(Error::format(
                path,
                format!(
                    "line 1 is all numbers ({}{}): it reads as a data row, but the first line must name the columns; add a header line",
                    shown.join(", "),
                    if header.len() > 4 { ", …" } else { "" }
                ),
            ));
        }
    }
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() {
            return Err(Error::format(
                path,
                format!("header: column {} has no name", i + 1),
            ));
        }
        if let Some(j) = header[..i].iter().position(|g| g == h) {
            return Err(Error::format(
                path,
                format!("header: columns {} and {} are both named `{h}`", j + 1, i + 1),
            ));
        }
    }
    Ok(())
}

/// A CSV file of numbers with a header row, as rows of a dataset (every
/// column a feature). A cell that is missing or not a finite number is
/// refused with its data row and column name.
pub fn read_numeric_csv(path: &Path) -> Result<crate::data::Dataset> {
    let t = Table::read(path, &CsvOptions::default())?;
    let (n, dim) = (t.n_rows(), t.n_cols());
    let mut x = Vec::with_capacity(n * dim);
    for r in 0..n {
        for c in 0..dim {
            let text = t.cell(r, c).trim();
            let bad = |why: &str| {
                Error::format(
                    path,
                    format!("data row {}, column `{}`: {why}", r + 1, t.header[c]),
                )
            };
            if t.is_missing(text) {
                return Err(bad(&format!(
                    "`{text}` is a missing value; fill the holes first (`aekit impute`)"
                )));
            }
            match text.parse::<f32>() {
                Ok(v) if v.is_finite() => x.push(v),
                _ => return Err(bad(&format!("`{text}` is not a finite number"))),
            }
        }
    }
    Ok(crate::data::Dataset {
        x,
        labels: None,
        n,
        dim,
        image: None,
    })
}

fn ragged(path: &Path, row: usize, want: usize, got: usize) -> Error {
    Error::format(
        path,
        format!("data row {}: {got} fields, but the header has {want}", row + 1),
    )
}

/// A `csv` error with the line (and field) it happened at.
fn csv_error(path: &Path, e: csv::Error) -> Error {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => Error::format(
            path,
            format!(
                "line {}: {len} fields, but the header has {expected_len}",
                pos.as_ref().map_or(0, |p| p.line())
            ),
        ),
        csv::ErrorKind::Utf8 { pos, err } => Error::format(
            path,
            format!(
                "line {}, field {}: not UTF-8 text ({err}); save the file as UTF-8",
                pos.as_ref().map_or(0, |p| p.line()),
                err.field() + 1
            ),
        ),
        csv::ErrorKind::Io(io) => Error::format(path, format!("cannot read: {io}")),
        _ => Error::format(path, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8], opts: &CsvOptions) -> Result<Table> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        Table::read(&p, opts)
    }

    #[test]
    fn a_numeric_csv_reads_as_rows_and_names_a_bad_cell() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.csv");
        std::fs::write(&p, "a,b,c\n1,2.5,-3e2\n4, 5 ,6\n").unwrap();
        let x = read_numeric_csv(&p).unwrap();
        assert_eq!((x.n, x.dim), (2, 3));
        assert_eq!(x.x, [1.0, 2.5, -300.0, 4.0, 5.0, 6.0]);
        std::fs::write(&p, "a,b\n1,2\n3,x\n").unwrap();
        let e = read_numeric_csv(&p).unwrap_err().to_string();
        assert!(
            e.contains("x.csv") && e.contains("data row 2, column `b`") && e.contains("`x`"),
            "{e}"
        );
        std::fs::write(&p, "a,b\n1,NA\n").unwrap();
        let e = read_numeric_csv(&p).unwrap_err().to_string();
        assert!(
            e.contains("data row 1, column `b`") && e.contains("aekit impute"),
            "{e}"
        );
        std::fs::write(&p, "a,b\n1,inf\n").unwrap();
        assert!(read_numeric_csv(&p)
            .unwrap_err()
            .to_string()
            .contains("not a finite number"));
    }

    #[test]
    fn delimiters_quotes_bom_and_markers() {
        let o = CsvOptions::default();
        let t = read(b"\xef\xbb\xbfa;b;c\n1,5;\"x;y\";NA\n2;?;z\n", &o).unwrap();
        assert_eq!(t.delimiter, b';');
        assert_eq!(t.header, ["a", "b", "c"]);
        assert_eq!((t.n_rows(), t.cell(0, 0), t.cell(0, 1)), (2, "1,5", "x;y"));
        assert!(t.is_missing(t.cell(0, 2)) && t.is_missing(t.cell(1, 1)));
        assert!(!t.is_missing(t.cell(1, 2)));
        let t = read(b"a\tb\n1\t\n", &o).unwrap();
        assert_eq!((t.delimiter, t.cell(0, 1)), (b'\t', ""));
        let t = read(
            b"a,b\n-99,1\n",
            &CsvOptions {
                missing: vec!["-99".into()],
                ..o.clone()
            },
        )
        .unwrap();
        assert!(t.is_missing(t.cell(0, 0)));
    }

    #[test]
    fn bad_tables_name_the_line_and_what_is_wrong() {
        let o = CsvOptions::default();
        let e = |b: &[u8]| read(b, &o).unwrap_err().to_string();
        let m = e(b"a,b\n1,2\n3\n");
        assert!(
            m.contains("line 3") && m.contains("1 fields") && m.contains("has 2"),
            "{m}"
        );
        let m = e(b"a,b\n1,\xff\n");
        assert!(
            m.contains("line 2") && m.contains("field 2") && m.contains("UTF-8"),
            "{m}"
        );
        let m = e(b"a,b,a\n1,2,3\n");
        assert!(m.contains("columns 1 and 3") && m.contains("`a`"), "{m}");
        let m = e(b"a,b\n");
        assert!(m.contains("no data rows"), "{m}");
        let m = e(b"a,,c\n1,2,3\n");
        assert!(m.contains("column 2 has no name"), "{m}");
        // A file without a header: its first row is not taken for names.
        let m = e(b"0.5,3,1e2,7,8\n1,2,3,4,5\n");
        assert!(
            m.contains("line 1 is all numbers (0.5, 3, 1e2, 7, …)") && m.contains("header"),
            "{m}"
        );
        // A quote that never closes swallows the rest of the file.
        let m = e(b"a,b\n1,\"x\n2,y\n3,z\n");
        assert!(m.contains("line 2") && m.contains("never closes"), "{m}");
        let m = e(b"a,b\n1,\"x,\"\"y\"\"\n");
        assert!(m.contains("line 2") && m.contains("never closes"), "{m}");
        // Closed quotes, doubled quotes, quotes inside text and quoted line
        // breaks are all fine.
        let t = read(b"a,b\n1,\"x \"\"q\"\"\"\n2,5\"\n\"3\",\"two\nlines\"", &o).unwrap();
        assert_eq!(
            (t.n_rows(), t.cell(0, 1), t.cell(1, 1), t.cell(2, 1)),
            (3, "x \"q\"", "5\"", "two\nlines")
        );
        // Columns numbered as pandas or R number them are names.
        for h in [&b"0,1,2\n5,6,7\n"[..], b"1,2,3\n5,6,7\n"] {
            assert_eq!(read(h, &o).unwrap().n_rows(), 1);
        }
    }

    #[test]
    fn cells_are_written_back_as_read() {
        let src = b"id,v,w\n1,0.50,\"a,b\"\n2,1e3,plain\n";
        let t = read(src, &CsvOptions::default()).unwrap();
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("o.csv");
        let rows = (0..t.n_rows()).map(|r| (0..t.n_cols()).map(|c| t.cell(r, c)).collect());
        t.write_rows(&out, &t.header, rows).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), src);
    }
}
