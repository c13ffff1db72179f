//! A CSV reader for numeric tables: chosen columns become the features, one column the
//! target. Every problem is a [`DataError::Csv`] naming the line and column.

use std::borrow::Cow;
use std::path::Path;

use sinew_tensor::{DType, Tensor};

use crate::dataset::TensorDataset;
use crate::error::{DataError, Result};

/// How to read a CSV file. Build it with the chaining methods or set the fields.
///
/// Columns are counted from 0; negative numbers count from the end (`-1` is the last
/// column). By default: no header, comma-separated, the last column is the target (read
/// as an `i64` class label) and every other column a feature (read as `f32`).
///
/// ```
/// use sinew_data::CsvOptions;
/// use sinew_tensor::DType;
/// let opts = CsvOptions::new().header(true).delimiter(b';').features([0, 2]).target(Some(1))
///     .target_dtype(DType::F32);
/// assert_eq!(opts.features, Some(vec![0, 2]));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// Whether the first non-blank line names the columns (it is then returned in
    /// [`CsvData::header`], not parsed as numbers). Its width does not fix the rows'
    /// (sklearn's CSVs start with `178,13,class_0,...`): the first data row does.
    pub has_header: bool,
    /// Physical lines skipped at the start of the file, before the header (default 0).
    pub skip_rows: usize,
    /// A byte that starts a comment line (`#`): a line whose first non-space byte it is
    /// is skipped, like a blank one (default none).
    pub comment: Option<u8>,
    /// The field separator, an ASCII byte other than `"`, `\r` and `\n` (default `,`).
    pub delimiter: u8,
    /// The feature columns, in the order wanted; `None` means every column but the target.
    pub features: Option<Vec<isize>>,
    /// The target column; `None` reads features only.
    pub target: Option<isize>,
    /// The features' element type, `F32` (default) or `F64`.
    pub feature_dtype: DType,
    /// The target's element type: `I64` (default; cells must be integers, `3` or `3.0`),
    /// `F32` or `F64` (regression targets).
    pub target_dtype: DType,
}

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions {
            has_header: false,
            skip_rows: 0,
            comment: None,
            delimiter: b',',
            features: None,
            target: Some(-1),
            feature_dtype: DType::F32,
            target_dtype: DType::I64,
        }
    }
}

impl CsvOptions {
    /// The defaults: no header, `,`, last column an `i64` target, the rest `f32` features.
    ///
    /// ```
    /// use sinew_data::CsvOptions;
    /// assert_eq!(CsvOptions::new(), CsvOptions::default());
    /// ```
    pub fn new() -> CsvOptions {
        CsvOptions::default()
    }

    /// Sets [`has_header`](CsvOptions::has_header).
    ///
    /// ```
    /// assert!(sinew_data::CsvOptions::new().header(true).has_header);
    /// ```
    pub fn header(mut self, has_header: bool) -> CsvOptions {
        self.has_header = has_header;
        self
    }

    /// Sets [`delimiter`](CsvOptions::delimiter).
    ///
    /// ```
    /// assert_eq!(sinew_data::CsvOptions::new().delimiter(b'\t').delimiter, b'\t');
    /// ```
    pub fn delimiter(mut self, delimiter: u8) -> CsvOptions {
        self.delimiter = delimiter;
        self
    }

    /// Sets [`features`](CsvOptions::features) to these columns.
    ///
    /// ```
    /// assert_eq!(sinew_data::CsvOptions::new().features([1, -2]).features, Some(vec![1, -2]));
    /// ```
    pub fn features(mut self, columns: impl IntoIterator<Item = isize>) -> CsvOptions {
        self.features = Some(columns.into_iter().collect());
        self
    }

    /// Sets [`target`](CsvOptions::target).
    ///
    /// ```
    /// assert_eq!(sinew_data::CsvOptions::new().target(None).target, None);
    /// ```
    pub fn target(mut self, column: Option<isize>) -> CsvOptions {
        self.target = column;
        self
    }

    /// Sets [`skip_rows`](CsvOptions::skip_rows).
    ///
    /// ```
    /// use sinew_data::{CsvOptions, read_csv_str};
    /// let d = read_csv_str("exported by a tool\n1,0\n2,1\n", &CsvOptions::new().skip_rows(1))?;
    /// assert_eq!(d.features.dims(), &[2, 1]);
    /// # Ok::<(), sinew_data::DataError>(())
    /// ```
    pub fn skip_rows(mut self, rows: usize) -> CsvOptions {
        self.skip_rows = rows;
        self
    }

