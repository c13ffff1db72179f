//! The differentiable ops on [`Var`](crate::Var), one module per family, each op's
//! forward and backward rule side by side.

mod binary;
mod conv;
mod index;
mod linalg;
mod matmul;
mod norm;
mod recurrent;
mod reduce;
mod shape;
mod unary;

pub(crate) use shape::sum_to;
