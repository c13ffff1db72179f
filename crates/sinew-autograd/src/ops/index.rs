//! Indexing ops on variables: `index_select` / `index_add` and `gather` / `scatter_add`,
//! each the other's adjoint, so their backward rules are each other. Index tensors are
//! constants (`i64`).

use sinew_tensor::Tensor;

use crate::Var;

impl Var {
    /// Entries `index` along `dim` (embedding lookup is `weight.index_select(0, ids)`).
    #[track_caller]
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Var {
        let idx = index.clone();
        Var::from_op("index_select", self.value().index_select(dim, index), &[self], move |ctx| {
            let zeros = ctx.grad.zeros_shaped(ctx.inputs[0].dims());
            vec![Some(zeros.index_add(dim, &idx, ctx.grad))]
        })
    }

    /// Adds the slices of `src` at entries `index` along `dim` of a copy of `self`.
    #[track_caller]
    pub fn index_add(&self, dim: isize, index: &Tensor, src: &Var) -> Var {
        let idx = index.clone();
        Var::from_op("index_add", self.value().index_add(dim, index, src.value()), &[self, src], move |ctx| {
            vec![Some(ctx.grad.clone()), Some(ctx.grad.index_select(dim, &idx))]
        })
    }

    /// `torch.gather` along `dim`.
    #[track_caller]
    pub fn gather(&self, dim: isize, index: &Tensor) -> Var {
        let idx = index.clone();
        Var::from_op("gather", self.value().gather(dim, index), &[self], move |ctx| {
            let zeros = ctx.grad.zeros_shaped(ctx.inputs[0].dims());
            vec![Some(zeros.scatter_add(dim, &idx, ctx.grad))]
        })
    }

    /// `torch.scatter_add` along `dim` into a copy of `self`.
    #[track_caller]
    pub fn scatter_add(&self, dim: isize, index: &Tensor, src: &Var) -> Var {
        let idx = index.clone();
        Var::from_op(
            "scatter_add",
            self.value().scatter_add(dim, index, src.value()),
            &[self, src],
            move |ctx| vec![Some(ctx.grad.clone()), Some(ctx.grad.gather(dim, &idx))],
        )
    }
}
