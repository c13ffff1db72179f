//! No input makes a reader panic or hang. Thousands of seeded mutations of valid IDX
//! files (plain and gzip-compressed) and CSV files — truncations, 1-4 byte flips, huge
//! dimension counts and sizes written into the header, gzip streams whose inflated header
//! is hostile, long runs of digits, quotes and delimiters — each give `Ok` or a clean
//! `Err`. Every case runs under `catch_unwind` on a worker thread, and a case that takes
//! longer than [`PER_CASE`] fails the test instead of hanging it.

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use sinew_data::{CsvOptions, DataError, read_csv_bytes, read_idx_bytes};
use sinew_tensor::DType;

/// The longest one case may take (the inputs are at most a few KB: a case normally takes
/// microseconds, so this only trips on a hang or a pathological slowdown).
const PER_CASE: Duration = Duration::from_secs(5);

/// A deterministic xorshift, so every failure is reproducible from the case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// How the cases of one run ended.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    err: usize,
}

/// Runs `load` over every case on a worker thread, each under `catch_unwind`. Fails the
/// test, naming the case, if one panics or takes longer than [`PER_CASE`].
fn run_cases<T: 'static>(
    what: &str,
    cases: Vec<(String, Vec<u8>)>,
    load: fn(&[u8]) -> Result<T, DataError>,
) -> Tally {
    run_cases_within(PER_CASE, what, cases, load)
}

fn run_cases_within<T: 'static>(
    per_case: Duration,
    what: &str,
    cases: Vec<(String, Vec<u8>)>,
    load: fn(&[u8]) -> Result<T, DataError>,
) -> Tally {
    let names: Vec<String> = cases.iter().map(|(n, _)| n.clone()).collect();
    let (tx, rx) = mpsc::channel::<Result<bool, String>>();
    let worker = std::thread::spawn(move || {
        for (name, bytes) in cases {
            let r = match catch_unwind(AssertUnwindSafe(|| load(&bytes))) {
                Ok(Ok(_)) => Ok(true),
                Ok(Err(e)) => {
                    assert!(!e.to_string().is_empty(), "{name}: an error without a message");
                    Ok(false)
                }
                Err(_) => Err(format!("{name}: the reader panicked on {:?}", preview(&bytes))),
            };
            if tx.send(r).is_err() {
                return;
            }
        }
    });
    let mut tally = Tally::default();
    for name in &names {
        let start = Instant::now();
        match rx.recv_timeout(per_case) {
            Ok(Ok(true)) => tally.ok += 1,
            Ok(Ok(false)) => tally.err += 1,
            Ok(Err(msg)) => panic!("{what}: {msg}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{what}: {name} took longer than {per_case:?} (a hang?)")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{what}: the worker died at {name}")
            }
        }
        assert!(start.elapsed() < per_case, "{what}: {name} took {:?}", start.elapsed());
    }
    worker.join().unwrap();
    println!("{what}: {} cases, {tally:?}", names.len());
    tally
}

fn preview(bytes: &[u8]) -> String {
    let head: Vec<String> = bytes.iter().take(48).map(|b| format!("{b:02x}")).collect();
    format!("{} bytes [{}{}]", bytes.len(), head.join(" "), if bytes.len() > 48 { " ..." } else { "" })
}

/// Truncates, or flips 1-4 bytes, at random.
fn mutate(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    if rng.below(4) == 0 {
        return base[..rng.below(base.len())].to_vec();
    }
    let mut out = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let i = rng.below(out.len());
        out[i] ^= 1 + rng.below(255) as u8;
    }
    out
}

/// Valid IDX files: an MNIST-like `u8` image stack and label vector, and one file of
/// each wider element type.
fn idx_files() -> Vec<Vec<u8>> {
    let header = |code: u8, dims: &[u32]| {
        let mut f = vec![0, 0, code, dims.len() as u8];
        for d in dims {
            f.extend(d.to_be_bytes());
        }
        f
    };
    let mut images = header(0x08, &[6, 8, 8]);
    images.extend((0..6 * 64).map(|i| (i * 37 % 256) as u8));
    let mut labels = header(0x08, &[6]);
    labels.extend([5, 0, 4, 1, 9, 2]);
    let mut i8s = header(0x09, &[2, 5]);
    i8s.extend((0..10).map(|i| (i as i8 - 5) as u8));
    let mut i16s = header(0x0B, &[3, 4]);
    i16s.extend((0..12i16).flat_map(|i| (i * 1000 - 6000).to_be_bytes()));
    let mut i32s = header(0x0C, &[7]);
    i32s.extend((0..7i32).flat_map(|i| (i * 70_000 - 200_000).to_be_bytes()));
    let mut f32s = header(0x0D, &[2, 2, 2]);
    f32s.extend((0..8).flat_map(|i| (i as f32 * 0.25 - 1.0).to_be_bytes()));
    let mut f64s = header(0x0E, &[5]);
    f64s.extend([1e300, -0.5, f64::INFINITY, f64::NAN, 3.0].iter().flat_map(|v| v.to_be_bytes()));
    vec![images, labels, i8s, i16s, i32s, f32s, f64s]
}

