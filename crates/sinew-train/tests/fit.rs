//! `fit`, `evaluate` and `predict` on real and synthetic data; every callback; the
//! metrics against hand-computed values; and resuming a run from saved model and
//! optimizer state giving the same parameters as an uninterrupted run, bit for bit.

use std::sync::Arc;

use sinew_autograd::Var;
use sinew_nn::{Linear, Module, Relu, Sequential};
use sinew_optim::{Adam, ExponentialLr, Optimizer, Sgd};
use sinew_tensor::{DType, Generator, Tensor};
use sinew_train::metrics::{Accuracy, ConfusionMatrix, F1, Mae, Metric, Precision, R2, Recall, TopKAccuracy};
use sinew_train::{
    CsvLogger, EarlyStopping, Every, Loss, LrScheduleCallback, ModelCheckpoint, ReduceLrOnPlateauCallback,
    TerminateOnNaN, Trainer, Verbosity, evaluate, predict,
};

/// The digits, pixels scaled to [0, 1], flattened.
fn digits() -> (Tensor, Tensor) {
    // sinew-data's bundled copy (a dependency of this crate), so the test needs no file
    // outside the package
    let (px, labels) = sinew_data::datasets::digits().into_tensors();
    let n = labels.numel();
    // a fixed shuffle, so the validation split holds every class
    let mut order: Vec<i64> = (0..n as i64).collect();
    Generator::new(7).shuffle(&mut order);
    let idx = Tensor::from_vec(order, &[n]).unwrap();
    // dividing by 16 is exact, so these are the values the test always used
    (px.div_scalar(16.0).index_select(0, &idx), labels.index_select(0, &idx))
}

fn mlp(g: &mut Generator) -> Sequential {
    Sequential::new().add(Linear::new(64, 64, g)).add(Relu).add(Linear::new(64, 10, g))
}

#[test]
fn digits_mlp_fits_with_validation_and_metrics() {
    let (x, y) = digits();
    let mut g = Generator::new(1);
    let model = mlp(&mut g);
    let mut opt = Adam::new(model.parameters(), 3e-3);
    let history = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
        .epochs(15)
        .batch_size(64)
        .metric(Accuracy::default())
        .metric(F1::new(10))
        .validation_split(0.2)
        .verbosity(Verbosity::Quiet)
        .fit(&x, &y);
    assert_eq!(history.len(), 15);
    let val_acc = *history.get("val_accuracy").last().unwrap();
    assert!(val_acc >= 0.95, "validation accuracy {val_acc}");
    assert!(history.get("loss").first() > history.get("loss").last());
    assert!(history.last().unwrap().contains_key("val_f1"));
    // evaluate and predict agree with the history's last validation entry
    let n = x.dims()[0];
    let held = (n as f64 * 0.2).round() as usize;
    let (vx, vy) = (x.narrow(0, n - held, held), y.narrow(0, n - held, held));
    let mut metrics: Vec<Box<dyn Metric>> = vec![Box::new(Accuracy::default())];
    let logs = evaluate(&model, &vx, &vy, &Loss::CrossEntropy, &mut metrics, 100);
    assert!((logs["accuracy"] - val_acc).abs() < 1e-12);
    let pred = predict(&model, &vx, 33);
    assert_eq!(pred.dims(), &[held, 10]);
    let acc = pred.argmax(-1, false).eq(&vy).to_dtype(DType::F64).mean_all().item();
    assert!((acc - val_acc).abs() < 1e-12);
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    // a model that can only get worse: a huge learning rate on a trivial problem
    let mut g = Generator::new(2);
    let x = Tensor::randn_with(&[64, 4], DType::F32, &mut g);
    let y = x.sum(&[1], true);
    let model = Linear::new(4, 1, &mut g);
    let mut opt = Sgd::new(model.parameters(), 0.05);
    let history = Trainer::new(&model, &mut opt, Loss::Mse)
        .epochs(200)
        .batch_size(16)
        .callback(EarlyStopping::new("loss", 3).min_delta(1e-3).restore_best_weights(true))
        .verbosity(Verbosity::Quiet)
        .fit(&x, &y);
    assert!(history.len() < 200, "early stopping never fired");
    // the restored weights give the best loss seen
    let best = history.get("loss").into_iter().fold(f64::INFINITY, f64::min);
    let mut none: Vec<Box<dyn Metric>> = vec![];
    let now = evaluate(&model, &x, &y, &Loss::Mse, &mut none, 64)["loss"];
    assert!(now <= best * 1.5 + 1e-3, "restored loss {now} vs best epoch loss {best}");
}

