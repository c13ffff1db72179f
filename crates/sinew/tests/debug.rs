//! Every public type a user holds can be printed with `{:?}` (a compile-time check: this
//! file does not build if one cannot).

#![allow(dead_code)]

use std::fmt::Debug;

fn debug<T: Debug + ?Sized>() {}

#[test]
fn public_types_are_debug() {
    use sinew::autograd::{Gradients, Param, Var};
    use sinew::data::{CsvOptions, DataLoader, TensorDataset};
    use sinew::nn::*;
    use sinew::optim::*;
    use sinew::serialize::{Checkpoint, StateDict};
    use sinew::tensor::{Conv2dOptions, Generator, Pool2dOptions, Tensor};
    use sinew::train::*;
    debug::<Tensor>();
    debug::<Generator>();
    debug::<Conv2dOptions>();
    debug::<Pool2dOptions>();
    debug::<Var>();
    debug::<Param>();
    debug::<Gradients>();
    debug::<Linear>();
    debug::<Conv2d>();
    debug::<BatchNorm1d>();
    debug::<BatchNorm2d>();
    debug::<LayerNorm>();
    debug::<Dropout>();
    debug::<Embedding>();
    debug::<Lstm>();
    debug::<Gru>();
    debug::<MultiheadAttention>();
    debug::<Sequential>();
    debug::<Adam>();
    debug::<AdamW>();
    debug::<Sgd>();
    debug::<RmsProp>();
    debug::<Adagrad>();
    debug::<Scheduler<StepLr>>();
    debug::<ReduceLrOnPlateau>();
    debug::<OptimizerState>();
    debug::<Loss>();
    debug::<Trainer<'static>>();
    debug::<EarlyStopping>();
    debug::<ModelCheckpoint>();
    debug::<LrScheduleCallback>();
    debug::<ReduceLrOnPlateauCallback>();
    debug::<CsvLogger>();
    debug::<TerminateOnNaN>();
    debug::<Checkpoint>();
    debug::<StateDict>();
    debug::<CsvOptions>();
    debug::<TensorDataset>();
    debug::<DataLoader<TensorDataset>>();
    debug::<History>();
}

#[test]
fn the_trainer_and_callbacks_print_their_settings() {
    let es = sinew::train::EarlyStopping::new("val_loss", 3);
    assert!(format!("{es:?}").contains("patience: 3"));
    let loss = sinew::train::Loss::CrossEntropy;
    assert_eq!(format!("{loss:?}"), "CrossEntropy");
}
