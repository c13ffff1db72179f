//! `fit` over a data pipeline: `fit_dataset` and `fit_loader` against the tensor `fit`,
//! bit for bit; worker threads changing nothing; validation from datasets and loaders;
//! and metrics and callbacks lent to the trainer and read afterwards.

use sinew_data::{DataLoader, Dataset, Sample, TensorDataset};
use sinew_nn::{Linear, Module, Relu, Sequential};
use sinew_optim::{Adam, Sgd};
use sinew_tensor::{DType, Generator, Tensor};
use sinew_train::metrics::{Accuracy, Metric};
use sinew_train::{EarlyStopping, History, Loss, Trainer, Validation, Verbosity, evaluate_batches};

fn data() -> (Tensor, Tensor) {
    let mut g = Generator::new(8);
    let x = Tensor::randn_with(&[100, 3], DType::F32, &mut g);
    let y = x.select(1, 1).gt_scalar(0.0).to_dtype(DType::I64);
    (x, y)
}

fn model() -> Sequential {
    let mut g = Generator::new(4);
    Sequential::new().add(Linear::new(3, 8, &mut g)).add(Relu).add(Linear::new(8, 2, &mut g))
}

fn weights(m: &Sequential) -> Vec<Vec<u32>> {
    m.state_dict().iter().map(|(_, t)| t.to_vec::<f32>().iter().map(|v| v.to_bits()).collect()).collect()
}

/// Trains a fresh model with `$go`, an expression of the trainer `$t` (a macro, so it may
/// borrow local data) and returns its weights and history.
macro_rules! train {
    (|$t:ident| $go:expr) => {{
        let m = model();
        let mut opt = Adam::new(m.parameters(), 0.01);
        let $t = Trainer::new(&m, &mut opt, Loss::CrossEntropy)
            .epochs(4)
            .batch_size(16)
            .seed(5)
            .metric(Accuracy::default())
            .verbosity(Verbosity::Quiet);
        let h: History = $go;
        (weights(&m), h)
    }};
}

#[test]
fn fit_dataset_is_fit_over_tensors() {
    let (x, y) = data();
    let ds = TensorDataset::new(x.clone(), y.clone());
    let a = train!(|t| t.fit(&x, &y));
    let b = train!(|t| t.fit_dataset(&ds));
    assert_eq!(a, b);
    // with a held-out split too (the validation numbers agree to rounding: tensors are
    // validated on views, datasets on gathered copies)
    let (wa, ha) = train!(|t| t.validation_split(0.3).fit(&x, &y));
    let (wb, hb) = train!(|t| t.validation_split(0.3).fit_dataset(&ds));
    assert_eq!(wa, wb);
    assert_eq!(ha.get("loss"), hb.get("loss"));
    for (va, vb) in ha.get("val_loss").iter().zip(hb.get("val_loss")) {
        assert!((va - vb).abs() < 1e-12);
    }
    assert_eq!(ha.get("val_accuracy"), hb.get("val_accuracy"));
    // and the split really held out 30 rows: training on all 100 differs
    assert_ne!(wa, a.0);
}

#[test]
fn an_unshuffled_loader_is_fit_without_shuffling() {
    let (x, y) = data();
    let loader = DataLoader::new(TensorDataset::new(x.clone(), y.clone()), 16);
    let a = train!(|t| t.shuffle(false).fit(&x, &y));
    let b = train!(|t| t.fit_loader(&loader));
    assert_eq!(a, b);
    assert_eq!(loader.epoch(), 4, "the loader's epoch counter follows the trainer");
    // while a shuffling loader sees other batches
    let shuffled = DataLoader::new(TensorDataset::new(x, y), 16).shuffle(true).seed(5);
    let c = train!(|t| t.fit_loader(&shuffled));
    assert_ne!(a.0, c.0);
}