    /// Sets [`comment`](CsvOptions::comment).
    ///
    /// ```
    /// use sinew_data::{CsvOptions, read_csv_str};
    /// let d = read_csv_str("# x, label\n1,0\n  # more\n2,1\n", &CsvOptions::new().comment(Some(b'#')))?;
    /// assert_eq!(d.features.dims(), &[2, 1]);
    /// # Ok::<(), sinew_data::DataError>(())
    /// ```
    pub fn comment(mut self, byte: Option<u8>) -> CsvOptions {
        self.comment = byte;
        self
    }

    /// Sets [`feature_dtype`](CsvOptions::feature_dtype).
    ///
    /// ```
    /// use sinew_tensor::DType;
    /// assert_eq!(sinew_data::CsvOptions::new().feature_dtype(DType::F64).feature_dtype, DType::F64);
    /// ```
    pub fn feature_dtype(mut self, dtype: DType) -> CsvOptions {
        self.feature_dtype = dtype;
        self
    }

    /// Sets [`target_dtype`](CsvOptions::target_dtype).
    ///
    /// ```
    /// use sinew_tensor::DType;
    /// assert_eq!(sinew_data::CsvOptions::new().target_dtype(DType::F32).target_dtype, DType::F32);
    /// ```
    pub fn target_dtype(mut self, dtype: DType) -> CsvOptions {
        self.target_dtype = dtype;
        self
    }

    #[track_caller]
    fn check(&self) {
        let d = self.delimiter;
        assert!(
            d.is_ascii() && !matches!(d, b'"' | b'\r' | b'\n'),
            "CsvOptions: delimiter {:?} must be an ASCII byte other than '\"', '\\r', '\\n'",
            d as char
        );
        if let Some(c) = self.comment {
            assert!(
                c.is_ascii() && c != d && !matches!(c, b'"' | b'\r' | b'\n') && !c.is_ascii_whitespace(),
                "CsvOptions: comment byte {:?} must be an ASCII byte other than the delimiter, '\"' and whitespace",
                c as char
            );
        }
        assert!(
            self.feature_dtype != DType::I64,
            "CsvOptions: feature_dtype must be F32 or F64 (cast afterwards for integers)"
        );
    }
}

/// What [`read_csv`] returns: the header if asked for, the features `[rows, features]`
/// and the targets `[rows]`.
///
/// ```
/// use sinew_data::{CsvOptions, read_csv_str};
/// let data = read_csv_str("a,b,label\n1,2,0\n3,4,1\n", &CsvOptions::new().header(true))?;
/// assert_eq!(data.header.as_deref(), Some(&["a".to_string(), "b".into(), "label".into()][..]));
/// assert_eq!(data.features.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(data.targets.unwrap().to_vec::<i64>(), vec![0, 1]);
/// # Ok::<(), sinew_data::DataError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CsvData {
    /// The column names, when [`CsvOptions::has_header`].
    pub header: Option<Vec<String>>,
    /// The feature columns, `[rows, features]`.
    pub features: Tensor,
    /// The target column, `[rows]`, unless [`CsvOptions::target`] is `None`.
    pub targets: Option<Tensor>,
}

impl CsvData {
    /// The features and targets as a [`TensorDataset`].
    ///
    /// # Panics
    /// If the file was read without a target column.
    ///
    /// ```
    /// use sinew_data::{CsvOptions, Dataset, read_csv_str};
    /// let ds = read_csv_str("1,2,0\n3,4,1\n", &CsvOptions::new())?.into_dataset();
    /// assert_eq!(ds.len(), 2);
    /// # Ok::<(), sinew_data::DataError>(())
    /// ```
    #[track_caller]
    pub fn into_dataset(self) -> TensorDataset {
        let targets = self.targets.expect("CsvData::into_dataset: the file was read without a target column");
        TensorDataset::new(self.features, targets)
    }
}

/// Reads a CSV file. See [`read_csv_bytes`].
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read, else as [`read_csv_bytes`].
///
/// # Panics
/// If the options are invalid (see [`CsvOptions`]).
///
/// ```
/// use sinew_data::{CsvOptions, DataError, read_csv};
/// let err = read_csv("/no/such/file.csv", &CsvOptions::new()).unwrap_err();
/// assert!(matches!(err, DataError::Io { .. }));
/// ```
#[track_caller]
pub fn read_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<CsvData> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        // gzip (`.csv.gz`), as the IDX reader reads `.gz`
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut text)
            .map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
        return read_csv_bytes(&text, options);
    }
    read_csv_bytes(&bytes, options)
}

