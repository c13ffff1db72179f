//! Data-parallel training of the digits MLP on several processes with MPI: `Trainer::fit`
//! runs on every rank, each rank trains on its own shard of the training set, the
//! gradients of every step are averaged over the ranks by all-reduce, and every rank ends
//! with bit-identical weights; the progress and the saved weights come from rank 0.
//!
//! Needs Open MPI (docs/distributed.md). Build and run on 2 processes with
//!
//! ```text
//! cargo build --release -p sinew-examples --features distributed --example distributed_digits
//! mpirun -np 2 target/release/examples/distributed_digits
//! ```
//!
//! Started without mpirun it is a job of one process, and trains as `digits_mlp` does.

use sinew::data::{StandardScaler, datasets, stratified_train_test_split};
use sinew::distributed::{DistributedDataParallel, World};
use sinew::prelude::*;
use sinew::train::metrics::{Accuracy, Metric};
use sinew::train::{Verbosity, evaluate};

/// Samples per optimizer step, over all the ranks together.
const GLOBAL_BATCH: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let world = World::init()?;
    sinew::tensor::set_num_threads(1); // one core per rank; mpirun -np says how many

    // every rank loads and splits the data the same way; fit gives each rank its shard
    let digits = datasets::digits();
    let (train_idx, test_idx) = stratified_train_test_split(digits.targets(), 0.2, 0);
    let (train, test) = (digits.select(&train_idx), digits.select(&test_idx));
    let (scaler, x_train) = StandardScaler::fit_transform(train.features());
    let x_test = scaler.transform(test.features());

    // each rank builds a model; wrapping it copies rank 0's weights to all of them
    let mut g = Generator::new(world.rank() as u64);
    let net = Sequential::new().add(Linear::new(64, 128, &mut g)).add(Relu).add(Linear::new(128, 10, &mut g));
    let model = DistributedDataParallel::new(&world, net);
    let mut opt = Adam::new(model.parameters(), 1e-3);
    let per_rank = GLOBAL_BATCH / world.size();
    if world.is_root() {
        println!(
            "{} ranks: {} training images, batches of {per_rank} per rank ({} a step)",
            world.size(),
            train.len(),
            per_rank * world.size()
        );
    }
    let history = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
        .data_parallel(&model)
        .epochs(20)
        .batch_size(per_rank)
        .metric(Accuracy::default())
        .validation_data(&x_test, test.targets())
        .verbosity(Verbosity::Lines)
        .fit(&x_train, train.targets());

    // the replicas never diverged
    model.check_in_sync()?;
    if world.is_root() {
        let mut metrics: Vec<Box<dyn Metric>> = vec![Box::new(Accuracy::default())];
        let logs = evaluate(&model, &x_test, test.targets(), &Loss::CrossEntropy, &mut metrics, 256);
        println!(
            "test accuracy {:.4} (validation accuracy over the ranks after the last epoch {:.4}); \
             every rank holds the same weights",
            logs["accuracy"],
            history.get("val_accuracy").last().copied().unwrap_or(0.0)
        );
        let path = std::env::temp_dir().join("distributed_digits.safetensors");
        sinew::serialize::save_module(&path, &model)?;
        println!("rank 0 saved the weights to {}", path.display());
    }
    Ok(())
}
