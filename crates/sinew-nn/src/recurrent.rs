//! Recurrent layers: [`Rnn`] (tanh or ReLU), [`Lstm`] and [`Gru`], multi-layer,
//! unidirectional or bidirectional, with PyTorch's gate order, parameter names and shapes,
//! so that a PyTorch `state_dict` of `nn.RNN` / `nn.LSTM` / `nn.GRU` loads unchanged.
//!
//! Every layer takes an input of shape `(T, N, input_size)` (or `(N, T, input_size)` with
//! `batch_first`, or an unbatched `(T, input_size)`) and an optional initial state of shape
//! `(D·num_layers, N, hidden_size)` (zeros when absent; `D` is 2 when bidirectional, else
//! 1). It returns the last layer's hidden state at every time step, `(T, N, D·hidden_size)`
//! (or `(N, T, D·hidden_size)`; a bidirectional layer's forward and reverse states side by
//! side), and the final state of every layer and direction, `(D·num_layers, N, hidden_size)`.
//!
//! The input projection `x·W_ihᵀ + b` of a layer is computed for all time steps in one
//! matrix product; only the hidden projection `h·W_hhᵀ` runs step by step.

use sinew_autograd::{Param, Var};
use sinew_tensor::{Generator, Tensor};

use crate::init;
use crate::module::{Forward, Module, Visitor};

/// The nonlinearity of an [`Rnn`] (PyTorch's `nonlinearity='tanh'` or `'relu'`).
///
/// ```
/// use sinew_nn::RnnNonlinearity;
/// assert_eq!(RnnNonlinearity::default(), RnnNonlinearity::Tanh);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RnnNonlinearity {
    /// `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (PyTorch's default).
    #[default]
    Tanh,
    /// `h' = relu(W_ih x + b_ih + W_hh h + b_hh)`.
    Relu,
}

/// How a recurrent layer is stacked and laid out: PyTorch's `num_layers`, `batch_first`
/// and `bidirectional` keyword arguments, with their defaults (1, `false`, `false`).
///
/// ```
/// use sinew_nn::{Lstm, RecurrentOptions};
/// use sinew_tensor::Generator;
/// // nn.LSTM(3, 5, num_layers=2, batch_first=True, bidirectional=True)
/// let options = RecurrentOptions::default().num_layers(2).batch_first(true).bidirectional(true);
/// let lstm = Lstm::new(3, 5, options, &mut Generator::new(0));
/// assert_eq!((lstm.num_layers(), lstm.batch_first(), lstm.bidirectional()), (2, true, true));
/// assert_eq!(RecurrentOptions::default(), RecurrentOptions { num_layers: 1, batch_first: false, bidirectional: false });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecurrentOptions {
    /// Number of stacked layers (at least 1).
    pub num_layers: usize,
    /// Inputs and outputs are `(N, T, features)` rather than `(T, N, features)`.
    pub batch_first: bool,
    /// Each layer also runs the sequence in reverse; outputs have `2·hidden_size` features,
    /// states `2·num_layers` rows, and the reverse parameters are named `..._reverse`.
    pub bidirectional: bool,
}

impl Default for RecurrentOptions {
    fn default() -> Self {
        RecurrentOptions { num_layers: 1, batch_first: false, bidirectional: false }
    }
}

impl RecurrentOptions {
    /// Sets [`num_layers`](Self::num_layers).
    ///
    /// ```
    /// use sinew_nn::{Gru, RecurrentOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// // nn.GRU(3, 4, num_layers=2): the final state has one row per layer
    /// let gru = Gru::new(3, 4, RecurrentOptions::default().num_layers(2), &mut Generator::new(0));
    /// let (out, h_n) = gru.forward_with_state(&Var::constant(Tensor::ones(&[5, 2, 3])), None); // (T, N, in)
    /// assert_eq!((out.dims(), h_n.dims()), (&[5, 2, 4][..], &[2, 2, 4][..]));
    /// assert_eq!(gru.weights().len(), 2);
    /// ```
    pub fn num_layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }

    /// Sets [`batch_first`](Self::batch_first).
    ///
    /// ```
    /// use sinew_nn::{Forward, Gru, RecurrentOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// let gru = Gru::new(3, 4, RecurrentOptions::default().batch_first(true), &mut Generator::new(0));
    /// // (N, T, in) -> (N, T, H)
    /// assert_eq!(gru.forward(&Var::constant(Tensor::ones(&[2, 5, 3]))).dims(), &[2, 5, 4]);
    /// ```
    pub fn batch_first(mut self, on: bool) -> Self {
        self.batch_first = on;
        self
    }

    /// Sets [`bidirectional`](Self::bidirectional).
    ///
    /// ```
    /// use sinew_nn::{Gru, RecurrentOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// let gru = Gru::new(3, 4, RecurrentOptions::default().bidirectional(true), &mut Generator::new(0));
    /// let (out, h_n) = gru.forward_with_state(&Var::constant(Tensor::ones(&[5, 2, 3])), None);
    /// // both directions' features side by side, and one final state per direction
    /// assert_eq!((out.dims(), h_n.dims()), (&[5, 2, 8][..], &[2, 2, 4][..]));
    /// assert_eq!(gru.weights()[1].weight_ih.name(), "weight_ih_l0_reverse");
    /// ```
    pub fn bidirectional(mut self, on: bool) -> Self {
        self.bidirectional = on;
        self
    }
}