/// Reads CSV text. See [`read_csv_bytes`].
///
/// # Errors
/// As [`read_csv_bytes`].
///
/// # Panics
/// If the options are invalid (see [`CsvOptions`]).
///
/// ```
/// use sinew_data::{CsvOptions, read_csv_str};
/// let data = read_csv_str("0.5;x;1\n", &CsvOptions::new().delimiter(b';').features([0]))?;
/// assert_eq!(data.features.dims(), &[1, 1]);
/// # Ok::<(), sinew_data::DataError>(())
/// ```
#[track_caller]
pub fn read_csv_str(text: &str, options: &CsvOptions) -> Result<CsvData> {
    read_csv_bytes(text.as_bytes(), options)
}

/// Reads CSV data from bytes.
///
/// Lines end in `\n` or `\r\n`; the first [`skip_rows`](CsvOptions::skip_rows) lines,
/// blank lines and [`comment`](CsvOptions::comment) lines are skipped (but counted in line
/// numbers). The header, when there is one, may have another width than the rows.
/// Fields may be wrapped in double quotes (`""` inside is a quote; a quoted field cannot
/// span lines), and spaces around a cell are ignored. Every row needs as many fields as
/// the first. Cells are parsed as Rust parses numbers (so `1e-3`, `NaN` and `inf` are
/// accepted); columns that are neither features nor the target are not parsed at all.
///
/// # Errors
/// A [`DataError::Csv`] naming the line and column (both from 1) of the first problem:
/// invalid UTF-8, a bad quote, a row with too few or too many fields, a column option
/// outside the row, an empty or non-numeric cell, a non-integer class label.
///
/// # Panics
/// If the options are invalid (see [`CsvOptions`]).
///
/// ```
/// use sinew_data::{CsvOptions, read_csv_bytes};
/// let err = read_csv_bytes(b"1,2,0\n3,4\n", &CsvOptions::new()).unwrap_err();
/// assert_eq!(err.to_string(), "CSV line 2, column 3: expected 3 fields, found 2");
/// ```
#[track_caller]
pub fn read_csv_bytes(bytes: &[u8], options: &CsvOptions) -> Result<CsvData> {
    options.check();
    let mut header = None;
    let mut layout: Option<Layout> = None;
    let mut xs = Values::new(options.feature_dtype);
    let mut ys = Values::new(options.target_dtype);
    let mut rows = 0usize;
    let mut header_line = 0;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate().skip(options.skip_rows) {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let first = raw.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_none() || first.copied() == options.comment {
            continue;
        }
        let fields =
            split_fields(raw, options.delimiter).map_err(|(col, msg)| DataError::csv(line, col, msg))?;
        if options.has_header && header.is_none() {
            header = Some(fields.iter().map(|f| f.trim().to_string()).collect::<Vec<String>>());
            header_line = line;
            continue;
        }
        let lay = match &layout {
            Some(l) => l,
            None => layout.insert(Layout::resolve(options, fields.len(), line)?),
        };
        if fields.len() != lay.ncols {
            let column = fields.len().min(lay.ncols) + 1;
            return Err(DataError::csv(
                line,
                column,
                format!("expected {} fields, found {}", lay.ncols, fields.len()),
            ));
        }
        for &c in &lay.features {
            xs.push(&fields[c]).map_err(|msg| DataError::csv(line, c + 1, msg))?;
        }
        if let Some(t) = lay.target {
            ys.push(&fields[t]).map_err(|msg| DataError::csv(line, t + 1, msg))?;
        }
        rows += 1;
    }
    let nfeat = match (&layout, &header) {
        (Some(l), _) => l.features.len(),
        // a header and no rows: the header says how many columns there would be
        (None, Some(h)) => Layout::resolve(options, h.len(), header_line)?.features.len(),
        (None, None) => options.features.as_ref().map_or(0, Vec::len),
    };
    let features = xs.into_tensor(&[rows, nfeat]);
    let targets = options.target.map(|_| ys.into_tensor(&[rows]));
    Ok(CsvData { header, features, targets })
}

/// The resolved columns: feature and target field indices, and the row width.
struct Layout {
    ncols: usize,
    features: Vec<usize>,
    target: Option<usize>,
}

