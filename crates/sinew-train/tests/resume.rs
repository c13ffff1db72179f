//! Exact resume: a run interrupted after k epochs (ModelCheckpoint every epoch) and
//! continued by a fresh Trainer with `resume_from` ends with the same parameters and the
//! same History, bit for bit, as an uninterrupted run, with an LR schedule, a plateau
//! callback and early stopping carrying state; over tensors and over a shuffling
//! DataLoader with worker threads. Plus the ways a resume can be refused.

use std::path::{Path, PathBuf};

use sinew_data::{DataLoader, TensorDataset};
use sinew_nn::{Dropout, Linear, Module, Relu, Sequential};
use sinew_optim::{Adam, ExponentialLr, Optimizer, PlateauMode};
use sinew_serialize::{Checkpoint, StateDict};
use sinew_tensor::{DType, Generator, Tensor};
use sinew_train::metrics::Accuracy;
use sinew_train::{
    CsvLogger, EarlyStopping, Every, History, Loss, LrScheduleCallback, ModelCheckpoint,
    ReduceLrOnPlateauCallback, ResumeError, TerminateOnNaN, Trainer, Verbosity,
};

const EPOCHS: usize = 8;
// after epoch 5 the plateau callback holds a best value that decides epoch 6 (checked
// below: the test fails if that state is not restored)
const SPLIT: usize = 5;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sinew-train-resume-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A noisy two-class problem in f64, hard enough that the validation loss plateaus.
fn data() -> (Tensor, Tensor) {
    let mut g = Generator::new(21);
    let x = Tensor::randn_with(&[160, 4], DType::F64, &mut g);
    let noise = Tensor::randn_with(&[160], DType::F64, &mut g);
    let y = (&x.select(1, 0) + &noise).gt_scalar(0.0).to_dtype(DType::I64);
    (x, y)
}

fn model() -> Sequential {
    let mut g = Generator::new(5);
    // with dropout: its mask generator must resume where it stopped, too
    let m = Sequential::new()
        .add(Linear::new(4, 16, &mut g))
        .add(Relu)
        .add(Dropout::new(0.25, 9))
        .add(Linear::new(16, 2, &mut g));
    m.cast(DType::F64);
    m
}

fn plateau() -> ReduceLrOnPlateauCallback {
    let mut p = ReduceLrOnPlateauCallback::new("val_loss");
    p.inner.patience = 0;
    p.inner.factor = 0.5;
    p.inner.threshold = 0.05;
    p
}

/// How the data reaches the trainer.
#[derive(Clone, Copy)]
enum Feed {
    Tensors,
    Loader { workers: usize },
}

/// Trains to `epochs`, saving a full checkpoint every epoch into `dir`, optionally
/// resuming from `resume`. Returns the parameters and the history.
fn run(feed: Feed, epochs: usize, dir: &Path, resume: Option<&Path>) -> (Vec<(String, Vec<f64>)>, History) {
    let (x, y) = data();
    let model = model();
    let mut opt = Adam::new(model.parameters(), 0.02);
    let mut trainer = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
        .epochs(epochs)
        .batch_size(16)
        .seed(77)
        .metric(Accuracy::default())
        .callback(LrScheduleCallback::new(ExponentialLr { gamma: 0.8 }, Every::Epoch))
        .callback(plateau())
        .callback(EarlyStopping::new("val_loss", 100).restore_best_weights(false))
        .callback(TerminateOnNaN::default())
        .callback(CsvLogger::new(dir.join("log.csv")))
        .callback(ModelCheckpoint::new(dir.join("epoch-{epoch}.sinew")))
        .verbosity(Verbosity::Quiet);
    if let Some(path) = resume {
        trainer = trainer.resume_from(path).expect("resume");
    }
    let history = match feed {
        Feed::Tensors => trainer.validation_split(0.25).fit(&x, &y),
        Feed::Loader { workers } => {
            let train = DataLoader::new(TensorDataset::new(x.narrow(0, 0, 120), y.narrow(0, 0, 120)), 16)
                .shuffle(true)
                .seed(99)
                .num_workers(workers);
            let val = DataLoader::new(TensorDataset::new(x.narrow(0, 120, 40), y.narrow(0, 120, 40)), 16);
            trainer.validation_loader(&val).fit_loader(&train)
        }
    };
    let params = model.state_dict().into_iter().map(|(n, t)| (n, t.to_vec::<f64>())).collect();
    (params, history)
}

fn bits(h: &History) -> Vec<Vec<(String, u64)>> {
    h.epochs.iter().map(|l| l.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect()).collect()
}

