//! Indexing ops on variables: `index_select` / `index_add` and `gather` / `scatter_add`,
//! each the other's adjoint, so their backward rules are each other. Index tensors are
//! constants (`i64`).

use sinew_tensor::Tensor;

use crate::Var;

impl Var {
    /// Entries `index` along `dim` (embedding lookup is `weight.index_select(0, ids)`).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// // an embedding lookup: rows 2, 0, 2 of a 3 × 2 table
    /// let table = Var::leaf(Tensor::arange(0.0, 6.0, 1.0).reshape(&[3, 2]));
    /// let ids = Tensor::from_vec(vec![2i64, 0, 2], &[3])?;
    /// let e = table.index_select(0, &ids);
    /// assert_eq!(e.value().to_vec::<f32>(), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
    /// let g = e.sum_all().backward();   // row 2 was used twice
    /// assert_eq!(g.get(&table).unwrap().to_vec::<f32>(), vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Var {
        let idx = index.clone();
        Var::from_op("index_select", self.value().index_select(dim, index), &[self], move |ctx| {
            let zeros = ctx.grad.zeros_shaped(ctx.inputs[0].dims());
            vec![Some(zeros.index_add(dim, &idx, ctx.grad))]
        })
    }

    /// Adds the slices of `src` at entries `index` along `dim` of a copy of `self`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let base = Var::leaf(Tensor::zeros(&[3]));
    /// let src = Var::leaf(Tensor::from_vec(vec![1.0f32, 2.0], &[2])?);
    /// let idx = Tensor::from_vec(vec![2i64, 2], &[2])?;
    /// let y = base.index_add(0, &idx, &src);
    /// assert_eq!(y.value().to_vec::<f32>(), vec![0.0, 0.0, 3.0]);
    /// // weight the outputs so the gradients differ: src gets y's gradient at its index
    /// let w = Var::constant(Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?);
    /// let g = y.mul(&w).sum_all().backward();
    /// assert_eq!(g.get(&src).unwrap().to_vec::<f32>(), vec![3.0, 3.0]);
    /// assert_eq!(g.get(&base).unwrap().to_vec::<f32>(), vec![1.0, 2.0, 3.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn index_add(&self, dim: isize, index: &Tensor, src: &Var) -> Var {
        let idx = index.clone();
        Var::from_op("index_add", self.value().index_add(dim, index, src.value()), &[self, src], move |ctx| {
            vec![Some(ctx.grad.clone()), Some(ctx.grad.index_select(dim, &idx))]
        })
    }

    /// `torch.gather` along `dim`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// // pick each row's target log-probability, as nll_loss does
    /// let logp = Var::leaf(Tensor::from_vec(vec![-0.1f32, -2.0, -3.0, -0.2], &[2, 2])?);
    /// let target = Tensor::from_vec(vec![0i64, 1], &[2, 1])?;
    /// let picked = logp.gather(1, &target);   // logp.gather(1, target)
    /// assert_eq!(picked.value().to_vec::<f32>(), vec![-0.1, -0.2]);
    /// let g = picked.sum_all().backward();
    /// assert_eq!(g.get(&logp).unwrap().to_vec::<f32>(), vec![1.0, 0.0, 0.0, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn gather(&self, dim: isize, index: &Tensor) -> Var {
        let idx = index.clone();
        Var::from_op("gather", self.value().gather(dim, index), &[self], move |ctx| {
            let zeros = ctx.grad.zeros_shaped(ctx.inputs[0].dims());
            vec![Some(zeros.scatter_add(dim, &idx, ctx.grad))]
        })
    }

    /// `torch.scatter_add` along `dim` into a copy of `self`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let z = Var::leaf(Tensor::zeros(&[2]));
    /// let src = Var::leaf(Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?);
    /// let idx = Tensor::from_vec(vec![1i64, 0, 1], &[3])?;
    /// let y = z.scatter_add(0, &idx, &src);
    /// assert_eq!(y.value().to_vec::<f32>(), vec![2.0, 4.0]);
    /// let w = Var::constant(Tensor::from_vec(vec![10.0f32, 100.0], &[2])?);
    /// let g = y.mul(&w).sum_all().backward();   // src gathers the gradient at its index
    /// assert_eq!(g.get(&src).unwrap().to_vec::<f32>(), vec![100.0, 10.0, 100.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