/// The four parameters of one layer `k` of a recurrent module, under PyTorch's names:
/// `weight_ih_l{k}` `(gates·H, in)`, `weight_hh_l{k}` `(gates·H, H)`, `bias_ih_l{k}` and
/// `bias_hh_l{k}` `(gates·H)`, where `in` is `input_size` for layer 0 and `hidden_size`
/// above, and `gates` is 1 for [`Rnn`], 4 for [`Lstm`] (i, f, g, o) and 3 for [`Gru`]
/// (r, z, n).
///
/// ```
/// use sinew_nn::{Lstm, RecurrentOptions};
/// use sinew_tensor::Generator;
/// let lstm = Lstm::new(3, 5, RecurrentOptions::default().num_layers(2), &mut Generator::new(0));
/// let l1 = &lstm.weights()[1];
/// assert_eq!(l1.weight_ih.name(), "weight_ih_l1");
/// assert_eq!(l1.weight_ih.value().dims(), &[20, 5]);
/// ```
#[derive(Clone, Debug)]
pub struct RecurrentWeights {
    /// `weight_ih_l{k}`: input-to-hidden weights, `(gates·H, in)`.
    pub weight_ih: Param,
    /// `weight_hh_l{k}`: hidden-to-hidden weights, `(gates·H, H)`.
    pub weight_hh: Param,
    /// `bias_ih_l{k}`: input-to-hidden bias, `(gates·H)`.
    pub bias_ih: Param,
    /// `bias_hh_l{k}`: hidden-to-hidden bias, `(gates·H)`.
    pub bias_hh: Param,
}

impl RecurrentWeights {
    fn params(&self) -> [&Param; 4] {
        [&self.weight_ih, &self.weight_hh, &self.bias_ih, &self.bias_hh]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Rnn(RnnNonlinearity),
    Lstm,
    Gru,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Rnn(_) => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cell::Rnn(_) => "Rnn",
            Cell::Lstm => "Lstm",
            Cell::Gru => "Gru",
        }
    }
}

/// What the three layers share: configuration, weights and the time loop.
#[derive(Clone, Debug)]
struct Recurrent {
    cell: Cell,
    input_size: usize,
    hidden_size: usize,
    batch_first: bool,
    /// 1, or 2 when bidirectional.
    directions: usize,
    /// One entry per layer and direction: layer 0 forward, layer 0 reverse, layer 1 ...
    layers: Vec<RecurrentWeights>,
}

/// The result of a run: output, final hidden state, final cell state (LSTM only).
type RunOutput = (Var, Var, Option<Var>);

impl Recurrent {
    #[track_caller]
    fn new(
        cell: Cell,
        input_size: usize,
        hidden_size: usize,
        options: RecurrentOptions,
        g: &mut Generator,
    ) -> Self {
        let RecurrentOptions { num_layers, batch_first, bidirectional } = options;
        let name = cell.name();
        assert!(hidden_size > 0, "{name}: hidden_size must be positive, got {hidden_size}");
        assert!(num_layers > 0, "{name}: num_layers must be positive, got {num_layers}");
        let bound = 1.0 / (hidden_size as f64).sqrt();
        let rows = cell.gates() * hidden_size;
        let directions = if bidirectional { 2 } else { 1 };
        // PyTorch's order, in which it also initialises: per layer, forward then reverse
        let layers = (0..num_layers * directions)
            .map(|i| {
                let (k, suffix) = (i / directions, direction_suffix(i % directions));
                let fan_in = if k == 0 { input_size } else { hidden_size * directions };
                let mut make = |what: &str, shape: &[usize]| {
                    Param::new(format!("{what}_l{k}{suffix}"), init::uniform(shape, -bound, bound, g))
                };
                RecurrentWeights {
                    weight_ih: make("weight_ih", &[rows, fan_in]),
                    weight_hh: make("weight_hh", &[rows, hidden_size]),
                    bias_ih: make("bias_ih", &[rows]),
                    bias_hh: make("bias_hh", &[rows]),
                }
            })
            .collect();
        Recurrent { cell, input_size, hidden_size, batch_first, directions, layers }
    }

    fn num_layers(&self) -> usize {
        self.layers.len() / self.directions
    }

    /// PyTorch's `repr`: `Lstm(3, 5, num_layers=2, batch_first=True)`.
    fn describe(&self) -> String {
        format!("{}({})", self.cell.name(), self.extra_repr())
    }

