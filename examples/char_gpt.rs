//! A character-level GPT trained from scratch on CPU, then sampled: sinew-models' GPT-2
//! (2 blocks, width 128, 4 heads, context 64) on sinew's own user guide (the Markdown
//! pages under `crates/sinew/docs/`, this repository's text, under its licence, MIT OR
//! Apache-2.0). AdamW with a warm-up and cosine decay, batches of 32 random windows.
//!
//! Prints the unigram entropy of the text (the loss of a model that knows only character
//! frequencies), the training and validation loss as it falls, writes the curve to
//! `char_gpt_loss.png` and the model to `char_gpt/` (a Hugging Face folder:
//! `config.json` + `model.safetensors`, and `vocab.json`, the characters), then samples
//! from the trained model with temperature and top-k.
//!
//! ```sh
//! cargo run --release --example char_gpt            # 600 steps, about half a minute
//! cargo run --release --example char_gpt -- 3000    # longer, better samples
//! ```

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use sinew::models::gpt2::{GenerateOptions, Gpt2Config, Gpt2LMHeadModel, Sampling};
use sinew::optim::{CosineAnnealingLr, LinearLr, Then};
use sinew::prelude::*;

#[path = "common/png.rs"]
mod png;

/// The guide's pages, in the order a reader meets them.
const PAGES: &[&str] = &[
    include_str!("../crates/sinew/docs/getting-started.md"),
    include_str!("../crates/sinew/docs/tensors.md"),
    include_str!("../crates/sinew/docs/autograd.md"),
    include_str!("../crates/sinew/docs/models.md"),
    include_str!("../crates/sinew/docs/training.md"),
    include_str!("../crates/sinew/docs/saving.md"),
    include_str!("../crates/sinew/docs/pytorch-cheatsheet.md"),
    include_str!("../crates/sinew/docs/performance.md"),
    include_str!("../crates/sinew/docs/pretrained.md"),
];

const CONTEXT: usize = 64;
const BATCH: usize = 32;

/// `BATCH` random windows of `CONTEXT` ids and the ids one step later.
fn batch(ids: &[i64], g: &mut Generator) -> (Tensor, Tensor) {
    let (mut x, mut y) = (Vec::with_capacity(BATCH * CONTEXT), Vec::with_capacity(BATCH * CONTEXT));
    for _ in 0..BATCH {
        let start = g.index(ids.len() - CONTEXT - 1);
        x.extend_from_slice(&ids[start..start + CONTEXT]);
        y.extend_from_slice(&ids[start + 1..start + CONTEXT + 1]);
    }
    let shape = [BATCH, CONTEXT];
    (Tensor::from_vec(x, &shape).expect("ids"), Tensor::from_vec(y, &shape).expect("targets"))
}

