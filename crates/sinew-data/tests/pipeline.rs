//! End-to-end use of the public API on the bundled data and on files written to disk.

use std::io::Write;

use sinew_data::{
    CsvOptions, DataError, DataLoader, Dataset, MinMaxScaler, Sample, StandardScaler, Subset, datasets,
    random_split, read_csv, read_idx, stratified_train_val_test_split,
};
use sinew_tensor::DType;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sinew-data-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn same(a: &[Sample], b: &[Sample]) {
    assert_eq!(a.len(), b.len());
    for ((ax, ay), (bx, by)) in a.iter().zip(b) {
        assert_eq!(ax.dims(), bx.dims());
        assert_eq!(ax.to_vec::<f64>(), bx.to_vec::<f64>());
        assert_eq!(ay.to_vec::<i64>(), by.to_vec::<i64>());
    }
}

#[test]
fn digits_split_scale_and_load() {
    let digits = datasets::digits();
    let labels = digits.targets().to_vec::<i64>();
    let (train, val, test) = stratified_train_val_test_split(digits.targets(), 0.15, 0.15, 3);
    assert_eq!(train.len() + val.len() + test.len(), 1797);
    // every class keeps its proportion in every part, within one sample
    for (part, f) in [(&train, 0.7), (&val, 0.15), (&test, 0.15)] {
        for c in 0..10 {
            let total = labels.iter().filter(|&&l| l == c).count() as f64;
            let got = part.iter().filter(|&&i| labels[i] == c).count() as f64;
            assert!((got - f * total).abs() <= 1.0, "class {c}: {got} of {total} at {f}");
        }
    }

    // scalers learn from the training rows only
    let train_ds = digits.select(&train);
    let scaler = StandardScaler::fit(train_ds.features());
    let train_mean = train_ds.features().to_dtype(DType::F64).mean(&[0], false);
    let all_mean = digits.features().to_dtype(DType::F64).mean(&[0], false);
    assert!(scaler.mean().allclose(&train_mean, 1e-12, 1e-12));
    assert!(!scaler.mean().allclose(&all_mean, 1e-6, 1e-6));
    let x = scaler.transform(train_ds.features());
    assert!(scaler.inverse_transform(&x).allclose(train_ds.features(), 1e-5, 1e-4));
    let mm = MinMaxScaler::fit(train_ds.features());
    assert!(mm.inverse_transform(&mm.transform(train_ds.features())).allclose(
        train_ds.features(),
        1e-5,
        1e-4
    ));
    let train_ds = train_ds.map_features(|x| scaler.transform(x));

    // background threads change nothing: same batches, same order, every epoch
    let inline = DataLoader::new(train_ds.clone(), 64).shuffle(true).seed(9);
    let threaded = DataLoader::new(train_ds.clone(), 64).shuffle(true).seed(9).num_workers(3).prefetch(2);
    for _ in 0..3 {
        let a: Vec<Sample> = inline.iter().collect();
        let b: Vec<Sample> = threaded.iter().collect();
        same(&a, &b);
        assert_eq!(a.iter().map(|(_, y)| y.dims()[0]).sum::<usize>(), train.len());
    }
    assert_eq!((inline.epoch(), threaded.epoch()), (3, 3));

    // drop_last: only full batches
    let full = DataLoader::new(train_ds, 64).drop_last(true).num_workers(2);
    assert_eq!(full.len(), train.len() / 64);
    assert!(full.iter().all(|(x, y)| x.dims() == [64, 64] && y.dims() == [64]));
}

#[test]
fn subsets_load_like_materialised_splits() {
    let iris = datasets::iris();
    let parts = random_split(iris.clone(), &[0.6, 0.4], 1);
    assert_eq!((parts[0].len(), parts[1].len()), (90, 60));
    let sub: &Subset<_> = &parts[1];
    let a: Vec<Sample> = DataLoader::new(sub.clone(), 7).iter().collect();
    let b: Vec<Sample> = DataLoader::new(iris.select(sub.indices()), 7).iter().collect();
    same(&a, &b);
    // a subset with a custom collate goes through `get`, and agrees too
    let c: Vec<Sample> = DataLoader::new(sub.clone(), 7)
        .num_workers(2)
        .collate_fn(sinew_data::default_collate)
        .iter()
        .collect();
    same(&a, &c);
}

#[test]
fn files_on_disk() {
    let dir = temp_dir("files");
    let csv = dir.join("table.csv");
    std::fs::write(&csv, "f1,f2,y\n1,2,0\n3,4,1\n5,six,0\n").unwrap();
    match read_csv(&csv, &CsvOptions::new().header(true)) {
        Err(DataError::Csv { line: 4, column: 2, msg }) => assert_eq!(msg, "`six` is not a number"),
        other => panic!("{other:?}"),
    }
    std::fs::write(&csv, "f1,f2,y\n1,2,0\n3,4,1\n").unwrap();
    let ds = read_csv(&csv, &CsvOptions::new().header(true)).unwrap().into_dataset();
    assert_eq!(ds.features().to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);

    let idx = dir.join("labels-idx1-ubyte.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&[0, 0, 8, 1, 0, 0, 0, 4, 9, 8, 7, 6]).unwrap();
    std::fs::write(&idx, gz.finish().unwrap()).unwrap();
    assert_eq!(read_idx(&idx, None).unwrap().to_vec::<i64>(), vec![9, 8, 7, 6]);
    std::fs::remove_dir_all(&dir).unwrap();
}