    /// `3, 5, num_layers=2, batch_first=True`.
    fn extra_repr(&self) -> String {
        let mut s = format!("{}, {}", self.input_size, self.hidden_size);
        if self.num_layers() > 1 {
            s += &format!(", num_layers={}", self.num_layers());
        }
        if self.cell == Cell::Rnn(RnnNonlinearity::Relu) {
            s += ", nonlinearity='relu'";
        }
        if self.batch_first {
            s += ", batch_first=True";
        }
        if self.directions == 2 {
            s += ", bidirectional=True";
        }
        s
    }

    fn visit(&self, v: &mut dyn Visitor) {
        for (i, l) in self.layers.iter().enumerate() {
            let (k, suffix) = (i / self.directions, direction_suffix(i % self.directions));
            v.param(&format!("weight_ih_l{k}{suffix}"), &l.weight_ih);
            v.param(&format!("weight_hh_l{k}{suffix}"), &l.weight_hh);
            v.param(&format!("bias_ih_l{k}{suffix}"), &l.bias_ih);
            v.param(&format!("bias_hh_l{k}{suffix}"), &l.bias_hh);
        }
    }

    /// The parameters as variables of a new graph, in `named_parameters` order.
    fn param_vars(&self) -> Vec<Var> {
        self.layers.iter().flat_map(|l| l.params().map(Param::var)).collect()
    }

    /// Checks that `weights` match the parameters in number, shape and order.
    #[track_caller]
    fn check_weights(&self, weights: &[Var]) {
        let name = self.describe();
        let params: Vec<&Param> = self.layers.iter().flat_map(RecurrentWeights::params).collect();
        assert_eq!(
            weights.len(),
            params.len(),
            "{name}: expected {} weights (weight_ih, weight_hh, bias_ih, bias_hh per layer and direction), got {}",
            params.len(),
            weights.len()
        );
        for (w, p) in weights.iter().zip(params) {
            let want = p.value().dims().to_vec();
            assert!(
                w.dims() == want.as_slice(),
                "{name}: expected {} of shape {want:?}, got {:?}",
                p.name(),
                w.dims()
            );
        }
    }

    /// Runs every layer over the sequence with `weights` (4 per layer, in
    /// `named_parameters` order).
    #[track_caller]
    fn run(&self, weights: &[Var], x: &Var, h0: Option<&Var>, c0: Option<&Var>) -> RunOutput {
        let name = self.describe();
        let (isz, hsz, dirs) = (self.input_size, self.hidden_size, self.directions);
        let layout = if self.batch_first { format!("[N, T, {isz}]") } else { format!("[T, N, {isz}]") };
        assert!(
            (x.ndim() == 2 || x.ndim() == 3) && x.dims()[x.ndim() - 1] == isz,
            "{name}: expected input of shape {layout} (or unbatched [T, {isz}]), got {:?}",
            x.dims()
        );
        let batched = x.ndim() == 3;
        // time-major (T, N, in)
        let xs = if !batched {
            x.unsqueeze(1)
        } else if self.batch_first {
            x.transpose(0, 1)
        } else {
            x.clone()
        };
        let (steps, n) = (xs.dims()[0], xs.dims()[1]);
        assert!(steps > 0, "{name}: expected at least one time step, got input of shape {:?}", x.dims());
        let states = self.layers.len(); // layers × directions
        let state_shape = if batched { vec![states, n, hsz] } else { vec![states, hsz] };
        let h0 = check_state(&name, "h_0", h0, &state_shape, batched);
        let c0 = check_state(&name, "c_0", c0, &state_shape, batched);
        let zeros = || Var::constant(Tensor::zeros_dtype(&[n, hsz], x.dtype()));
        // the reverse direction reads the sequence backwards and writes its outputs back
        // in time order
        let backwards = Tensor::from_vec((0..steps as i64).rev().collect::<Vec<_>>(), &[steps])
            .expect("one index per step");
        let reverse_time = |v: &Var| v.index_select(0, &backwards);

        let mut input = xs;
        let (mut h_n, mut c_n) = (Vec::with_capacity(states), Vec::with_capacity(states));
        for layer in weights.chunks(4 * dirs) {
            let mut outputs = Vec::with_capacity(dirs);
            for w in layer.chunks(4) {
                let s = h_n.len(); // index of this layer and direction in the states
                let reverse = s % dirs == 1;
                let seq = if reverse { reverse_time(&input) } else { input.clone() };
                let h = h0.as_ref().map_or_else(zeros, |h| h.select(0, s));
                // a cell state only for the LSTM
                let c = (self.cell == Cell::Lstm).then(|| c0.as_ref().map_or_else(zeros, |c| c.select(0, s)));
                let (out, h_last, c_last) = self.run_direction(w, &seq, h, c);
                outputs.push(if reverse { reverse_time(&out) } else { out });
                h_n.push(h_last);
                c_n.extend(c_last);
            }
            let refs: Vec<&Var> = outputs.iter().collect();
            input = if dirs == 1 { outputs[0].clone() } else { Var::cat(&refs, 2) };
        }
        let stack = |v: &[Var]| {
            let refs: Vec<&Var> = v.iter().collect();
            let s = Var::stack(&refs, 0);
            if batched { s } else { s.squeeze_dim(1) }
        };
        let output = if !batched {
            input.squeeze_dim(1)
        } else if self.batch_first {
            input.transpose(0, 1)
        } else {
            input
        };
        let c_n = (self.cell == Cell::Lstm).then(|| stack(&c_n));
        (output, stack(&h_n), c_n)
    }