#[test]
fn checkpoint_csv_schedule_and_plateau_callbacks() {
    let dir = std::env::temp_dir().join(format!("sinew-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut g = Generator::new(3);
    let x = Tensor::randn_with(&[40, 3], DType::F32, &mut g);
    let y = x.sum(&[1], true);
    let model = Linear::new(3, 1, &mut g);
    let mut opt = Sgd::new(model.parameters(), 0.1);
    let csv = dir.join("log.csv");
    let history = Trainer::new(&model, &mut opt, Loss::Mse)
        .epochs(4)
        .batch_size(10)
        .validation_data(&x, &y)
        .callback(ModelCheckpoint::new(dir.join("model-{epoch}.safetensors")))
        .callback(CsvLogger::new(&csv))
        .callback(LrScheduleCallback::new(ExponentialLr { gamma: 0.5 }, Every::Epoch))
        .callback(ReduceLrOnPlateauCallback::new("val_loss"))
        .verbosity(Verbosity::Quiet)
        .fit(&x, &y);
    for e in 1..=4 {
        let saved = sinew_serialize::load_safetensors(dir.join(format!("model-{e}.safetensors"))).unwrap();
        assert_eq!(saved.len(), 2);
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with("epoch,") && lines[0].contains("val_loss"));
    // the lr in force during epochs 1..4 halves each epoch
    assert_eq!(history.get("lr"), vec![0.1, 0.05, 0.025, 0.0125]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn terminate_on_nan_stops_training() {
    let mut g = Generator::new(4);
    let x = Tensor::randn_with(&[32, 2], DType::F32, &mut g);
    let y = x.sum(&[1], true);
    let model = Linear::new(2, 1, &mut g);
    let mut opt = Sgd::new(model.parameters(), 0.1);
    let nan_loss = Loss::Custom(Arc::new(|p: &Var, _t: &Tensor| p.sum_all().log().add_scalar(f64::NAN)));
    let history = Trainer::new(&model, &mut opt, nan_loss)
        .epochs(5)
        .batch_size(8)
        .callback(TerminateOnNaN::default())
        .verbosity(Verbosity::Quiet)
        .fit(&x, &y);
    assert_eq!(history.len(), 1, "training went on after a NaN loss");
}

#[test]
fn per_step_schedule_advances_every_batch() {
    let mut g = Generator::new(5);
    let x = Tensor::randn_with(&[30, 2], DType::F32, &mut g);
    let y = x.sum(&[1], true);
    let model = Linear::new(2, 1, &mut g);
    let mut opt = Sgd::new(model.parameters(), 1.0);
    Trainer::new(&model, &mut opt, Loss::Mse)
        .epochs(2)
        .batch_size(10)
        .callback(LrScheduleCallback::new(ExponentialLr { gamma: 0.5 }, Every::Step))
        .verbosity(Verbosity::Quiet)
        .fit(&x, &y);
    assert_eq!(opt.lr(), 0.5f64.powi(6)); // 3 batches × 2 epochs
}

#[test]
fn resuming_from_saved_state_matches_an_uninterrupted_run() {
    let (x, y) = digits();
    let (x, y) = (x.narrow(0, 0, 300), y.narrow(0, 0, 300));
    let run = |epochs: usize, from: Option<(Vec<(String, Tensor)>, sinew_optim::OptimizerState)>| {
        let model = mlp(&mut Generator::new(9));
        let mut opt = Adam::new(model.parameters(), 1e-3);
        let initial = if let Some((weights, state)) = &from {
            model.load_state_dict(weights, true).unwrap();
            opt.load_state(state).unwrap();
            3
        } else {
            0
        };
        Trainer::new(&model, &mut opt, Loss::CrossEntropy)
            .epochs(epochs)
            .initial_epoch(initial)
            .batch_size(50)
            .seed(11)
            .verbosity(Verbosity::Quiet)
            .fit(&x, &y);
        (model.state_dict(), opt.state())
    };
    let (straight, _) = run(6, None);
    let (half, state) = run(3, None);
    let (resumed, _) = run(6, Some((half, state)));
    for ((n, a), (_, b)) in straight.iter().zip(&resumed) {
        assert_eq!(a.to_vec::<f32>(), b.to_vec::<f32>(), "{n} differs after resuming");
    }
}

#[test]
fn classification_metrics_match_hand_computed_values() {
    // predictions: classes 0,1,1,2,2,0 ; targets: 0,1,2,2,1,0
    let logits = Tensor::from_vec(
        vec![5.0f32, 0., 0., 0., 5., 0., 0., 5., 0., 0., 0., 5., 0., 0., 5., 5., 0., 0.],
        &[6, 3],
    )
    .unwrap();
    let targets = Tensor::from_vec(vec![0i64, 1, 2, 2, 1, 0], &[6]).unwrap();
    let mut cm = ConfusionMatrix::new(3);
    cm.update(&logits, &targets);
    assert_eq!(cm.counts(), &[vec![2, 0, 0], vec![0, 1, 1], vec![0, 1, 1]]);
    let (mut p, mut r, mut f) = (Precision::new(3), Recall::new(3), F1::new(3));
    for m in [&mut p as &mut dyn Metric, &mut r, &mut f] {
        m.update(&logits, &targets);
    }
    assert_eq!(p.per_class(), vec![1.0, 0.5, 0.5]);
    assert_eq!(r.per_class(), vec![1.0, 0.5, 0.5]);
    assert!((f.value() - 2.0 / 3.0).abs() < 1e-12);
    let mut acc = Accuracy::default();
    acc.update(&logits, &targets);
    assert!((acc.value() - 4.0 / 6.0).abs() < 1e-12);
    let mut top2 = TopKAccuracy::new(2);
    top2.update(
        &Tensor::from_vec(vec![0.1f32, 0.5, 0.4], &[1, 3]).unwrap(),
        &Tensor::from_vec(vec![2i64], &[1]).unwrap(),
    );
    assert_eq!(top2.value(), 1.0);
    // binary: one logit column
    let mut bin = Accuracy::default();
    bin.update(
        &Tensor::from_vec(vec![2.0f32, -1.0, 0.5], &[3, 1]).unwrap(),
        &Tensor::from_vec(vec![1.0f32, 0.0, 0.0], &[3]).unwrap(),
    );
    assert!((bin.value() - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn regression_metrics_match_hand_computed_values() {
    let pred = Tensor::from_vec(vec![1.0f64, 2.0, 4.0], &[3, 1]).unwrap();
    let target = Tensor::from_vec(vec![1.0f64, 3.0, 5.0], &[3]).unwrap();
    let (mut mae, mut r2) = (Mae::default(), R2::default());
    mae.update(&pred, &target);
    r2.update(&pred, &target);
    assert!((mae.value() - 2.0 / 3.0).abs() < 1e-12);
    // SS_res = 0 + 1 + 1 = 2, mean 3, SS_tot = 4 + 0 + 4 = 8
    assert!((r2.value() - (1.0 - 2.0 / 8.0)).abs() < 1e-12);
}

#[test]
fn cross_entropy_with_float_labels_is_refused_as_cross_entropy_refuses_them() {
    let x = Tensor::zeros(&[4, 3]);
    let y = Tensor::from(vec![0.0f32, 1.0, 2.0, 1.9]); // 1.9 used to become class 1 silently
    let model = sinew_nn::Linear::new(3, 3, &mut sinew_tensor::Generator::new(0));
    let mut opt = sinew_optim::Sgd::new(sinew_nn::Module::parameters(&model), 0.1);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sinew_train::Trainer::new(&model, &mut opt, sinew_train::Loss::CrossEntropy)
            .verbosity(sinew_train::Verbosity::Quiet)
            .fit(&x, &y)
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("cross_entropy") && msg.contains("int64"), "{msg}");
}
