//! A hand-written training loop with the pieces `fit` hides: gradient accumulation over
//! micro-batches, clipping by the global gradient norm, a linear warm-up then cosine
//! learning-rate schedule, and a checkpoint saved mid-run, reloaded into a fresh model and
//! optimizer, and continued — ending exactly where an uninterrupted run ends.
//!
//! Run with `cargo run --release --example custom_loop`.

use sinew::autograd::Gradients;
use sinew::optim::{CosineAnnealingLr, LinearLr, Scheduler, Then};
use sinew::prelude::*;
use sinew::serialize::Checkpoint;

const STEPS: usize = 60;
const MICRO_BATCHES: usize = 4;

fn model(g: &mut Generator) -> Sequential {
    Sequential::new().add(Linear::new(8, 32, g)).add(Tanh).add(Linear::new(32, 1, g))
}

fn schedule() -> Then<LinearLr, CosineAnnealingLr> {
    Then {
        first: LinearLr { start_factor: 0.1, end_factor: 1.0, total_iters: 10 },
        milestone: 10,
        second: CosineAnnealingLr { t_max: STEPS - 10, eta_min: 1e-4 },
    }
}

/// Trains from `start` to `end`, drawing micro-batches from `data_rng`.
fn train(
    net: &Sequential,
    opt: &mut Adam,
    sched: &mut Scheduler<Then<LinearLr, CosineAnnealingLr>>,
    data_rng: &mut Generator,
    steps: std::ops::Range<usize>,
) {
    for step in steps {
        let mut grads = Gradients::new();
        let mut loss_sum = 0.0;
        for _ in 0..MICRO_BATCHES {
            let x = Tensor::randn_with(&[16, 8], DType::F32, data_rng);
            let y = x.sum(&[1], true).mul_scalar(0.3).tanh();
            let loss = mse_loss(&net.forward(&Var::constant(x)), &Var::constant(y), Reduction::Mean);
            loss_sum += loss.item();
            grads.accumulate(&loss.backward());
        }
        grads.scale(1.0 / MICRO_BATCHES as f64);
        let norm = clip_grad_norm(&mut grads, 1.0, 2.0);
        opt.step(&grads);
        sched.step(opt);
        if step % 15 == 0 {
            println!(
                "step {step:2}: loss {:.4}, grad norm {norm:.3}, lr {:.5}",
                loss_sum / MICRO_BATCHES as f64,
                opt.lr()
            );
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // an uninterrupted run
    let net = model(&mut Generator::new(1));
    let mut opt = Adam::new(net.parameters(), 1e-2);
    let mut sched = Scheduler::new(schedule(), &mut opt);
    let mut data = Generator::new(2);
    println!("uninterrupted:");
    train(&net, &mut opt, &mut sched, &mut data, 0..STEPS);
    let straight = net.state_dict();

    // the same run, stopped at step 25 and saved
    let net = model(&mut Generator::new(1));
    let mut opt = Adam::new(net.parameters(), 1e-2);
    let mut sched = Scheduler::new(schedule(), &mut opt);
    let mut data = Generator::new(2);
    println!("first half:");
    train(&net, &mut opt, &mut sched, &mut data, 0..25);
    let path = std::env::temp_dir().join(format!("custom_loop-{}.ckpt", std::process::id()));
    let mut ckpt = Checkpoint::new(&net);
    ckpt.optimizer = Some(opt.state());
    ckpt.scheduler = Some(sched.state());
    ckpt.step = 25;
    ckpt.rng = Some(data.state());
    ckpt.save(&path)?;
    println!("saved {} ({} bytes)", path.display(), std::fs::metadata(&path)?.len());

    // a fresh model (different initialisation) and optimizer, restored from the file
    let ckpt = Checkpoint::load(&path)?;
    let net = model(&mut Generator::new(99));
    ckpt.model.load_into(&net, true)?;
    let mut opt = Adam::new(net.parameters(), 1e-2);
    opt.load_state(ckpt.optimizer.as_ref().expect("optimizer state"))?;
    let mut sched = Scheduler::new(schedule(), &mut opt);
    sched
        .load_state(ckpt.scheduler.clone().expect("scheduler state"), &mut opt)
        .expect("scheduler state fits the optimizer");
    let mut data = Generator::from_state(ckpt.rng.expect("rng state"));
    println!("resumed at step {}:", ckpt.step);
    train(&net, &mut opt, &mut sched, &mut data, ckpt.step as usize..STEPS);
    std::fs::remove_file(&path).ok();

    let same =
        straight.iter().zip(net.state_dict()).all(|((_, a), (_, b))| a.to_vec::<f32>() == b.to_vec::<f32>());
    println!("resumed run equals the uninterrupted run bit for bit: {same}");
    assert!(same);
    Ok(())
}
