//! [`ExplainError`]: what an attribution method reports instead of a result.

/// Why an attribution could not be computed. Each message names what was wrong and what
/// was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExplainError {
    /// The target does not fit the model's output (a class past the last column, a class
    /// list of the wrong length, a target function returning the wrong shape).
    #[error("target: {0}")]
    Target(String),
    /// An option does not fit the input (baseline shape, window, stride, step count).
    #[error("{method}: {msg}")]
    Options {
        /// The method (`IntegratedGradients`, `Occlusion`, ...).
        method: &'static str,
        /// What was wrong.
        msg: String,
    },
    /// The named layer is not a submodule of the model, or produced no output in the
    /// forward pass (it was not called, or does not report its output: `sinew_nn::hooks`).
    #[error("layer `{name}`: {msg}")]
    Layer {
        /// The name asked for.
        name: String,
        /// What went wrong, with the names that were available.
        msg: String,
    },
}