#[test]
fn loader_workers_change_nothing() {
    let (x, y) = data();
    let ds = TensorDataset::new(x, y);
    let runs: Vec<_> = [0, 1, 3]
        .iter()
        .map(|&w| {
            let loader = DataLoader::new(ds.clone(), 12).shuffle(true).seed(9).drop_last(true).num_workers(w);
            train!(|t| t.fit_loader(&loader))
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
}

#[test]
fn validation_from_a_dataset_or_a_loader_matches_tensors() {
    let (x, y) = data();
    let (vx, vy) = (x.narrow(0, 80, 20), y.narrow(0, 80, 20));
    let (tx, ty) = (x.narrow(0, 0, 80), y.narrow(0, 0, 80));
    let val_ds = TensorDataset::new(vx.clone(), vy.clone());
    let val_loader = DataLoader::new(val_ds.clone(), 16);
    let (_, a) = train!(|t| t.validation_data(&vx, &vy).fit(&tx, &ty));
    let (_, b) = train!(|t| t.validation_dataset(&val_ds).fit(&tx, &ty));
    let (_, c) = train!(|t| t.validation_loader(&val_loader).fit(&tx, &ty));
    let (_, d) = train!(|t| t.validation(Validation::Data(vx.clone(), vy.clone())).fit(&tx, &ty));
    assert_eq!(a, d);
    for other in [&b, &c] {
        assert_eq!(a.get("val_accuracy"), other.get("val_accuracy"));
        for (p, q) in a.get("val_loss").iter().zip(other.get("val_loss")) {
            assert!((p - q).abs() < 1e-12, "{p} vs {q}");
        }
    }
    assert_eq!(a.get("val_loss").len(), 4);
}

#[test]
#[should_panic(expected = "validation_split cannot split a DataLoader")]
fn validation_split_with_a_loader_is_refused() {
    let (x, y) = data();
    let loader = DataLoader::new(TensorDataset::new(x, y), 16);
    train!(|t| t.validation_split(0.2).fit_loader(&loader));
}

/// A dataset without a fast `get_batch`: the default stacks samples one by one.
struct Rows(Tensor, Tensor);

impl Dataset for Rows {
    fn len(&self) -> usize {
        self.0.dims()[0]
    }
    fn get(&self, i: usize) -> Sample {
        (self.0.select(0, i), self.1.select(0, i))
    }
}

#[test]
fn a_custom_dataset_trains_like_tensors() {
    let (x, y) = data();
    let a = train!(|t| t.fit(&x, &y));
    let b = train!(|t| t.fit_dataset(&Rows(x.clone(), y.clone())));
    assert_eq!(a, b);
    let boxed: Box<dyn Dataset> = Box::new(Rows(x, y));
    let c = train!(|t| t.fit_dataset(&boxed));
    assert_eq!(a, c);
}

#[test]
fn lent_metrics_and_callbacks_are_readable_after_fit() {
    let mut g = Generator::new(2);
    let x = Tensor::randn_with(&[64, 4], DType::F32, &mut g);
    let y = x.sum(&[1], true);
    let m = Linear::new(4, 1, &mut g);
    let mut opt = Sgd::new(m.parameters(), 0.05);
    let mut stop = EarlyStopping::new("loss", 2).min_delta(1e-3);
    let mut mae = sinew_train::metrics::Mae::default();
    let history = Trainer::new(&m, &mut opt, Loss::Mse)
        .epochs(400)
        .batch_size(16)
        .metric(&mut mae)
        .callback(&mut stop)
        .verbosity(Verbosity::Quiet)
        .fit(&x, &y);
    let stopped = stop.stopped_epoch.expect("early stopping should fire");
    assert_eq!(history.len(), stopped + 1);
    assert_eq!(stop.wait(), 2);
    assert_eq!(Some(mae.value()), history.get("mae").last().copied());
    assert_eq!(mae.name(), "mae");
}

#[test]
fn evaluate_batches_weights_batches_by_size() {
    // a constant model: the loss of each sample is known
    let m = Linear::new(1, 1, &mut Generator::new(0));
    m.weight.set_value(Tensor::zeros(&[1, 1]));
    m.bias.as_ref().unwrap().set_value(Tensor::zeros(&[1]));
    let x = Tensor::zeros(&[5, 1]);
    let y = Tensor::from_vec(vec![1.0f32, 1.0, 1.0, 1.0, 3.0], &[5, 1]).unwrap();
    // batches of 4 and 1: per-sample squared errors 1,1,1,1,9 -> mean 13/5
    let loader = DataLoader::new(TensorDataset::new(x, y), 4);
    let mut none: Vec<Box<dyn Metric>> = vec![];
    let logs = evaluate_batches(&m, &loader, &Loss::Mse, &mut none);
    assert!((logs["loss"] - 13.0 / 5.0).abs() < 1e-12, "{logs:?}");
}
