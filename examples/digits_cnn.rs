//! A small convolutional network on the handwritten digits (8×8, bundled with sinew),
//! trained with Keras-style `fit` (dropout, cosine learning-rate decay) on a stratified
//! 80/20 split; prints the test accuracy (at least 97%).
//!
//! Run with `cargo run --release --example digits_cnn`.

use sinew::data::{datasets, stratified_train_test_split};
use sinew::optim::CosineAnnealingLr;
use sinew::prelude::*;
use sinew::train::metrics::Accuracy;
use sinew::train::{Every, LrScheduleCallback};

fn main() {
    let digits = datasets::digits();
    let (train_idx, test_idx) = stratified_train_test_split(digits.targets(), 0.2, 0);
    // pixels 0..16 -> [0, 1], as (N, 1, 8, 8) images
    let images = |idx: &[usize]| {
        let d = digits.select(idx);
        (d.features().div_scalar(16.0).reshape(&[idx.len(), 1, 8, 8]), d.targets().clone())
    };
    let (x_train, y_train) = images(&train_idx);
    let (x_test, y_test) = images(&test_idx);

    let mut g = Generator::new(3);
    let same = Conv2dOptions::default().padding(1);
    let model = Sequential::new()
        .add(Conv2d::new(1, 32, 3, same, &mut g))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(32, 64, 3, same, &mut g))
        .add(Relu)
        .add(Flatten::new())
        .add(Dropout::new(0.3, 4))
        .add(Linear::new(64 * 4 * 4, 10, &mut g));
    println!("{} parameters", model.num_parameters());
    let mut opt = Adam::new(model.parameters(), 2e-3);
    let start = std::time::Instant::now();
    let epochs = 30;
    Trainer::new(&model, &mut opt, Loss::CrossEntropy)
        .epochs(epochs)
        .callback(LrScheduleCallback::new(CosineAnnealingLr { t_max: epochs, eta_min: 1e-5 }, Every::Epoch))
        .batch_size(64)
        .seed(3)
        .metric(Accuracy::default())
        .validation_data(&x_test, &y_test)
        .fit(&x_train, &y_train);
    let mut metrics: Vec<Box<dyn sinew::train::metrics::Metric>> = vec![Box::new(Accuracy::default())];
    let logs = evaluate(&model, &x_test, &y_test, &Loss::CrossEntropy, &mut metrics, 256);
    println!(
        "test accuracy {:.4} on {} images after {:.1} s of training",
        logs["accuracy"],
        y_test.numel(),
        start.elapsed().as_secs_f64()
    );
    assert!(logs["accuracy"] >= 0.97, "below the 97% this example promises");
}
