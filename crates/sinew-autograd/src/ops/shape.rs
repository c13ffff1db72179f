//! Shape and view ops on variables: reshape, permute, transpose, narrow, slice, select,
//! squeeze, unsqueeze, broadcast, and cat/stack/split/chunk. Each backward rule is the
//! inverse reshaping (or a scatter of the gradient into zeros), written with `Var` ops.

use sinew_tensor::{DType, Tensor};

use crate::Var;
use crate::var::SliceInfo;

/// Sums a gradient over the dimensions that broadcasting expanded, back to `shape`.
pub(crate) fn sum_to(g: &Var, shape: &[usize]) -> Var {
    if g.dims() == shape {
        return g.clone();
    }
    let lead = g.ndim() - shape.len();
    let mut dims: Vec<isize> = (0..lead as isize).collect();
    for (i, &s) in shape.iter().enumerate() {
        if s == 1 && g.dims()[lead + i] != 1 {
            dims.push((lead + i) as isize);
        }
    }
    let summed = if dims.is_empty() { g.clone() } else { g.sum(&dims, true) };
    summed.reshape(shape)
}

fn normalize(dim: isize, ndim: usize) -> usize {
    if dim < 0 { (dim + ndim as isize) as usize } else { dim as usize }
}

impl Var {
    /// Same elements, another shape (a view when contiguous).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(0.0, 6.0, 1.0));
    /// let y = x.reshape(&[2, 3]);
    /// assert_eq!(y.dims(), &[2, 3]);
    /// let g = y.square().sum_all().backward();   // gradient comes back in x's shape
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    /// ```
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Var {
        if shape == self.dims() {
            return self.clone();
        }
        Var::from_op("reshape", self.value().reshape(shape), &[self], |ctx| {
            vec![Some(ctx.grad.reshape(ctx.inputs[0].dims()))]
        })
    }

    /// [`Var::reshape`] where one size may be `-1`, inferred from the element count
    /// (PyTorch's `x.reshape(-1, 4)`).
    ///
    /// # Panics
    /// As [`Tensor::reshape_infer`](sinew_tensor::Tensor::reshape_infer).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::zeros(&[2, 3, 4]));
    /// assert_eq!(x.reshape_infer(&[-1, 12]).dims(), &[2, 12]);
    /// ```
    #[track_caller]
    pub fn reshape_infer(&self, sizes: &[isize]) -> Var {
        let shape = self.value().try_infer_shape(sizes).unwrap_or_else(|e| panic!("{e}"));
        self.reshape(&shape)
    }

    /// Flattens dimensions `start..=end` into one.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::zeros(&[2, 3, 4]));
    /// let y = x.flatten(1, -1);   // torch.flatten(x, 1)
    /// assert_eq!(y.dims(), &[2, 12]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().dims(), &[2, 3, 4]);
    /// ```
    #[track_caller]
    pub fn flatten(&self, start: isize, end: isize) -> Var {
        let shape = self.value().flatten(start, end).dims().to_vec();
        self.reshape(&shape)
    }