    /// One layer in one direction over the time-major sequence `seq` (`(T, N, in)`), from
    /// states `h` and `c` (`c` used by the LSTM only), with weights `w_ih, w_hh, b_ih,
    /// b_hh`: the outputs `(T, N, H)`, the last hidden state and (LSTM) the last cell state.
    fn run_direction(&self, w: &[Var], seq: &Var, h: Var, c: Option<Var>) -> (Var, Var, Option<Var>) {
        let (w_ih, w_hh, b_ih, b_hh) = (&w[0], &w[1], &w[2], &w[3]);
        let (steps, n, fan_in) = (seq.dims()[0], seq.dims()[1], seq.dims()[2]);
        let hsz = self.hidden_size;
        let rows = self.cell.gates() * hsz;
        // Biases that simply add are folded into the input projection; GRU keeps b_hn
        // apart, since the reset gate multiplies it.
        let bias = match self.cell {
            Cell::Gru => {
                let b_hn_zero = Var::constant(Tensor::zeros_dtype(&[hsz], b_hh.dtype()));
                b_ih + &Var::cat(&[&b_hh.narrow(0, 0, 2 * hsz), &b_hn_zero], 0)
            }
            _ => b_ih + b_hh,
        };
        let projected =
            (&seq.reshape(&[steps * n, fan_in]).matmul(&w_ih.t()) + &bias).reshape(&[steps, n, rows]);
        match self.cell {
            Cell::Lstm => {
                // The whole layer as one op: one loop forward, backpropagation through
                // time in one kernel (see `Var::lstm_sequence`).
                let c = c.expect("an LSTM has a cell state");
                let (out, h_last, c_last) = Var::lstm_sequence(&projected, w_hh, &h, &c);
                (out, h_last, Some(c_last))
            }
            Cell::Gru => {
                // likewise one op (see `Var::gru_sequence`)
                let b_hn = b_hh.narrow(0, 2 * hsz, hsz);
                let (out, h_last) = Var::gru_sequence(&projected, w_hh, &b_hn, &h);
                (out, h_last, None)
            }
            Cell::Rnn(nonlinearity) => {
                // Each step's input projection is a slice of `projected`; a first-order
                // backward adds the slices' gradients into one buffer in place (see the
                // autograd engine).
                let w_hh_t = w_hh.t();
                let mut h = h;
                let mut outputs = Vec::with_capacity(steps);
                for t in 0..steps {
                    let z = &projected.select(0, t) + &h.matmul(&w_hh_t);
                    h = match nonlinearity {
                        RnnNonlinearity::Tanh => z.tanh(),
                        RnnNonlinearity::Relu => z.relu(),
                    };
                    outputs.push(h.clone());
                }
                let refs: Vec<&Var> = outputs.iter().collect();
                (Var::stack(&refs, 0), h, None)
            }
        }
    }
}

/// `""` for the forward direction, `"_reverse"` for the reverse one (PyTorch's names).
fn direction_suffix(direction: usize) -> &'static str {
    if direction == 1 { "_reverse" } else { "" }
}

/// Checks an initial state's shape; an unbatched state `(L, H)` becomes `(L, 1, H)`.
#[track_caller]
fn check_state(name: &str, what: &str, s: Option<&Var>, shape: &[usize], batched: bool) -> Option<Var> {
    let s = s?;
    assert!(s.dims() == shape, "{name}: expected {what} of shape {shape:?}, got {:?}", s.dims());
    Some(if batched { s.clone() } else { s.unsqueeze(1) })
}

macro_rules! common_methods {
    ($ty:ident) => {
        impl $ty {
            /// Features of each input step.
            pub fn input_size(&self) -> usize {
                self.inner.input_size
            }

            /// Features of the hidden state `H`.
            pub fn hidden_size(&self) -> usize {
                self.inner.hidden_size
            }

            /// Number of stacked layers.
            pub fn num_layers(&self) -> usize {
                self.inner.num_layers()
            }

            /// Whether each layer also runs the sequence in reverse (PyTorch's `bidirectional`).
            pub fn bidirectional(&self) -> bool {
                self.inner.directions == 2
            }

            /// Whether inputs and outputs are `(N, T, features)` rather than `(T, N, features)`.
            pub fn batch_first(&self) -> bool {
                self.inner.batch_first
            }

            /// The parameters of each layer, bottom first; for a bidirectional layer its
            /// forward direction, then its reverse one.
            pub fn weights(&self) -> &[RecurrentWeights] {
                &self.inner.layers
            }
        }

        impl Module for $ty {
            fn visit(&self, v: &mut dyn Visitor) {
                self.inner.visit(v);
            }
            fn extra_repr(&self) -> String {
                self.inner.extra_repr()
            }
        }

        impl Forward for $ty {
            /// The output at every time step, from a zero initial state.
            #[track_caller]
            fn forward(&self, x: &Var) -> Var {
                crate::hooks::observed(self, self.inner.run(&self.inner.param_vars(), x, None, None).0)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.inner.describe())
            }
        }
    };
}

