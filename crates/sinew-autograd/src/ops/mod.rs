//! The differentiable ops on [`Var`](crate::Var), one module per family, each op's
//! forward and backward rule side by side.

mod attention;
mod batch_norm;
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

use crate::Var;

/// The gradients of `output` (a graph of `Var` ops over `inputs`) for the upstream
/// `grad`, as a graph itself: how a fused op's `create_graph` backward differentiates its
/// unfused form.
fn vjp_through(output: &Var, grad: &Var, inputs: &[&Var]) -> Vec<Option<Var>> {
    let grads = output.backward_pass().grad_output(grad.clone()).create_graph(true).retain(inputs).run();
    inputs.iter().map(|v| grads.get_var(v).cloned()).collect()
}
