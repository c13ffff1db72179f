//! Numeric kernels on plain slices: GEMM, convolution and pooling.

pub mod conv;
pub mod gemm;
pub mod pool;
