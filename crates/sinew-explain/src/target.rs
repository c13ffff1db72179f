//! [`Target`]: which scalar of the model's output each item's attribution explains.

use sinew_autograd::Var;
use sinew_tensor::Tensor;

use crate::ExplainError;

/// Which scalar of the model's output is explained, for each item of the batch (Captum's
/// `target`). Gradients are taken of the sum of the items' scalars; items do not interact
/// in a model in evaluation mode, so each item's gradient is its own.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    /// `output[i, class]` for every item `i` (output `(N, C)`).
    Class(usize),
    /// `output[i, classes[i]]` (output `(N, C)`, one class per item).
    Classes(&'a [usize]),
    /// Any scalar per item: a function of the output batch `(M, ...)` returning shape `(M)`
    /// (a regression output `(N, 1)`: `&|y| y.select(1, 0)`). Methods that run the model on
    /// several copies of the batch at once (integrated gradients) call it on all of them.
    Output(&'a dyn Fn(&Var) -> Var),
}

impl std::fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Class(c) => write!(f, "Class({c})"),
            Target::Classes(c) => write!(f, "Classes({c:?})"),
            Target::Output(_) => f.write_str("Output(..)"),
        }
    }
}

impl Target<'_> {
    /// The explained scalar of each row of `output`, shape `(M)`. `output` holds `M = k·N`
    /// rows, `k` copies of a batch of `n` items (row `r` is item `r % n`), as Captum
    /// repeats a target for expanded inputs.
    pub(crate) fn scores(&self, output: &Var, n: usize) -> Result<Var, ExplainError> {
        let rows = output.dims().first().copied().unwrap_or(0);
        let per_row = |classes: &dyn Fn(usize) -> usize| -> Result<Var, ExplainError> {
            if output.ndim() != 2 {
                return Err(ExplainError::Target(format!(
                    "a class target needs an output of shape (N, C), got {:?}",
                    output.dims()
                )));
            }
            let c = output.dims()[1];
            let mut index = Vec::with_capacity(rows);
            for r in 0..rows {
                let class = classes(r);
                if class >= c {
                    return Err(ExplainError::Target(format!(
                        "class {class} for item {} is past the output's {c} columns",
                        r % n.max(1)
                    )));
                }
                index.push(class as i64);
            }
            let index = Tensor::from_vec(index, &[rows, 1]).expect("one class per row");
            Ok(output.gather(1, &index).squeeze_dim(1))
        };
        match self {
            Target::Class(class) => per_row(&|_| *class),
            Target::Classes(classes) => {
                if classes.len() != n {
                    return Err(ExplainError::Target(format!(
                        "{} classes given for a batch of {n} items",
                        classes.len()
                    )));
                }
                per_row(&|r| classes[r % n])
            }
            Target::Output(f) => {
                let s = f(output);
                if s.dims() != [rows] {
                    return Err(ExplainError::Target(format!(
                        "the target function returned shape {:?} for an output of {rows} rows; expected [{rows}]",
                        s.dims()
                    )));
                }
                Ok(s)
            }
        }
    }
}
