//! A multilayer perceptron on the handwritten digits (8×8, bundled with sinew): a
//! stratified 80/20 split, features standardised on the training split, Keras-style
//! `fit` with a validation set, then test accuracy and a confusion matrix.
//!
//! Run with `cargo run --release --example digits_mlp`.

use sinew::data::{StandardScaler, datasets, stratified_train_test_split};
use sinew::prelude::*;
use sinew::train::metrics::{Accuracy, ConfusionMatrix, F1, Metric};

fn main() {
    let digits = datasets::digits();
    let (train_idx, test_idx) = stratified_train_test_split(digits.targets(), 0.2, 0);
    let (train, test) = (digits.select(&train_idx), digits.select(&test_idx));
    let (scaler, x_train) = StandardScaler::fit_transform(train.features());
    let x_test = scaler.transform(test.features());
    println!("{} training and {} test images of {} pixels", train.len(), test.len(), x_train.dims()[1]);

    let mut g = Generator::new(0);
    let model = Sequential::new()
        .add(Linear::new(64, 128, &mut g))
        .add(Relu)
        .add(Dropout::new(0.2, 1))
        .add(Linear::new(128, 10, &mut g));
    let mut opt = Adam::new(model.parameters(), 1e-3);
    let history = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
        .epochs(30)
        .batch_size(32)
        .metric(Accuracy::default())
        .validation_data(&x_test, test.targets())
        .fit(&x_train, train.targets());

    let mut metrics: Vec<Box<dyn Metric>> = vec![Box::new(Accuracy::default()), Box::new(F1::new(10))];
    let logs = evaluate(&model, &x_test, test.targets(), &Loss::CrossEntropy, &mut metrics, 256);
    println!(
        "test loss {:.4}, accuracy {:.4}, macro F1 {:.4} (best validation accuracy during training {:.4})",
        logs["loss"],
        logs["accuracy"],
        logs["f1"],
        history.get("val_accuracy").into_iter().fold(0.0, f64::max)
    );
    let mut cm = ConfusionMatrix::new(10);
    cm.update(&predict(&model, &x_test, 256), test.targets());
    println!("confusion matrix (rows: true digit, columns: predicted):");
    for (digit, row) in cm.counts().iter().enumerate() {
        println!("  {digit}: {}", row.iter().map(|c| format!("{c:3}")).collect::<String>());
    }
}
