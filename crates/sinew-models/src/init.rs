//! How a new model's weights are made: Hugging Face's random initialisation, or zeros
//! for weights about to be loaded.

use sinew_autograd::Param;
use sinew_nn::{Dropout, Embedding, Linear};
use sinew_tensor::{Generator, Tensor};

/// Where a new model's weights come from: Hugging Face's random initialisation
/// (`N(0, initializer_range)` weights, zero biases), or zeros for a model whose weights are
/// about to be loaded, which draws no random numbers. Also seeds the dropout layers,
/// each its own stream.
pub(crate) struct Init<'a> {
    rng: Option<&'a mut Generator>,
    std: f64,
    next_seed: u64,
}

impl<'a> Init<'a> {
    /// Weights `N(0, std)` drawn from `g` (Hugging Face's `initializer_range`).
    pub(crate) fn random(g: &'a mut Generator, std: f64) -> Self {
        let next_seed = g.int_in(0, i64::MAX) as u64;
        Init { rng: Some(g), std, next_seed }
    }

    pub(crate) fn zeros() -> Self {
        Init { rng: None, std: 0.0, next_seed: 0 }
    }

    /// `N(0, std)` values, or zeros.
    pub(crate) fn normal(&mut self, shape: &[usize]) -> Tensor {
        self.normal_with_std(shape, self.std)
    }

    /// `N(0, std)` with another standard deviation (GPT-2's scaled residual projections).
    pub(crate) fn normal_with_std(&mut self, shape: &[usize], std: f64) -> Tensor {
        match &mut self.rng {
            Some(g) => sinew_nn::init::normal(shape, 0.0, std, g),
            None => Tensor::zeros(shape),
        }
    }

    pub(crate) fn linear(&mut self, fin: usize, fout: usize) -> Linear {
        Linear {
            weight: Param::new("weight", self.normal(&[fout, fin])),
            bias: Some(Param::new("bias", Tensor::zeros(&[fout]))),
        }
    }

    /// An embedding table; with `padding_idx`, that row zero and without gradient (the
    /// zero table already has it: no copy).
    pub(crate) fn table(&mut self, num: usize, dim: usize, padding_idx: Option<usize>) -> Embedding {
        let table = Embedding { weight: Param::new("weight", self.normal(&[num, dim])), padding_idx: None };
        match (padding_idx, &self.rng) {
            (Some(p), Some(_)) => table.with_padding_idx(p),
            (padding_idx, _) => Embedding { padding_idx, ..table },
        }
    }

    pub(crate) fn dropout(&mut self, p: f64) -> Dropout {
        self.next_seed = self.next_seed.wrapping_add(1);
        Dropout::new(p, self.next_seed)
    }
}