/// A multi-layer Elman RNN (`nn.RNN`): `h_t = tanh(x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh)`
/// (or ReLU), each layer's outputs the next layer's inputs. Weights and biases are
/// initialised `U(-1/√H, 1/√H)`, as in PyTorch; see [`RecurrentWeights`] for names and
/// shapes.
///
/// # Panics
/// The forward methods panic with the layer's description and both shapes if the input is
/// not `[T, N, input_size]` (`[N, T, input_size]` with `batch_first`, or `[T, input_size]`
/// unbatched), has no time steps, or the initial state is not `[num_layers, N, H]`.
///
/// ```
/// use sinew_nn::{Forward, Module, RecurrentOptions, Rnn, RnnNonlinearity};
/// use sinew_autograd::Var;
/// use sinew_tensor::{DType, Generator, Tensor};
/// let mut g = Generator::new(0);
/// let rnn = Rnn::new(3, 5, RnnNonlinearity::Tanh, RecurrentOptions::default().num_layers(2).batch_first(true), &mut g);
/// let x = Var::constant(Tensor::randn_with(&[4, 7, 3], DType::F32, &mut g)); // (N, T, in)
/// let (out, h_n) = rnn.forward_with_state(&x, None);
/// assert_eq!(out.dims(), &[4, 7, 5]);
/// assert_eq!(h_n.dims(), &[2, 4, 5]);
/// assert_eq!(rnn.forward(&x).dims(), &[4, 7, 5]);
/// assert_eq!(rnn.named_parameters()[1].0, "weight_hh_l0");
/// ```
#[derive(Clone, Debug)]
pub struct Rnn {
    inner: Recurrent,
    nonlinearity: RnnNonlinearity,
}

impl Rnn {
    /// A stack of RNN layers from `input_size` to `hidden_size` features
    /// (`nn.RNN(input_size, hidden_size, nonlinearity=..., **options)`).
    ///
    /// # Panics
    /// If `hidden_size` or `options.num_layers` is zero.
    ///
    /// ```
    /// use sinew_nn::{Forward, RecurrentOptions, Rnn, RnnNonlinearity};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// // nn.RNN(1, 1) with w_ih = 1 and everything else 0: h_t = tanh(x_t)
    /// let rnn = Rnn::new(1, 1, RnnNonlinearity::Tanh, RecurrentOptions::default(), &mut Generator::new(0));
    /// let w = &rnn.weights()[0];
    /// w.weight_ih.set_value(Tensor::ones(&[1, 1]));
    /// w.weight_hh.set_value(Tensor::zeros(&[1, 1]));
    /// w.bias_ih.set_value(Tensor::zeros(&[1]));
    /// w.bias_hh.set_value(Tensor::zeros(&[1]));
    /// let x = Tensor::from_vec(vec![0.5f32, -1.0, 2.0], &[3, 1, 1])?; // (T, N, in)
    /// let y = rnn.forward(&Var::constant(x.clone()));
    /// assert!(y.value().allclose(&x.tanh(), 1e-6, 1e-7));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        nonlinearity: RnnNonlinearity,
        options: RecurrentOptions,
        g: &mut Generator,
    ) -> Self {
        let inner = Recurrent::new(Cell::Rnn(nonlinearity), input_size, hidden_size, options, g);
        Rnn { inner, nonlinearity }
    }

    /// The nonlinearity.
    pub fn nonlinearity(&self) -> RnnNonlinearity {
        self.nonlinearity
    }

    /// Runs the sequence from initial state `h0` (`(D·num_layers, N, H)`, `D` = 2 when
    /// bidirectional; zeros when `None`): returns the last layer's output at every step
    /// and the final state `h_n` `(D·num_layers, N, H)`.
    ///
    /// ```
    /// use sinew_nn::{RecurrentOptions, Rnn, RnnNonlinearity};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// let rnn = Rnn::new(2, 3, RnnNonlinearity::Relu, RecurrentOptions::default(), &mut Generator::new(0));
    /// let x = Var::constant(Tensor::ones(&[6, 1, 2])); // (T, N, in)
    /// let h0 = Var::constant(Tensor::zeros(&[1, 1, 3]));
    /// let (out, h_n) = rnn.forward_with_state(&x, Some(&h0));
    /// // the final state is the last output
    /// assert_eq!(out.value().select(0, 5).to_vec::<f32>(), h_n.value().select(0, 0).to_vec::<f32>());
    /// ```
    #[track_caller]
    pub fn forward_with_state(&self, x: &Var, h0: Option<&Var>) -> (Var, Var) {
        let (out, h_n, _) = self.inner.run(&self.inner.param_vars(), x, h0, None);
        (out, h_n)
    }

    /// [`Rnn::forward_with_state`] with `weights` in place of the parameters (PyTorch's
    /// `torch.func.functional_call`): one variable per parameter, in `named_parameters`
    /// order and with the same shapes. Gradients flow to `weights`, not to the parameters.
    ///
    /// # Panics
    /// If the number or shapes of `weights` differ from the parameters.
    ///
    /// ```
    /// use sinew_nn::{Module, RecurrentOptions, Rnn, RnnNonlinearity};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// let rnn = Rnn::new(2, 3, RnnNonlinearity::Tanh, RecurrentOptions::default(), &mut Generator::new(0));
    /// let w: Vec<Var> = rnn.parameters().iter().map(|p| Var::leaf(p.value().clone())).collect();
    /// let (out, _) = rnn.forward_with_weights(&w, &Var::constant(Tensor::ones(&[4, 2, 2])), None);
    /// let grads = out.sum_all().backward();
    /// assert!(w.iter().all(|w| grads.get(w).is_some()));
    /// ```
    #[track_caller]
    pub fn forward_with_weights(&self, weights: &[Var], x: &Var, h0: Option<&Var>) -> (Var, Var) {
        self.inner.check_weights(weights);
        let (out, h_n, _) = self.inner.run(weights, x, h0, None);
        (out, h_n)
    }
}