/// Writes a hostile header into a valid file: a dimension count or dimension sizes that
/// claim far more data than there is (or overflow the byte count), keeping the data.
fn hostile_header(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = base.to_vec();
    let ndim = out[3] as usize;
    match rng.below(5) {
        // a huge dimension count: the "sizes" are then read from the data
        0 => out[3] = *rng.pick(&[0xff, 0x80, 0x10, ndim as u8 + 1]),
        // one dimension huge
        1 => {
            let d = 4 + 4 * rng.below(ndim);
            let random = rng.next() as u32;
            let v: u32 = *rng.pick(&[u32::MAX, 1 << 31, 1 << 24, 60_000, random]);
            out[d..d + 4].copy_from_slice(&v.to_be_bytes());
        }
        // every dimension huge (the product overflows for 3 dimensions)
        2 => {
            for d in 0..ndim {
                out[4 + 4 * d..8 + 4 * d].copy_from_slice(&u32::MAX.to_be_bytes());
            }
        }
        // a zero dimension (so no data) beside huge ones
        3 if ndim >= 2 => {
            out.truncate(4 + 4 * ndim);
            for d in 0..ndim {
                let v = if d == 0 { 0 } else { u32::MAX };
                out[4 + 4 * d..8 + 4 * d].copy_from_slice(&v.to_be_bytes());
            }
        }
        // a header with many huge dimensions and no data at all
        _ => {
            out.truncate(4);
            let n = 1 + rng.below(255);
            out[3] = n as u8;
            for _ in 0..n {
                out.extend((rng.next() as u32 | 0x8000_0000).to_be_bytes());
            }
        }
    }
    out
}

fn idx_any(bytes: &[u8]) -> Result<sinew_tensor::Tensor, DataError> {
    read_idx_bytes(bytes, None)
}

fn idx_f32(bytes: &[u8]) -> Result<sinew_tensor::Tensor, DataError> {
    read_idx_bytes(bytes, Some(DType::F32))
}

#[test]
fn idx_mutations_are_clean_errors() {
    let files = idx_files();
    for f in &files {
        read_idx_bytes(f, None).expect("the base files are valid");
        read_idx_bytes(&gzip(f), None).expect("and so are their gzip forms");
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut plain = Vec::new();
    for case in 0..2000 {
        let base = rng.pick(&files);
        let bytes = if case % 3 == 0 { hostile_header(base, &mut rng) } else { mutate(base, &mut rng) };
        plain.push((format!("plain case {case}"), bytes));
    }
    let t = run_cases("plain IDX", plain, idx_any);
    assert!(t.err > 1000 && t.ok > 0, "{t:?}");

    let mut gz = Vec::new();
    for case in 0..1500 {
        let base = rng.pick(&files);
        let bytes = match case % 3 {
            // a valid gzip stream of a hostile or mutated file: the header the reader
            // inflates lies about the size
            0 => gzip(&hostile_header(base, &mut rng)),
            1 => gzip(&mutate(base, &mut rng)),
            // the compressed bytes themselves damaged or cut short (the gzip header's
            // flags, the deflate blocks, the CRC and size trailer)
            _ => mutate(&gzip(base), &mut rng),
        };
        gz.push((format!("gzip case {case}"), bytes));
    }
    // concatenated members (MultiGzDecoder reads them all), one cut short
    let f = &files[0];
    let (a, b) = (gzip(&f[..100]), gzip(&f[100..]));
    let whole = [a.clone(), b.clone()].concat();
    assert_eq!(
        read_idx_bytes(&whole, None).unwrap().to_vec::<i64>(),
        read_idx_bytes(f, None).unwrap().to_vec::<i64>()
    );
    for cut in 0..whole.len() {
        gz.push((format!("two gzip members cut to {cut}"), whole[..cut].to_vec()));
    }
    // many empty members after the data
    let empty = gzip(&[]);
    gz.push(("a thousand empty gzip members".into(), [gzip(f), empty.repeat(1000)].concat()));
    let t = run_cases("gzip IDX", gz, idx_f32);
    assert!(t.err > 1000 && t.ok > 0, "{t:?}");
}

/// Valid CSV files for the default options (features then an integer label), with a
/// header, quotes, CRLF line ends, blank lines and exponents.
fn csv_files() -> Vec<Vec<u8>> {
    let mut iris = String::from("sepal length,sepal width,petal length,petal width,class\n");
    for i in 0..20 {
        iris.push_str(&format!("{}.{},{}.5,1.{}e0,0.{},{}\n", 4 + i % 3, i % 10, 3, i % 7, i % 5, i % 3));
    }
    vec![
        iris.into_bytes(),
        b"a;\"b\";\"c \"\"quoted\"\"\"\r\n\r\n1.5; 2 ;3\r\n-4;5e1;\"6\"\r\n  \r\n7;inf;8\r\n".to_vec(),
        b"x,y\n1,0\n2,1\n\n3,0\n-1e-3,1\nNaN,2\n".to_vec(),
    ]
}

/// Things worth inserting into CSV text: long numbers, many delimiters, quotes, line ends,
/// invalid UTF-8.
fn csv_insert(rng: &mut Rng) -> Vec<u8> {
    match rng.below(8) {
        0 => vec![b'9'; 1 + rng.below(400)],
        1 => format!("1e{}", rng.next()).into_bytes(),
        2 => vec![b','; 1 + rng.below(300)],
        3 => vec![b'"'; 1 + rng.below(5)],
        4 => vec![b'\n'; 1 + rng.below(50)],
        5 => "18446744073709551616".into(),
        6 => vec![0xff, 0xfe, 0xc3],
        _ => "-9223372036854775808.0".into(),
    }
}

fn csv_mutate(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    match rng.below(3) {
        0 => mutate(base, rng),
        1 => {
            let mut out = base.to_vec();
            let at = rng.below(out.len() + 1);
            let ins = csv_insert(rng);
            out.splice(at..at, ins);
            out
        }
        _ => {
            // a byte from CSV's own alphabet, so the structure changes, not just a value
            let mut out = base.to_vec();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(out.len());
                out[i] = *rng.pick(b",;\"\r\n .-e0x\t");
            }
            out
        }
    }
}