fn check_exact_resume(feed: Feed, name: &str) {
    let dir_a = tmp(&format!("{name}-straight"));
    let dir_b = tmp(&format!("{name}-interrupted"));
    let (straight, h_straight) = run(feed, EPOCHS, &dir_a, None);
    assert_eq!(h_straight.len(), EPOCHS);
    // the plateau callback did reduce the rate at least once, beyond the schedule's decay
    let lrs = h_straight.get("lr");
    let scheduled: Vec<f64> = (0..EPOCHS).map(|e| 0.02 * 0.8f64.powi(e as i32)).collect();
    assert!(lrs.iter().zip(&scheduled).any(|(a, b)| a < &(b * 0.99)), "plateau never fired: {lrs:?}");

    let (_, h_first) = run(feed, SPLIT, &dir_b, None);
    assert_eq!(h_first.epochs[..], h_straight.epochs[..SPLIT]);
    let ckpt = dir_b.join(format!("epoch-{SPLIT}.sinew"));
    let (resumed, h_resumed) = run(feed, EPOCHS, &dir_b, Some(&ckpt));
    assert_eq!(bits(&h_resumed), bits(&h_straight), "history differs after resuming");
    for ((n, a), (_, b)) in straight.iter().zip(&resumed) {
        let (a, b): (Vec<u64>, Vec<u64>) =
            (a.iter().map(|v| v.to_bits()).collect(), b.iter().map(|v| v.to_bits()).collect());
        assert_eq!(a, b, "{n} differs after resuming");
    }
    // the CSV log of the resumed run continues the file: same rows as the straight run's
    let csv_a = std::fs::read_to_string(dir_a.join("log.csv")).unwrap();
    let csv_b = std::fs::read_to_string(dir_b.join("log.csv")).unwrap();
    assert_eq!(csv_a, csv_b);

    // and the state the callbacks saved matters: restoring only model, optimizer and
    // epoch by hand (the old way) does not reproduce the run
    let c = Checkpoint::load(&ckpt).unwrap();
    let by_hand = Checkpoint {
        model: c.model.clone(),
        optimizer: c.optimizer.clone(),
        epoch: c.epoch,
        step: c.step,
        ..Checkpoint::default()
    };
    let path = dir_b.join("by-hand.sinew");
    by_hand.save(&path).unwrap();
    let (partial, h_partial) = run(feed, EPOCHS, &tmp(&format!("{name}-by-hand")), Some(&path));
    assert_eq!(h_partial.len(), EPOCHS - SPLIT, "no history saved by hand: only the new epochs");
    assert_ne!(partial, straight, "callback state made no difference; the test proves nothing");
    for d in [dir_a, dir_b, tmp(&format!("{name}-by-hand"))] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn resuming_fit_over_tensors_is_exact() {
    check_exact_resume(Feed::Tensors, "tensors");
}

#[test]
fn resuming_fit_loader_with_workers_is_exact() {
    check_exact_resume(Feed::Loader { workers: 2 }, "loader");
}

#[test]
fn checkpoint_holds_the_run() {
    let dir = tmp("contents");
    let (x, y) = data();
    let model = model();
    let mut opt = Adam::new(model.parameters(), 0.02);
    let history = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
        .epochs(2)
        .batch_size(40)
        .seed(3)
        .callback(LrScheduleCallback::new(ExponentialLr { gamma: 0.5 }, Every::Epoch))
        .callback(ModelCheckpoint::new(dir.join("last.ckpt")))
        .verbosity(Verbosity::Quiet)
        .fit(&x, &y);
    let c = Checkpoint::load(dir.join("last.ckpt")).unwrap();
    assert_eq!((c.epoch, c.step), (2, 8)); // 160 / 40 = 4 steps an epoch
    assert_eq!(c.metadata["sinew_train.seed"], "3");
    assert_eq!(c.optimizer.as_ref().unwrap().groups[0].lr, opt.lr());
    let saved: Vec<(String, Tensor)> = c.model.clone().into_vec();
    assert_eq!(saved.len(), model.state_dict().len());
    assert_eq!(history.len(), 2);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_missing_stateful_callback_is_named() {
    let dir = tmp("missing");
    let (x, y) = data();
    let train = |resume: bool, with_plateau: bool| {
        let model = model();
        let mut opt = Adam::new(model.parameters(), 0.02);
        let mut t = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
            .epochs(2)
            .callback(ModelCheckpoint::new(dir.join("c.sinew")))
            .verbosity(Verbosity::Quiet);
        if with_plateau {
            t = t.callback(plateau());
        }
        if resume {
            t = t.resume_from(dir.join("c.sinew")).map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(t.validation_data(&x, &y).fit(&x, &y))
    };
    train(false, true).unwrap();
    // refused by resume_from itself, as an error, not by a panic in fit
    let msg = train(true, false).unwrap_err();
    assert!(msg.contains("ReduceLrOnPlateauCallback") && msg.contains("does not have"), "{msg}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
#[should_panic(expected = "build the loader with .seed(1)")]
fn a_loader_with_another_seed_is_refused() {
    let dir = tmp("seed");
    let (x, y) = data();
    let ds = TensorDataset::new(x, y);
    for (seed, resume) in [(1, false), (2, true)] {
        let model = model();
        let mut opt = Adam::new(model.parameters(), 0.02);
        let loader = DataLoader::new(ds.clone(), 32).shuffle(true).seed(seed);
        let mut t = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
            .callback(ModelCheckpoint::new(dir.join("c.sinew")))
            .verbosity(Verbosity::Quiet);
        if resume {
            t = t.resume_from(dir.join("c.sinew")).unwrap();
        }
        t.epochs(2).fit_loader(&loader);
    }
}

#[test]
fn resume_errors_leave_the_model_alone() {
    let model = model();
    let before = model.state_dict();
    let mut opt = Adam::new(model.parameters(), 0.02);
    // a state dict for another model
    let other = Linear::new(3, 3, &mut Generator::new(0));
    let wrong = Checkpoint { optimizer: Some(opt.state()), ..Checkpoint::new(&other) };
    let t = Trainer::new(&model, &mut opt, Loss::CrossEntropy);
    assert!(matches!(t.resume_from_checkpoint(&wrong), Err(ResumeError::Serialize(_))));
    for ((_, a), (_, b)) in before.iter().zip(model.state_dict()) {
        assert_eq!(a.to_vec::<f64>(), b.to_vec::<f64>());
    }
    // no optimizer state
    let t = Trainer::new(&model, &mut opt, Loss::CrossEntropy);
    let no_opt = Checkpoint { model: StateDict::from(model.state_dict()), ..Checkpoint::default() };
    assert!(matches!(t.resume_from_checkpoint(&no_opt), Err(ResumeError::NoOptimizerState)));
    // a file that is not there
    let t = Trainer::new(&model, &mut opt, Loss::CrossEntropy);
    assert!(t.resume_from("/nonexistent/sinew/ckpt").is_err());
    // garbage in the trainer's metadata
    let mut bad = Checkpoint { optimizer: Some(opt.state()), ..Checkpoint::new(&model) };
    bad.metadata.insert("sinew_train.history".into(), "not base64!".into());
    let t = Trainer::new(&model, &mut opt, Loss::CrossEntropy);
    assert!(matches!(t.resume_from_checkpoint(&bad), Err(ResumeError::Decode { .. })));
}

#[test]
fn a_run_stopped_early_stays_stopped() {
    let dir = tmp("stopped");
    let (x, y) = data();
    let run = |resume: bool| {
        let model = model();
        let mut opt = Adam::new(model.parameters(), 0.02);
        let mut t = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
            .epochs(50)
            // "loss" never improves by 10: stops after epoch 2
            .callback(EarlyStopping::new("loss", 2).min_delta(10.0))
            .callback(ModelCheckpoint::new(dir.join("c.sinew")))
            .verbosity(Verbosity::Quiet);
        if resume {
            t = t.resume_from(dir.join("c.sinew")).unwrap();
        }
        (t.fit(&x, &y), model.state_dict())
    };
    let (first, weights) = run(false);
    assert_eq!(first.len(), 3);
    let (again, weights_again) = run(true);
    assert_eq!(again, first);
    for ((_, a), (_, b)) in weights.iter().zip(&weights_again) {
        assert_eq!(a.to_vec::<f64>(), b.to_vec::<f64>());
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn plateau_state_round_trips_through_a_checkpoint() {
    use sinew_train::Callback;
    let w = sinew_autograd::Param::new("w", Tensor::zeros(&[1]));
    let mut opt = sinew_optim::Sgd::new(vec![w], 1.0);
    let mut a = ReduceLrOnPlateauCallback::new("val_loss");
    a.inner.patience = 1;
    for v in [1.0, 2.0] {
        a.inner.step(v, &mut opt);
    }
    let mut b = ReduceLrOnPlateauCallback::new("val_loss");
    b.load_state(&a.state().unwrap()).unwrap();
    assert_eq!(b.inner, a.inner);
    // a third bad epoch reduces both
    let mut opt_b = sinew_optim::Sgd::new(vec![sinew_autograd::Param::new("w", Tensor::zeros(&[1]))], 1.0);
    assert!(a.inner.step(3.0, &mut opt));
    assert!(b.inner.step(3.0, &mut opt_b));
    assert_eq!(b.inner.mode, PlateauMode::Min);
}