    /// Reorders dimensions (a view).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::zeros(&[2, 3, 4]));
    /// let y = x.permute(&[2, 0, 1]);   // x.permute(2, 0, 1)
    /// assert_eq!(y.dims(), &[4, 2, 3]);
    /// let w = Var::constant(Tensor::arange(0.0, 24.0, 1.0).reshape(&[4, 2, 3]));
    /// let g = y.mul(&w).sum_all().backward();   // the gradient is permuted back
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>()[..4], [0.0, 6.0, 12.0, 18.0]);
    /// ```
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Var {
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            if p < inverse.len() {
                inverse[p] = i;
            }
        }
        Var::from_op("permute", self.value().permute(perm), &[self], move |ctx| {
            vec![Some(ctx.grad.permute(&inverse))]
        })
    }

    /// Swaps two dimensions (a view).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::zeros(&[2, 3]));
    /// let y = x.transpose(0, 1);
    /// assert_eq!(y.dims(), &[3, 2]);
    /// let w = Var::constant(Tensor::arange(0.0, 6.0, 1.0).reshape(&[3, 2]));
    /// let g = y.mul(&w).sum_all().backward();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn transpose(&self, dim0: isize, dim1: isize) -> Var {
        Var::from_op("transpose", self.value().transpose(dim0, dim1), &[self], move |ctx| {
            vec![Some(ctx.grad.transpose(dim0, dim1))]
        })
    }

    /// Matrix transpose of the last two dimensions (a view).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::constant(Tensor::ones(&[1, 3]));
    /// let w = Var::leaf(Tensor::ones(&[2, 3]));   // nn.Linear's [out, in] layout
    /// let y = x.matmul(&w.t());   // x @ w.T
    /// assert_eq!(y.value().to_vec::<f32>(), vec![3.0, 3.0]);
    /// assert_eq!(y.sum_all().backward().get(&w).unwrap().dims(), &[2, 3]);
    /// ```
    pub fn t(&self) -> Var {
        if self.ndim() < 2 { self.clone() } else { self.transpose(-2, -1) }
    }

    /// `len` entries of `dim` from `start` (a view).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(0.0, 5.0, 1.0));
    /// let y = x.narrow(0, 1, 3);   // x[1:4]
    /// assert_eq!(y.value().to_vec::<f32>(), vec![1.0, 2.0, 3.0]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![0.0, 1.0, 1.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Var {
        self.slice(dim, start, start + len, 1)
    }

    /// Entries `start..end` of `dim`, every `step`-th (a view).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(0.0, 6.0, 1.0));
    /// let y = x.slice(0, 0, 6, 2);   // x[0:6:2]
    /// assert_eq!(y.value().to_vec::<f32>(), vec![0.0, 2.0, 4.0]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn slice(&self, dim: isize, start: usize, end: usize, step: usize) -> Var {
        let value = self.value().slice(dim, start, end, step);
        let d = normalize(dim, self.ndim());
        let count = value.dims()[d];
        let info = SliceInfo { dim: d, start, step };
        Var::from_slice_op(value, self, info, move |ctx| {
            // the general (differentiable) rule; first-order passes take the engine's
            // in-place path instead
            let idx =
                Tensor::arange_dtype(start as f64, (start + count * step) as f64, step as f64, DType::I64);
            vec![Some(ctx.grad.zeros_shaped(ctx.inputs[0].dims()).index_add(d as isize, &idx, ctx.grad))]
        })
    }

    /// The sub-variable at `index` of `dim`, with that dimension removed.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]));
    /// let row = x.select(0, 1);   // x[1]
    /// assert_eq!(row.value().to_vec::<f32>(), vec![3.0, 4.0, 5.0]);
    /// assert_eq!(row.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn select(&self, dim: isize, index: usize) -> Var {
        let d = normalize(dim, self.ndim());
        self.narrow(dim, index, 1).squeeze_dim(d as isize)
    }

    /// Removes dimension `dim` if it has size 1.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::zeros(&[3, 1]));
    /// let y = x.squeeze_dim(-1);   // x.squeeze(-1)
    /// assert_eq!(y.dims(), &[3]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().dims(), &[3, 1]);
    /// ```
    #[track_caller]
    pub fn squeeze_dim(&self, dim: isize) -> Var {
        let shape = self.value().squeeze_dim(dim).dims().to_vec();
        self.reshape(&shape)
    }

    /// Removes every size-1 dimension.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::zeros(&[1, 3, 1]));
    /// assert_eq!(x.squeeze().dims(), &[3]);
    /// assert_eq!(x.squeeze().sum_all().backward().get(&x).unwrap().dims(), &[1, 3, 1]);
    /// ```
    pub fn squeeze(&self) -> Var {
        let shape = self.value().squeeze().dims().to_vec();
        self.reshape(&shape)
    }

    /// Inserts a size-1 dimension at `dim`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::zeros(&[3]));
    /// let y = x.unsqueeze(0);   // x.unsqueeze(0), a batch of one
    /// assert_eq!(y.dims(), &[1, 3]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().dims(), &[3]);
    /// ```
    #[track_caller]
    pub fn unsqueeze(&self, dim: isize) -> Var {
        let shape = self.value().unsqueeze(dim).dims().to_vec();
        self.reshape(&shape)
    }

    /// Broadcasts to `shape` (a view); the gradient is summed back.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let b = Var::leaf(Tensor::zeros(&[3]));
    /// let y = b.broadcast_to(&[4, 3]);
    /// assert_eq!(y.dims(), &[4, 3]);
    /// // the gradient sums over the repeated rows
    /// assert_eq!(y.sum_all().backward().get(&b).unwrap().to_vec::<f32>(), vec![4.0; 3]);
    /// ```
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Var {
        Var::from_op("broadcast_to", self.value().broadcast_to(shape), &[self], |ctx| {
            vec![Some(sum_to(ctx.grad, ctx.inputs[0].dims()))]
        })
    }

    /// `torch.expand`: broadcast where `-1` keeps a dimension.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::zeros(&[2, 1]));
    /// let y = x.expand(&[-1, 5]);   // x.expand(-1, 5)
    /// assert_eq!(y.dims(), &[2, 5]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![5.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn expand(&self, sizes: &[isize]) -> Var {
        let shape = self.value().expand(sizes).dims().to_vec();
        self.broadcast_to(&shape)
    }

    /// A contiguous copy if needed; the gradient passes unchanged.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::zeros(&[2, 3]));
    /// let y = x.t().contiguous();
    /// assert!(y.value().is_contiguous());
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![1.0; 6]);
    /// ```
    pub fn contiguous(&self) -> Var {
        if self.value().is_contiguous() {
            return self.clone();
        }
        Var::from_op("contiguous", self.value().contiguous(), &[self], |ctx| vec![Some(ctx.grad.clone())])
    }

    /// Concatenates along `dim`; each input gets its slice of the gradient.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::zeros(&[2]));
    /// let b = Var::leaf(Tensor::zeros(&[3]));
    /// let y = Var::cat(&[&a, &b], 0);   // torch.cat([a, b])
    /// assert_eq!(y.dims(), &[5]);
    /// let w = Var::constant(Tensor::arange(0.0, 5.0, 1.0));
    /// let g = y.mul(&w).sum_all().backward();   // each input gets its slice
    /// assert_eq!(g.get(&a).unwrap().to_vec::<f32>(), vec![0.0, 1.0]);
    /// assert_eq!(g.get(&b).unwrap().to_vec::<f32>(), vec![2.0, 3.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn cat(vars: &[&Var], dim: isize) -> Var {
        let tensors: Vec<&Tensor> = vars.iter().map(|v| v.value()).collect();
        let value = Tensor::cat(&tensors, dim);
        let d = normalize(dim, value.ndim());
        let sizes: Vec<usize> = vars.iter().map(|v| v.dims()[d]).collect();
        Var::from_op("cat", value, vars, move |ctx| {
            let mut start = 0;
            sizes
                .iter()
                .map(|&s| {
                    let piece = ctx.grad.narrow(d as isize, start, s);
                    start += s;
                    Some(piece)
                })
                .collect()
        })
    }

    /// Stacks along a new dimension `dim`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::zeros(&[2]));
    /// let b = Var::leaf(Tensor::zeros(&[2]));
    /// let y = Var::stack(&[&a, &b], 0);   // torch.stack([a, b])
    /// assert_eq!(y.dims(), &[2, 2]);
    /// let w = Var::constant(Tensor::arange(0.0, 4.0, 1.0).reshape(&[2, 2]));
    /// let g = y.mul(&w).sum_all().backward();
    /// assert_eq!(g.get(&b).unwrap().to_vec::<f32>(), vec![2.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn stack(vars: &[&Var], dim: isize) -> Var {
        let unsq: Vec<Var> = vars.iter().map(|v| v.unsqueeze(dim)).collect();
        let refs: Vec<&Var> = unsq.iter().collect();
        Var::cat(&refs, dim)
    }

    /// Splits into pieces of `size` along `dim` (views).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(0.0, 5.0, 1.0));
    /// let parts = x.split(2, 0);   // torch.split(x, 2)
    /// assert_eq!(parts.iter().map(|p| p.numel()).collect::<Vec<_>>(), vec![2, 2, 1]);
    /// let g = parts[1].sum_all().backward();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![0.0, 0.0, 1.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn split(&self, size: usize, dim: isize) -> Vec<Var> {
        self.split_like(&self.value().split(size, dim), dim)
    }

    /// Splits into pieces of the given sizes along `dim` (views).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(0.0, 4.0, 1.0));
    /// let parts = x.split_sizes(&[1, 3], 0);   // torch.split(x, [1, 3])
    /// assert_eq!(parts[1].value().to_vec::<f32>(), vec![1.0, 2.0, 3.0]);
    /// let g = parts[0].mul_scalar(5.0).sum_all().backward();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![5.0, 0.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn split_sizes(&self, sizes: &[usize], dim: isize) -> Vec<Var> {
        self.split_like(&self.value().split_sizes(sizes, dim), dim)
    }

    /// Narrows this variable into pieces laid out as `pieces`, the tensor crate's split of
    /// its value (which checks the arguments and decides the sizes).
    fn split_like(&self, pieces: &[Tensor], dim: isize) -> Vec<Var> {
        let d = normalize(dim, self.ndim());
        let mut start = 0;
        pieces
            .iter()
            .map(|p| {
                let len = p.dims()[d];
                let v = self.narrow(d as isize, start, len);
                start += len;
                v
            })
            .collect()
    }

    /// The elements where `mask` (broadcast to this shape) is non-zero, as a 1-D variable;
    /// the gradient flows back to those positions.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(-2.0, 2.0, 1.0));
    /// let y = x.masked_select(&x.value().ge_scalar(-1.0));   // x[x >= -1]
    /// assert_eq!(y.value().to_vec::<f32>(), vec![-1.0, 0.0, 1.0]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![0.0, 1.0, 1.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn masked_select(&self, mask: &Tensor) -> Var {
        let full = mask.broadcast_to(self.dims()).to_vec::<f64>();
        let picked: Vec<i64> =
            full.iter().enumerate().filter(|(_, m)| **m != 0.0).map(|(i, _)| i as i64).collect();
        let n = picked.len();
        let idx = Tensor::from_vec(picked, &[n]).expect("1-D");
        self.reshape(&[self.numel()]).index_select(0, &idx)
    }

    /// Converts to another float dtype; the gradient is converted back.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{DType, Tensor};
    /// let x = Var::leaf(Tensor::ones(&[2]));   // f32
    /// let y = x.to_dtype(DType::F64).mul_scalar(3.0);
    /// assert_eq!(y.dtype(), DType::F64);
    /// let g = y.sum_all().backward();
    /// let gx = g.get(&x).unwrap();   // converted back to x's dtype
    /// assert_eq!((gx.dtype(), gx.to_vec::<f32>()), (DType::F32, vec![3.0, 3.0]));
    /// ```
    #[track_caller]
    pub fn to_dtype(&self, dtype: DType) -> Var {
        if dtype == self.dtype() {
            return self.clone();
        }
        assert!(dtype.is_float(), "to_dtype: gradients need a float dtype, got {dtype}");
        let from = self.dtype();
        Var::from_op("to_dtype", self.value().to_dtype(dtype), &[self], move |ctx| {
            vec![Some(ctx.grad.to_dtype(from))]
        })
    }

    /// Splits into `chunks` nearly equal pieces along `dim`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// // an LSTM-style gate split: one [1, 6] projection into 3 gates of 2
    /// let x = Var::leaf(Tensor::arange(0.0, 6.0, 1.0).reshape(&[1, 6]));
    /// let gates = x.chunk(3, 1);   // x.chunk(3, 1)
    /// assert_eq!(gates[2].value().to_vec::<f32>(), vec![4.0, 5.0]);
    /// let g = gates[0].sum_all().backward();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn chunk(&self, chunks: usize, dim: isize) -> Vec<Var> {
        self.split_like(&self.value().chunk(chunks, dim), dim)
    }

    /// A constant of zeros of `shape` with this variable's dtype.
    pub(crate) fn zeros_shaped(&self, shape: &[usize]) -> Var {
        Var::constant(Tensor::zeros_dtype(shape, self.dtype()))
    }
}