impl Layout {
    fn resolve(options: &CsvOptions, ncols: usize, line: usize) -> Result<Layout> {
        let resolve = |c: isize, what: &str| -> Result<usize> {
            let idx = if c < 0 { ncols.checked_sub(c.unsigned_abs()) } else { Some(c as usize) };
            match idx {
                Some(i) if i < ncols => Ok(i),
                _ => Err(DataError::csv(
                    line,
                    if c < 0 { 1 } else { c as usize + 1 },
                    format!("{what} column {c} is out of range for rows of {ncols} fields"),
                )),
            }
        };
        let target = options.target.map(|t| resolve(t, "target")).transpose()?;
        let features = match &options.features {
            Some(cols) => cols.iter().map(|&c| resolve(c, "feature")).collect::<Result<Vec<_>>>()?,
            None => (0..ncols).filter(|&c| Some(c) != target).collect(),
        };
        Ok(Layout { ncols, features, target })
    }
}

/// Splits one line into fields, unquoting quoted ones. Errors carry the 1-based field.
fn split_fields(line: &[u8], delim: u8) -> std::result::Result<Vec<Cow<'_, str>>, (usize, String)> {
    // sized once from the delimiters (an upper bound: quoted ones count too), so a line of
    // `n` fields takes `n` slots, not up to `2n` from growing
    let mut fields = Vec::with_capacity(line.iter().filter(|&&b| b == delim).count() + 1);
    let mut pos = 0;
    loop {
        let column = fields.len() + 1;
        let start = pos;
        // skip leading blanks to see whether the field is quoted
        let mut p = pos;
        while p < line.len() && (line[p] == b' ' || line[p] == b'\t') && line[p] != delim {
            p += 1;
        }
        if p < line.len() && line[p] == b'"' {
            let mut text = Vec::new();
            p += 1;
            loop {
                match line.get(p) {
                    None => {
                        return Err((
                            column,
                            "unterminated quoted field (quoted line breaks are not supported)".into(),
                        ));
                    }
                    Some(b'"') if line.get(p + 1) == Some(&b'"') => {
                        text.push(b'"');
                        p += 2;
                    }
                    Some(b'"') => {
                        p += 1;
                        break;
                    }
                    Some(&b) => {
                        text.push(b);
                        p += 1;
                    }
                }
            }
            while p < line.len() && line[p] != delim {
                if !line[p].is_ascii_whitespace() {
                    return Err((column, "unexpected text after a closing quote".into()));
                }
                p += 1;
            }
            fields.push(Cow::Owned(utf8(text, column)?));
        } else {
            while p < line.len() && line[p] != delim {
                p += 1;
            }
            fields.push(Cow::Borrowed(utf8_ref(&line[start..p], column)?));
        }
        if p >= line.len() {
            return Ok(fields);
        }
        pos = p + 1; // past the delimiter
    }
}

fn utf8(bytes: Vec<u8>, column: usize) -> std::result::Result<String, (usize, String)> {
    String::from_utf8(bytes).map_err(|_| (column, "not valid UTF-8".to_string()))
}

fn utf8_ref(bytes: &[u8], column: usize) -> std::result::Result<&str, (usize, String)> {
    std::str::from_utf8(bytes).map_err(|_| (column, "not valid UTF-8".to_string()))
}

/// A growing column of parsed values of one dtype.
enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

/// At most this many characters of a bad cell are quoted in an error.
const SHOWN: usize = 40;

fn shown(cell: &str) -> String {
    if cell.chars().count() <= SHOWN {
        cell.to_string()
    } else {
        format!("{}...", cell.chars().take(SHOWN).collect::<String>())
    }
}

impl Values {
    fn new(dtype: DType) -> Values {
        match dtype {
            DType::F32 => Values::F32(Vec::new()),
            DType::F64 => Values::F64(Vec::new()),
            DType::I64 => Values::I64(Vec::new()),
        }
    }

    fn push(&mut self, cell: &str) -> std::result::Result<(), String> {
        let cell = cell.trim();
        if cell.is_empty() {
            return Err("empty cell".into());
        }
        let not_number = || format!("`{}` is not a number", shown(cell));
        match self {
            Values::F32(v) => v.push(cell.parse().map_err(|_| not_number())?),
            Values::F64(v) => v.push(cell.parse().map_err(|_| not_number())?),
            Values::I64(v) => {
                let value = match cell.parse::<i64>() {
                    Ok(i) => i,
                    Err(_) => {
                        let f: f64 = cell.parse().map_err(|_| not_number())?;
                        // integral and |f| < 2^63 (`i64::MAX as f64` is 2^63): exactly an i64
                        if !f.is_finite() || f.fract() != 0.0 || f.abs() >= i64::MAX as f64 {
                            return Err(format!("`{}` is not an integer class label", shown(cell)));
                        }
                        f as i64
                    }
                };
                v.push(value);
            }
        }
        Ok(())
    }