common_methods!(Rnn);

/// A multi-layer long short-term memory (`nn.LSTM`). For each step, with PyTorch's gate
/// order i, f, g, o in the rows of the weights:
///
/// ```text
/// i = σ(W_ii x + b_ii + W_hi h + b_hi)     f = σ(W_if x + b_if + W_hf h + b_hf)
/// g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = σ(W_io x + b_io + W_ho h + b_ho)
/// c' = f·c + i·g                            h' = o·tanh(c')
/// ```
///
/// Weights and biases are initialised `U(-1/√H, 1/√H)`; see [`RecurrentWeights`].
///
/// # Panics
/// The forward methods panic with the layer's description and both shapes if the input is
/// not `[T, N, input_size]` (`[N, T, input_size]` with `batch_first`, or `[T, input_size]`
/// unbatched), has no time steps, or a state is not `[num_layers, N, H]`.
///
/// ```
/// use sinew_nn::{Forward, Lstm, Module, RecurrentOptions};
/// use sinew_autograd::Var;
/// use sinew_tensor::{DType, Generator, Tensor};
/// let mut g = Generator::new(0);
/// let lstm = Lstm::new(3, 5, RecurrentOptions::default().num_layers(2).batch_first(true), &mut g);
/// let x = Var::constant(Tensor::randn_with(&[4, 7, 3], DType::F32, &mut g)); // (N, T, in)
/// let (out, (h_n, c_n)) = lstm.forward_with_state(&x, None);
/// assert_eq!(out.dims(), &[4, 7, 5]);
/// assert_eq!((h_n.dims(), c_n.dims()), (&[2, 4, 5][..], &[2, 4, 5][..]));
/// // PyTorch's parameter names and shapes
/// let names: Vec<String> = lstm.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names[..4], ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]);
/// assert_eq!(lstm.num_parameters(), (20 * 3 + 20 * 5 + 40) + (20 * 5 + 20 * 5 + 40));
///
/// // bidirectional: a reverse direction per layer, named `..._reverse`
/// let bi = Lstm::new(3, 5, RecurrentOptions::default().num_layers(2).batch_first(true).bidirectional(true), &mut g);
/// let (out, (h_n, c_n)) = bi.forward_with_state(&x, None);
/// assert_eq!((out.dims(), h_n.dims(), c_n.dims()), (&[4, 7, 10][..], &[4, 4, 5][..], &[4, 4, 5][..]));
/// assert_eq!(bi.named_parameters()[4].0, "weight_ih_l0_reverse");
/// assert_eq!(bi.to_string(), "Lstm(3, 5, num_layers=2, batch_first=True, bidirectional=True)");
/// ```
#[derive(Clone, Debug)]
pub struct Lstm {
    inner: Recurrent,
}