fn csv_default(bytes: &[u8]) -> Result<sinew_data::CsvData, DataError> {
    read_csv_bytes(bytes, &CsvOptions::new().header(true))
}

fn csv_regression(bytes: &[u8]) -> Result<sinew_data::CsvData, DataError> {
    let opts = CsvOptions::new()
        .features([0, -2])
        .target(Some(1))
        .target_dtype(DType::F64)
        .feature_dtype(DType::F64)
        .delimiter(b';')
        .header(true);
    read_csv_bytes(bytes, &opts)
}

#[test]
fn csv_mutations_are_clean_errors() {
    let files = csv_files();
    for f in [&files[0], &files[2]] {
        csv_default(f).expect("the base files are valid");
    }
    csv_regression(&files[1]).expect("the base files are valid");
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let cases: Vec<(String, Vec<u8>)> = (0..3000)
        .map(|case| (format!("CSV case {case}"), csv_mutate(rng.pick(&files).as_slice(), &mut rng)))
        .collect();
    let t = run_cases("CSV, default options", cases.clone(), csv_default);
    assert!(t.err > 1000 && t.ok > 100, "{t:?}");
    let t = run_cases("CSV, regression options", cases, csv_regression);
    assert!(t.err > 1000, "{t:?}");
    // and a few large shapes of hostile text
    // and a few large shapes of hostile text, below a valid header
    let big: Vec<(&str, Vec<u8>)> = vec![
        ("200k delimiters on one line", vec![b','; 200_000]),
        ("200k blank lines", vec![b'\n'; 200_000]),
        ("one 200k-digit number", [vec![b'1'; 200_000], b",0\n".to_vec()].concat()),
        ("one 200k-byte quoted field", [b"\"".to_vec(), vec![b'x'; 200_000]].concat()),
        ("100k quotes", vec![b'"'; 100_000]),
        ("50k rows of 1e309", b"1e309,1\n".repeat(50_000)),
    ];
    let big = big.into_iter().map(|(n, b)| (n.to_string(), [b"a,b\n".to_vec(), b].concat())).collect();
    let t = run_cases("CSV, large hostile text", big, csv_default);
    assert_eq!((t.ok, t.err), (3, 3), "{t:?}"); // the long number and 1e309 read as inf
}

/// The harness itself: a panicking reader fails the test, and so does a slow one.
#[test]
#[should_panic(expected = "the reader panicked")]
fn a_panic_fails_the_run() {
    run_cases("harness", vec![("case 0".into(), vec![1, 2, 3])], |b: &[u8]| -> Result<(), DataError> {
        assert!(b.is_empty(), "deliberate");
        Ok(())
    });
}

#[test]
#[should_panic(expected = "took longer than")]
fn a_hang_fails_the_run() {
    let slow = |_: &[u8]| -> Result<(), DataError> {
        std::thread::sleep(Duration::from_secs(2));
        Ok(())
    };
    run_cases_within(Duration::from_millis(50), "harness", vec![("case 0".into(), vec![])], slow);
}