    fn into_tensor(self, shape: &[usize]) -> Tensor {
        match self {
            Values::F32(v) => Tensor::from_vec(v, shape),
            Values::F64(v) => Tensor::from_vec(v, shape),
            Values::I64(v) => Tensor::from_vec(v, shape),
        }
        .expect("one value per row and column")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str, opts: &CsvOptions) -> (usize, usize, String) {
        match read_csv_str(text, opts) {
            Err(DataError::Csv { line, column, msg }) => (line, column, msg),
            other => panic!("expected a CSV error, got {other:?}"),
        }
    }

    #[test]
    fn reads_header_columns_and_delimiters() {
        let text = "x;y;\"the label\"\r\n\r\n1.5; 2 ;3\r\n-4;5e1;\"6\"\r\n";
        let opts = CsvOptions::new().header(true).delimiter(b';').features([1, 0]);
        let d = read_csv_str(text, &opts).unwrap();
        assert_eq!(d.header.unwrap(), vec!["x", "y", "the label"]);
        assert_eq!(d.features.dims(), &[2, 2]);
        assert_eq!(d.features.to_vec::<f32>(), vec![2.0, 1.5, 50.0, -4.0]);
        assert_eq!(d.targets.unwrap().to_vec::<i64>(), vec![3, 6]);

        let reg = CsvOptions::new().target(Some(0)).target_dtype(DType::F64).feature_dtype(DType::F64);
        let d = read_csv_str("0.25,1,2\n0.5,3,4", &reg).unwrap();
        assert_eq!(d.targets.unwrap().to_vec::<f64>(), vec![0.25, 0.5]);
        assert_eq!(d.features.to_vec::<f64>(), vec![1.0, 2.0, 3.0, 4.0]);

        let none = read_csv_str("1,2\n3,4\n", &CsvOptions::new().target(None)).unwrap();
        assert!(none.targets.is_none());
        assert_eq!(none.features.dims(), &[2, 2]);

        let empty = read_csv_str("", &CsvOptions::new()).unwrap();
        assert_eq!((empty.features.dims(), empty.targets.unwrap().dims()), (&[0, 0][..], &[0][..]));
        let header_only = read_csv_str("a,b,c\n", &CsvOptions::new().header(true)).unwrap();
        assert_eq!(header_only.features.dims(), &[0, 2]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let o = CsvOptions::new();
        assert_eq!(err("1,2,3\n4,5\n", &o), (2, 3, "expected 3 fields, found 2".into()));
        assert_eq!(err("1,2,3\n\n4,5,6,7\n", &o), (3, 4, "expected 3 fields, found 4".into()));
        assert_eq!(err("1,2,3\n4,abc,6\n", &o), (2, 2, "`abc` is not a number".into()));
        assert_eq!(err("h1,h2\n1,\n", &o.clone().header(true)), (2, 2, "empty cell".into()));
        assert_eq!(err("1,2,0.5\n", &o), (1, 3, "`0.5` is not an integer class label".into()));
        assert_eq!(err("1,\"2,3\n", &o).0, 1);
        assert_eq!(err("1,\"2\"x,3\n", &o), (1, 2, "unexpected text after a closing quote".into()));
        assert_eq!(err("1,2,3\n", &o.clone().features([0, 5])).1, 6);
        assert_eq!(err("1,2,3\n", &o.clone().target(Some(-4))).1, 1);
        let (line, column, msg) = match read_csv_bytes(b"1,2,3\n4,\xff,6\n", &o) {
            Err(DataError::Csv { line, column, msg }) => (line, column, msg),
            other => panic!("{other:?}"),
        };
        assert_eq!((line, column, msg.as_str()), (2, 2, "not valid UTF-8"));
        // an unparsed column may hold anything
        assert!(read_csv_str("1,zzz,3\n", &o.clone().features([0])).is_ok());
    }

    #[test]
    fn hostile_input_never_panics() {
        let o = CsvOptions::new();
        let samples: [&[u8]; 8] =
            [b"\"", b",,,,\n,", b"\"\"\"", b"\r\r\r", b"\n\n\n,\n", b"1e999999,2,3", b"\x00,\x01", b"-,+,."];
        for s in samples {
            let _ = read_csv_bytes(s, &o);
        }
        // every prefix and every single-byte corruption of a valid file
        let good = b"a,b,c\n1.5,2,0\n\"3\",4e2,1\n".to_vec();
        for cut in 0..good.len() {
            let _ = read_csv_bytes(&good[..cut], &o.clone().header(true));
        }
        for i in 0..good.len() {
            for b in [b'"', b',', b'\n', b'x', 0xff, b' '] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = read_csv_bytes(&bad, &o.clone().header(true));
            }
        }
    }
}