impl Lstm {
    /// A stack of LSTM layers from `input_size` to `hidden_size` features
    /// (`nn.LSTM(input_size, hidden_size, **options)`).
    ///
    /// # Panics
    /// If `hidden_size` or `options.num_layers` is zero.
    ///
    /// ```
    /// use sinew_nn::{Forward, Lstm, RecurrentOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// // nn.LSTM(1, 1), gates (i, f, g, o) in PyTorch's order: zero weights, cell-gate bias 1
    /// let lstm = Lstm::new(1, 1, RecurrentOptions::default(), &mut Generator::new(0));
    /// let w = &lstm.weights()[0];
    /// assert_eq!(w.weight_ih.value().dims(), &[4, 1]);
    /// w.weight_ih.set_value(Tensor::zeros(&[4, 1]));
    /// w.weight_hh.set_value(Tensor::zeros(&[4, 1]));
    /// w.bias_ih.set_value(Tensor::from_vec(vec![0.0f32, 0.0, 1.0, 0.0], &[4])?);
    /// w.bias_hh.set_value(Tensor::zeros(&[4]));
    /// let h = lstm.forward(&Var::constant(Tensor::zeros(&[1, 1, 1]))).value().item();
    /// // i = f = o = σ(0) = ½, g = tanh(1): c = ½·tanh(1), h = ½·tanh(c)
    /// let c = 0.5 * 1f64.tanh();
    /// assert!((h - 0.5 * c.tanh()).abs() < 1e-6);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn new(input_size: usize, hidden_size: usize, options: RecurrentOptions, g: &mut Generator) -> Self {
        Lstm { inner: Recurrent::new(Cell::Lstm, input_size, hidden_size, options, g) }
    }

    /// Runs the sequence from the initial state `(h_0, c_0)` (each `(D·num_layers, N, H)`,
    /// `D` = 2 when bidirectional; zeros when `None`): returns the last layer's output at
    /// every step and the final state `(h_n, c_n)`, each `(D·num_layers, N, H)`.
    ///
    /// ```
    /// use sinew_nn::{Lstm, RecurrentOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// let lstm = Lstm::new(2, 3, RecurrentOptions::default(), &mut Generator::new(0));
    /// let x = Var::constant(Tensor::ones(&[8, 2, 2])); // (T, N, in)
    /// // running in two halves, carrying the state, is running it whole
    /// let (whole, _) = lstm.forward_with_state(&x, None);
    /// let (_, (h, c)) = lstm.forward_with_state(&x.narrow(0, 0, 4), None);
    /// let (second, _) = lstm.forward_with_state(&x.narrow(0, 4, 4), Some((&h, &c)));
    /// assert!(second.value().allclose(&whole.value().narrow(0, 4, 4), 1e-6, 1e-6));
    /// ```
    #[track_caller]
    pub fn forward_with_state(&self, x: &Var, state: Option<(&Var, &Var)>) -> (Var, (Var, Var)) {
        self.run(&self.inner.param_vars(), x, state)
    }

    /// [`Lstm::forward_with_state`] with `weights` in place of the parameters (PyTorch's
    /// `torch.func.functional_call`): one variable per parameter, in `named_parameters`
    /// order and with the same shapes. Gradients flow to `weights`, not to the parameters.
    ///
    /// # Panics
    /// If the number or shapes of `weights` differ from the parameters.
    ///
    /// ```
    /// use sinew_nn::{Lstm, Module, RecurrentOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// let lstm = Lstm::new(2, 3, RecurrentOptions::default().num_layers(2), &mut Generator::new(0));
    /// let w: Vec<Var> = lstm.parameters().iter().map(|p| Var::leaf(p.value().clone())).collect();
    /// let (out, _) = lstm.forward_with_weights(&w, &Var::constant(Tensor::ones(&[4, 2, 2])), None);
    /// let grads = out.sum_all().backward();
    /// assert_eq!(grads.get(&w[4]).unwrap().dims(), &[12, 3]); // weight_ih_l1
    /// ```
    #[track_caller]
    pub fn forward_with_weights(
        &self,
        weights: &[Var],
        x: &Var,
        state: Option<(&Var, &Var)>,
    ) -> (Var, (Var, Var)) {
        self.inner.check_weights(weights);
        self.run(weights, x, state)
    }

    #[track_caller]
    fn run(&self, weights: &[Var], x: &Var, state: Option<(&Var, &Var)>) -> (Var, (Var, Var)) {
        let (h0, c0) = state.unzip();
        let (out, h_n, c_n) = self.inner.run(weights, x, h0, c0);
        (out, (h_n, c_n.expect("an LSTM returns its cell state")))
    }
}

common_methods!(Lstm);