/// Mean next-character cross entropy (nats) of `model` on `(x, y)`.
fn loss(model: &Gpt2LMHeadModel, x: &Tensor, y: &Tensor) -> Result<Var, Box<dyn std::error::Error>> {
    let logits = model.logits(x)?;
    let v = logits.dims()[2];
    Ok(cross_entropy(
        &logits.reshape(&[BATCH * CONTEXT, v]),
        &y.reshape(&[BATCH * CONTEXT]),
        &CrossEntropyOptions::default(),
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(600);
    let text: String = PAGES.concat();
    let chars: Vec<char> = text.chars().collect::<BTreeSet<_>>().into_iter().collect();
    let id_of = |c: char| chars.binary_search(&c).expect("a character of the text") as i64;
    let ids: Vec<i64> = text.chars().map(id_of).collect();
    // every tenth block of 2000 characters is held out, so both splits sample every page
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (i, block) in ids.chunks(2000).enumerate() {
        if i % 10 == 9 { val.extend_from_slice(block) } else { train.extend_from_slice(block) }
    }
    let (train, val) = (train.as_slice(), val.as_slice());

    // the loss of predicting every character by its frequency alone
    let mut counts = vec![0usize; chars.len()];
    ids.iter().for_each(|&i| counts[i as usize] += 1);
    let n = ids.len() as f64;
    let unigram: f64 =
        counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / n) * (c as f64 / n).ln()).sum();
    println!(
        "text: sinew's guide, {} characters, {} distinct; unigram entropy {unigram:.3} nats",
        ids.len(),
        chars.len()
    );

    let config = Gpt2Config::from_json(&format!(
        r#"{{"vocab_size": {}, "n_positions": {CONTEXT}, "n_embd": 128, "n_layer": 2, "n_head": 4,
            "activation_function": "gelu", "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
            "bos_token_id": null, "eos_token_id": null}}"#,
        chars.len()
    ))?;
    let mut g = Generator::new(0);
    let model = Gpt2LMHeadModel::new(&config, &mut g);
    println!("model: {} parameters (head tied to the embedding)", model.num_parameters());

    let mut opt = AdamW::new(model.parameters(), 2e-3);
    let warmup = steps / 20;
    let schedule = Then {
        first: LinearLr { start_factor: 0.05, end_factor: 1.0, total_iters: warmup },
        milestone: warmup,
        second: CosineAnnealingLr { t_max: steps - warmup, eta_min: 1e-4 },
    };
    let mut scheduler = Scheduler::new(schedule, &mut opt);
    let mut val_g = Generator::new(1);
    let val_batches: Vec<(Tensor, Tensor)> = (0..8).map(|_| batch(val, &mut val_g)).collect();
    let validate = |model: &Gpt2LMHeadModel| -> Result<f64, Box<dyn std::error::Error>> {
        model.eval();
        let mut total = 0.0;
        for (x, y) in &val_batches {
            total += no_grad(|| loss(model, x, y))?.item();
        }
        model.train();
        Ok(total / val_batches.len() as f64)
    };

    let every = (steps / 12).max(1);
    let (mut train_curve, mut val_curve) = (Vec::new(), vec![validate(&model)?]);
    let mut recent = Vec::new();
    let t = Instant::now();
    for step in 1..=steps {
        let (x, y) = batch(train, &mut g);
        let l = loss(&model, &x, &y)?;
        recent.push(l.item());
        opt.step(&l.backward());
        scheduler.step(&mut opt);
        if step % every == 0 || step == steps {
            let mean = recent.iter().sum::<f64>() / recent.len() as f64;
            recent.clear();
            train_curve.push(mean);
            val_curve.push(validate(&model)?);
            println!(
                "step {step:5}: train loss {mean:.3}, validation loss {:.3} ({:.1?})",
                val_curve.last().unwrap(),
                t.elapsed()
            );
        }
    }
    let final_val = *val_curve.last().unwrap();
    // the training curve starts at the first checkpoint: align it with the validation
    // curve, whose first point is the untrained model
    let mut train_points = vec![val_curve[0]];
    train_points.extend(&train_curve);
    png::write_line_chart(
        Path::new("char_gpt_loss.png"),
        480,
        300,
        &[(&train_points, [40, 90, 200]), (&val_curve, [220, 60, 30])],
        &[(unigram, [120, 120, 120])],
    )?;
    model.eval();
    model.save_pretrained("char_gpt")?;
    let vocab: Vec<String> = chars.iter().map(char::to_string).collect();
    std::fs::write("char_gpt/vocab.json", format!("{vocab:?}"))?;
    println!(
        "wrote char_gpt_loss.png (blue: training, red: validation, grey: unigram entropy) and char_gpt/"
    );

    // sample: a sliding window, since the model sees CONTEXT characters at most
    let mut out: Vec<i64> = "## ".chars().map(id_of).collect();
    let prompt_len = out.len();
    for chunk in 0..10u64 {
        let window = &out[out.len().saturating_sub(CONTEXT / 2)..];
        let sampling = Sampling::with_temperature(0.8, chunk).top_k(10);
        let opts = GenerateOptions::new(CONTEXT - window.len()).with_sampling(sampling);
        let new = model.generate(&[window], &opts)?;
        out.extend(&new[0]);
    }
    let sample: String = out.iter().map(|&i| chars[i as usize]).collect();
    println!("--- a sample ({} new characters after \"## \") ---\n{sample}\n---", out.len() - prompt_len);
    assert!(
        final_val < unigram - 0.8,
        "the validation loss {final_val:.3} should fall well below the unigram entropy {unigram:.3}"
    );
    Ok(())
}
