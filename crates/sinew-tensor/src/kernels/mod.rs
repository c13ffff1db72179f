//! Numeric kernels on plain slices: GEMM, convolution, pooling and the fused LSTM cell.

pub mod conv;
pub mod gemm;
pub mod pool;
pub mod recurrent;