/// A multi-layer gated recurrent unit (`nn.GRU`). For each step, with PyTorch's gate order
/// r, z, n in the rows of the weights:
///
/// ```text
/// r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n = tanh(W_in x + b_in + r·(W_hn h + b_hn))
/// h' = (1 - z)·n + z·h
/// ```
///
/// Weights and biases are initialised `U(-1/√H, 1/√H)`; see [`RecurrentWeights`].
///
/// # Panics
/// The forward methods panic with the layer's description and both shapes if the input is
/// not `[T, N, input_size]` (`[N, T, input_size]` with `batch_first`, or `[T, input_size]`
/// unbatched), has no time steps, or the initial state is not `[num_layers, N, H]`.
///
/// ```
/// use sinew_nn::{Forward, Gru, RecurrentOptions};
/// use sinew_autograd::Var;
/// use sinew_tensor::{DType, Generator, Tensor};
/// let mut g = Generator::new(0);
/// let gru = Gru::new(3, 5, RecurrentOptions::default().num_layers(2), &mut g);
/// let x = Var::constant(Tensor::randn_with(&[7, 4, 3], DType::F32, &mut g)); // (T, N, in)
/// let (out, h_n) = gru.forward_with_state(&x, None);
/// assert_eq!(out.dims(), &[7, 4, 5]);
/// assert_eq!(h_n.dims(), &[2, 4, 5]);
/// assert_eq!(gru.weights()[0].weight_hh.value().dims(), &[15, 5]);
/// ```
#[derive(Clone, Debug)]
pub struct Gru {
    inner: Recurrent,
}

impl Gru {
    /// A stack of GRU layers from `input_size` to `hidden_size` features
    /// (`nn.GRU(input_size, hidden_size, **options)`).
    ///
    /// # Panics
    /// If `hidden_size` or `options.num_layers` is zero.
    ///
    /// ```
    /// use sinew_nn::{Forward, Gru, RecurrentOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// // nn.GRU(1, 1), gates (r, z, n) in PyTorch's order: zero weights, new-gate bias 1
    /// let gru = Gru::new(1, 1, RecurrentOptions::default(), &mut Generator::new(0));
    /// let w = &gru.weights()[0];
    /// assert_eq!(w.weight_ih.value().dims(), &[3, 1]);
    /// w.weight_ih.set_value(Tensor::zeros(&[3, 1]));
    /// w.weight_hh.set_value(Tensor::zeros(&[3, 1]));
    /// w.bias_ih.set_value(Tensor::from_vec(vec![0.0f32, 0.0, 1.0], &[3])?);
    /// w.bias_hh.set_value(Tensor::zeros(&[3]));
    /// let h = gru.forward(&Var::constant(Tensor::zeros(&[1, 1, 1]))).value().item();
    /// // z = σ(0) = ½, n = tanh(1), h' = (1 - z)·n + z·h = ½·tanh(1)
    /// assert!((h - 0.5 * 1f64.tanh()).abs() < 1e-6);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn new(input_size: usize, hidden_size: usize, options: RecurrentOptions, g: &mut Generator) -> Self {
        Gru { inner: Recurrent::new(Cell::Gru, input_size, hidden_size, options, g) }
    }

    /// Runs the sequence from initial state `h0` (`(D·num_layers, N, H)`, `D` = 2 when
    /// bidirectional; zeros when `None`): returns the last layer's output at every step
    /// and the final state `h_n` `(D·num_layers, N, H)`.
    ///
    /// ```
    /// use sinew_nn::{Gru, RecurrentOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// let gru = Gru::new(2, 3, RecurrentOptions::default(), &mut Generator::new(0));
    /// let x = Var::constant(Tensor::ones(&[5, 2])); // unbatched (T, in)
    /// let (out, h_n) = gru.forward_with_state(&x, Some(&Var::constant(Tensor::zeros(&[1, 3]))));
    /// assert_eq!((out.dims(), h_n.dims()), (&[5, 3][..], &[1, 3][..]));
    /// ```
    #[track_caller]
    pub fn forward_with_state(&self, x: &Var, h0: Option<&Var>) -> (Var, Var) {
        let (out, h_n, _) = self.inner.run(&self.inner.param_vars(), x, h0, None);
        (out, h_n)
    }

    /// [`Gru::forward_with_state`] with `weights` in place of the parameters (PyTorch's
    /// `torch.func.functional_call`): one variable per parameter, in `named_parameters`
    /// order and with the same shapes. Gradients flow to `weights`, not to the parameters.
    ///
    /// # Panics
    /// If the number or shapes of `weights` differ from the parameters.
    ///
    /// ```
    /// use sinew_nn::{Gru, Module, RecurrentOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// let gru = Gru::new(2, 3, RecurrentOptions::default(), &mut Generator::new(0));
    /// let w: Vec<Var> = gru.parameters().iter().map(|p| Var::leaf(p.value().clone())).collect();
    /// let (_, h_n) = gru.forward_with_weights(&w, &Var::constant(Tensor::ones(&[4, 2, 2])), None);
    /// assert!(h_n.sum_all().backward().get(&w[3]).is_some()); // bias_hh_l0
    /// ```
    #[track_caller]
    pub fn forward_with_weights(&self, weights: &[Var], x: &Var, h0: Option<&Var>) -> (Var, Var) {
        self.inner.check_weights(weights);
        let (out, h_n, _) = self.inner.run(weights, x, h0, None);
        (out, h_n)
    }
}

common_methods!(Gru);
