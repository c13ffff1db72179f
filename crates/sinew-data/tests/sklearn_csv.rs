//! scikit-learn's bundled CSVs, whose first line (`178,13,class_0,class_1,class_2`) is a
//! header of another width than the rows, read with `header(true)`, plain and gzipped.

use std::io::Write;

use sinew_data::{CsvOptions, read_csv, read_csv_bytes};

const WINE: &[u8] = include_bytes!("data/wine_data.csv");

fn check_wine(data: &sinew_data::CsvData) {
    assert_eq!(data.header.as_deref().unwrap(), ["178", "13", "class_0", "class_1", "class_2"]);
    assert_eq!(data.features.dims(), &[178, 13]);
    let y = data.targets.as_ref().unwrap().to_vec::<i64>();
    let counts: Vec<usize> = (0..3).map(|c| y.iter().filter(|&&v| v == c).count()).collect();
    assert_eq!(counts, [59, 71, 48]); // the classes of UCI's Wine
    assert!((data.features.to_vec::<f32>()[0] - 14.23).abs() < 1e-5);
}

#[test]
fn a_header_of_another_width_does_not_fix_the_rows() {
    check_wine(&read_csv_bytes(WINE, &CsvOptions::new().header(true)).unwrap());
}

#[test]
fn gzipped_csv_files_are_read_by_path() {
    let dir = std::env::temp_dir().join(format!("sinew-data-csvgz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wine_data.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(WINE).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    check_wine(&read_csv(&path, &CsvOptions::new().header(true)).unwrap());
    // a damaged stream is an I/O error naming the file
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&path, bytes).unwrap();
    let err = read_csv(&path, &CsvOptions::new().header(true)).unwrap_err();
    assert!(err.to_string().contains("wine_data.csv.gz"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn skip_rows_and_comments_are_counted_in_line_numbers() {
    let text = b"generated 2026-12-02\n# columns: x, y, label\nx,y,label\n1,2,0\n# a note\n3,oops,1\n";
    let opts = CsvOptions::new().skip_rows(1).comment(Some(b'#')).header(true);
    let err = read_csv_bytes(text, &opts).unwrap_err();
    assert_eq!(err.to_string().split(':').next().unwrap(), "CSV line 6, column 2");
    let ok = read_csv_bytes(&text[..text.len() - 9], &opts).unwrap();
    assert_eq!(ok.header.unwrap(), ["x", "y", "label"]);
    assert_eq!(ok.features.dims(), &[1, 2]);
}
