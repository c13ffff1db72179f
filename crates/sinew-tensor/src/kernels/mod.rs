//! Numeric kernels on plain slices: GEMM, dense decompositions (LU, Cholesky, QR, SVD,
//! symmetric eigendecomposition), convolution, pooling, the fused LSTM cell, and layer
//! normalisation and softmax with their gradients.
//! Crate-internal: `Tensor`'s methods check shapes and call them. Only the GEMM's choice
//! of parallelism is public, so that benchmarks can call faer directly with the same one.

pub(crate) mod attention;
pub(crate) mod batch_norm;
pub(crate) mod conv;
pub mod gemm;
pub(crate) mod lanes;
pub(crate) mod linalg;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod recurrent;
