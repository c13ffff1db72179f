//! Metrics accumulated over batches: [`Accuracy`], [`TopKAccuracy`], [`Precision`],
//! [`Recall`], [`F1`] (macro and per class), [`ConfusionMatrix`], [`Mae`], [`R2`].
//!
//! Classification metrics read predictions as scores: logits or probabilities of shape
//! `(N, C)` (the arg-max is the class), or a single column `(N)`/`(N, 1)` for binary
//! problems, where a score strictly above the metric's *binary threshold* is class 1. The
//! threshold defaults to [`DEFAULT_BINARY_THRESHOLD`] = 0, right for logits (what
//! [`Loss::BinaryCrossEntropyWithLogits`](crate::Loss::BinaryCrossEntropyWithLogits)
//! trains); for probabilities out of a sigmoid set it to 0.5 with `binary_threshold(0.5)`.
//! Targets are class indices (`i64` or float).
//!
//! `&mut M` and `Box<M>` are metrics when `M` is, so a metric can be lent to
//! [`Trainer::metric`](crate::Trainer::metric) and read after `fit`.

use sinew_tensor::{DType, Tensor};

/// The binary threshold classification metrics use unless told otherwise: 0, for logits.
pub const DEFAULT_BINARY_THRESHOLD: f64 = 0.0;

/// A quantity accumulated over the batches of an epoch.
pub trait Metric: Send {
    /// Its name in logs and history (`accuracy`, `f1`, ...).
    fn name(&self) -> String;
    /// Forgets everything (start of an epoch).
    fn reset(&mut self);
    /// Adds one batch of predictions and targets.
    fn update(&mut self, predictions: &Tensor, targets: &Tensor);
    /// The value over everything added since the last reset.
    fn value(&self) -> f64;
    /// The sums the value is computed from (counts of correct predictions and of
    /// samples, a confusion matrix, a sum of errors), so that the ranks of a data-parallel
    /// run can add theirs up and get the value over all their samples exactly, rather than
    /// an average of averages. `None` (the default) if the value cannot be combined that
    /// way; such a metric cannot be used by a data-parallel `fit`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// use sinew_train::metrics::{Accuracy, Metric};
    /// // two ranks' halves of one set of predictions
    /// let (mut a, mut b) = (Accuracy::default(), Accuracy::default());
    /// a.update(&Tensor::from([[1.0f32, 0.0]]), &Tensor::from(vec![0i64]));
    /// b.update(&Tensor::from([[1.0f32, 0.0], [0.0, 1.0], [1.0, 0.0]]), &Tensor::from(vec![0i64, 0, 1]));
    /// let sums: Vec<f64> = a.accumulators().unwrap().iter().zip(b.accumulators().unwrap()).map(|(x, y)| x + y).collect();
    /// a.set_accumulators(&sums);
    /// assert_eq!(a.value(), 0.5); // 2 of 4, not the mean of 1/1 and 1/3
    /// ```
    fn accumulators(&self) -> Option<Vec<f64>> {
        None
    }
    /// Replaces the sums with `values`, as many as [`accumulators`](Metric::accumulators)
    /// returns (the sums over all the ranks).
    ///
    /// # Panics
    /// If `values` has the wrong length, or the metric has no accumulators.
    fn set_accumulators(&mut self, values: &[f64]) {
        let _ = values;
        panic!("metric `{}` has no accumulators to set", self.name());
    }
}

/// Reads `N` sums back into counters.
#[track_caller]
fn counts<const N: usize>(name: &str, values: &[f64]) -> [f64; N] {
    values.try_into().unwrap_or_else(|_| panic!("{name}: expected {N} accumulators, got {}", values.len()))
}

/// `Metric` for a pointer to a metric (`&mut M`, `Box<M>`), forwarding every method.
macro_rules! forward_metric {
    ($(#[$doc:meta])* $ptr:ty) => {
        $(#[$doc])*
        impl<M: Metric + ?Sized> Metric for $ptr {
            fn name(&self) -> String {
                (**self).name()
            }
            fn reset(&mut self) {
                (**self).reset()
            }
            fn update(&mut self, predictions: &Tensor, targets: &Tensor) {
                (**self).update(predictions, targets)
            }
            fn value(&self) -> f64 {
                (**self).value()
            }
            fn accumulators(&self) -> Option<Vec<f64>> {
                (**self).accumulators()
            }
            fn set_accumulators(&mut self, values: &[f64]) {
                (**self).set_accumulators(values)
            }
        }
    };
}

forward_metric!(
    /// A borrowed metric is a metric: lend one to [`Trainer::metric`](crate::Trainer::metric)
    /// and read it after `fit` (it holds the last evaluation's value: the validation data's
    /// when there is validation, else the last training epoch's).
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// use sinew_train::metrics::{Mae, Metric};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    ///
    /// let mut g = Generator::new(0);
    /// let x = Tensor::randn_with(&[64, 2], DType::F32, &mut g);
    /// let y = x.sum(&[1], true);
    /// let model = Linear::new(2, 1, &mut g);
    /// let mut opt = Sgd::new(model.parameters(), 0.1);
    /// let mut mae = Mae::default();
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(5)
    ///     .metric(&mut mae)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &y);
    /// assert_eq!(mae.value(), history.get("mae")[4]);
    /// ```
    &mut M
);

forward_metric!(
    /// A boxed metric is a metric.
    Box<M>
);

/// Predicted classes from scores: arg-max over the last dimension, or `score > 0` for a
/// single column ([`predicted_classes_with_threshold`] with
/// [`DEFAULT_BINARY_THRESHOLD`]).
///
/// ```
/// use sinew_tensor::Tensor;
/// use sinew_train::metrics::predicted_classes;
/// let logits = Tensor::from_vec(vec![1.5f32, -0.2, 0.0], &[3, 1])?;
/// assert_eq!(predicted_classes(&logits), vec![1, 0, 0]);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
pub fn predicted_classes(predictions: &Tensor) -> Vec<i64> {
    predicted_classes_with_threshold(predictions, DEFAULT_BINARY_THRESHOLD)
}

/// Predicted classes from scores: arg-max over the last dimension of `(N, C)` scores with
/// `C > 1`; for a single column (`(N)` or `(N, 1)`), 1 where the score is strictly above
/// `threshold`, else 0.
///
/// ```
/// use sinew_tensor::Tensor;
/// use sinew_train::metrics::predicted_classes_with_threshold;
/// let probabilities = Tensor::from_vec(vec![0.9f32, 0.3, 0.5], &[3])?;
/// assert_eq!(predicted_classes_with_threshold(&probabilities, 0.5), vec![1, 0, 0]);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
pub fn predicted_classes_with_threshold(predictions: &Tensor, threshold: f64) -> Vec<i64> {
    let single = predictions.ndim() == 1 || predictions.dims()[predictions.ndim() - 1] == 1;
    if single {
        predictions.to_dtype(DType::F64).to_vec::<f64>().iter().map(|&v| i64::from(v > threshold)).collect()
    } else {
        predictions.argmax(-1, false).to_vec::<i64>()
    }
}

fn classes(targets: &Tensor) -> Vec<i64> {
    targets.to_dtype(DType::F64).to_vec::<f64>().iter().map(|&v| v.round() as i64).collect()
}

/// The fraction of correct class predictions.
///
/// ```
/// use sinew_train::metrics::{Accuracy, Metric};
/// use sinew_tensor::Tensor;
/// let mut acc = Accuracy::default();
/// let logits = Tensor::from_vec(vec![2.0f32, 1.0, 0.0, 3.0], &[2, 2])?;
/// acc.update(&logits, &Tensor::from_vec(vec![0i64, 0], &[2])?);
/// assert_eq!(acc.value(), 0.5);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
///
/// For a single column of scores, a score above the binary threshold is class 1: by
/// default 0 (logits); use [`Accuracy::binary_threshold`] for probabilities.
#[derive(Clone, Debug)]
pub struct Accuracy {
    threshold: f64,
    correct: usize,
    total: usize,
}

impl Default for Accuracy {
    /// Accuracy with the binary threshold at [`DEFAULT_BINARY_THRESHOLD`] (0, for logits).
    fn default() -> Self {
        Accuracy::binary_threshold(DEFAULT_BINARY_THRESHOLD)
    }
}

impl Accuracy {
    /// Accuracy with the default binary threshold (0, for logits); the same as
    /// `Accuracy::default()`.
    ///
    /// ```
    /// use sinew_train::metrics::Accuracy;
    /// assert_eq!(Accuracy::new().threshold(), 0.0);
    /// ```
    pub fn new() -> Self {
        Accuracy::default()
    }

    /// Accuracy whose single-column predictions are class 1 when strictly above
    /// `threshold`: 0.5 for probabilities out of a sigmoid. Multi-column predictions still
    /// use the arg-max.
    ///
    /// ```
    /// use sinew_train::metrics::{Accuracy, Metric};
    /// use sinew_tensor::Tensor;
    /// let probabilities = Tensor::from_vec(vec![0.8f32, 0.3, 0.6, 0.1], &[4, 1])?;
    /// let targets = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 0.0], &[4])?;
    /// let mut acc = Accuracy::binary_threshold(0.5);
    /// acc.update(&probabilities, &targets);
    /// assert_eq!(acc.value(), 0.75);
    /// // thresholded at 0 (the default, for logits) every probability would be class 1
    /// let mut wrong = Accuracy::default();
    /// wrong.update(&probabilities, &targets);
    /// assert_eq!(wrong.value(), 0.25);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn binary_threshold(threshold: f64) -> Self {
        Accuracy { threshold, correct: 0, total: 0 }
    }

    /// The binary threshold.
    ///
    /// ```
    /// use sinew_train::metrics::Accuracy;
    /// assert_eq!(Accuracy::binary_threshold(0.5).threshold(), 0.5);
    /// ```
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

impl Metric for Accuracy {
    fn name(&self) -> String {
        "accuracy".into()
    }
    fn reset(&mut self) {
        self.correct = 0;
        self.total = 0;
    }
    fn update(&mut self, predictions: &Tensor, targets: &Tensor) {
        let (p, t) = (predicted_classes_with_threshold(predictions, self.threshold), classes(targets));
        self.correct += p.iter().zip(&t).filter(|(a, b)| a == b).count();
        self.total += t.len();
    }
    fn value(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.correct as f64 / self.total as f64 }
    }
    fn accumulators(&self) -> Option<Vec<f64>> {
        Some(vec![self.correct as f64, self.total as f64])
    }
    fn set_accumulators(&mut self, values: &[f64]) {
        let [correct, total] = counts(&self.name(), values);
        (self.correct, self.total) = (correct as usize, total as usize);
    }
}

/// Whether the target is among the `k` highest scores.
#[derive(Clone, Debug)]
pub struct TopKAccuracy {
    /// How many of the highest scores count.
    pub k: usize,
    correct: usize,
    total: usize,
}

impl TopKAccuracy {
    /// Top-`k` accuracy.
    ///
    /// ```
    /// use sinew_train::metrics::{Metric, TopKAccuracy};
    /// use sinew_tensor::Tensor;
    /// let mut top2 = TopKAccuracy::new(2);
    /// assert_eq!(top2.name(), "top2_accuracy");
    /// let scores = Tensor::from([[0.1f32, 0.5, 0.4], [0.7, 0.2, 0.1], [0.3, 0.3, 0.4]]);
    /// // targets 2, 1, 0: second best, second best, tied for second
    /// top2.update(&scores, &Tensor::from(vec![2i64, 1, 0]));
    /// assert_eq!(top2.value(), 1.0);
    /// let mut top1 = TopKAccuracy::new(1);
    /// top1.update(&scores, &Tensor::from(vec![2i64, 1, 0]));
    /// assert_eq!(top1.value(), 0.0);
    /// ```
    pub fn new(k: usize) -> Self {
        TopKAccuracy { k, correct: 0, total: 0 }
    }
}

impl Metric for TopKAccuracy {
    fn name(&self) -> String {
        format!("top{}_accuracy", self.k)
    }
    fn reset(&mut self) {
        self.correct = 0;
        self.total = 0;
    }
    fn update(&mut self, predictions: &Tensor, targets: &Tensor) {
        let c = predictions.dims()[predictions.ndim() - 1];
        let scores = predictions.to_vec::<f64>();
        for (row, &t) in scores.chunks(c.max(1)).zip(&classes(targets)) {
            let target_score = row.get(t as usize).copied().unwrap_or(f64::NEG_INFINITY);
            let better = row.iter().filter(|&&s| s > target_score).count();
            if better < self.k {
                self.correct += 1;
            }
            self.total += 1;
        }
    }
    fn value(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.correct as f64 / self.total as f64 }
    }
    fn accumulators(&self) -> Option<Vec<f64>> {
        Some(vec![self.correct as f64, self.total as f64])
    }
    fn set_accumulators(&mut self, values: &[f64]) {
        let [correct, total] = counts(&self.name(), values);
        (self.correct, self.total) = (correct as usize, total as usize);
    }
}

/// Counts of (true class, predicted class) pairs; the basis of precision, recall and F1.
///
/// ```
/// use sinew_train::metrics::{ConfusionMatrix, Metric};
/// use sinew_tensor::Tensor;
/// let mut cm = ConfusionMatrix::new(2);
/// let logits = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0], &[3, 2])?;
/// cm.update(&logits, &Tensor::from_vec(vec![0i64, 1, 1], &[3])?);
/// assert_eq!(cm.counts(), &[vec![1, 0], vec![1, 1]]);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
///
/// Single-column predictions are thresholded at [`DEFAULT_BINARY_THRESHOLD`] (0, for
/// logits) unless [`ConfusionMatrix::binary_threshold`] says otherwise.
///
/// A log holds numbers, so as a `fit` metric it logs one: the accuracy (the diagonal over
/// the total). Lend it (`.metric(&mut cm)`) to read the matrix after `fit`: print it
/// (`Display`) or its [`classification_report`](ConfusionMatrix::classification_report).
#[derive(Clone, Debug)]
pub struct ConfusionMatrix {
    counts: Vec<Vec<u64>>,
    threshold: f64,
}

impl ConfusionMatrix {
    /// An empty matrix for `classes` classes.
    ///
    /// ```
    /// use sinew_train::metrics::{ConfusionMatrix, Metric};
    /// use sinew_tensor::Tensor;
    /// let mut cm = ConfusionMatrix::new(3);
    /// assert_eq!(cm.counts(), &[vec![0; 3], vec![0; 3], vec![0; 3]]);
    /// // the predicted class is each row's argmax
    /// cm.update(&Tensor::from([[0.0f32, 0.0, 1.0], [0.0, 2.0, 1.0]]), &Tensor::from(vec![2i64, 0]));
    /// assert_eq!(cm.counts(), &[vec![0, 1, 0], vec![0, 0, 0], vec![0, 0, 1]]);
    /// assert_eq!(cm.value(), 0.5); // as a metric: the accuracy
    /// ```
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix { counts: vec![vec![0; classes]; classes], threshold: DEFAULT_BINARY_THRESHOLD }
    }

    /// The same matrix with single-column predictions counted as class 1 when strictly
    /// above `threshold` (0.5 for probabilities).
    ///
    /// ```
    /// use sinew_train::metrics::{ConfusionMatrix, Metric};
    /// use sinew_tensor::Tensor;
    /// let mut cm = ConfusionMatrix::new(2).binary_threshold(0.5);
    /// let probabilities = Tensor::from_vec(vec![0.9f32, 0.2, 0.4], &[3])?;
    /// cm.update(&probabilities, &Tensor::from_vec(vec![1i64, 0, 1], &[3])?);
    /// assert_eq!(cm.counts(), &[vec![1, 0], vec![1, 1]]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn binary_threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// The binary threshold.
    ///
    /// ```
    /// use sinew_train::metrics::ConfusionMatrix;
    /// assert_eq!(ConfusionMatrix::new(2).threshold(), 0.0);
    /// ```
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// `counts()[true][predicted]`.
    pub fn counts(&self) -> &[Vec<u64>] {
        &self.counts
    }

    /// Per class: (true positives, predicted positives, actual positives).
    fn tallies(&self) -> Vec<(f64, f64, f64)> {
        let n = self.counts.len();
        (0..n)
            .map(|c| {
                let tp = self.counts[c][c] as f64;
                let predicted: u64 = (0..n).map(|t| self.counts[t][c]).sum();
                let actual: u64 = self.counts[c].iter().sum();
                (tp, predicted as f64, actual as f64)
            })
            .collect()
    }

    /// Precision of each class (0 where nothing was predicted as it).
    ///
    /// ```
    /// use sinew_train::metrics::{ConfusionMatrix, Metric};
    /// use sinew_tensor::Tensor;
    /// // true 0 predicted 0; true 1 predicted 0; true 1 predicted 1: counts [[1, 0], [1, 1]]
    /// let mut cm = ConfusionMatrix::new(2);
    /// cm.update(&Tensor::from([[1.0f32, 0.0], [1.0, 0.0], [0.0, 1.0]]), &Tensor::from(vec![0i64, 1, 1]));
    /// // sklearn.metrics.precision_score(y, p, average=None): of 2 predicted 0, 1 right; of 1 predicted 1, 1 right
    /// assert_eq!(cm.precision_per_class(), [0.5, 1.0]);
    /// ```
    pub fn precision_per_class(&self) -> Vec<f64> {
        self.tallies().iter().map(|&(tp, p, _)| if p > 0.0 { tp / p } else { 0.0 }).collect()
    }

    /// Recall of each class (0 where it never occurs).
    ///
    /// ```
    /// use sinew_train::metrics::{ConfusionMatrix, Metric};
    /// use sinew_tensor::Tensor;
    /// // counts [[1, 0], [1, 1]]
    /// let mut cm = ConfusionMatrix::new(2);
    /// cm.update(&Tensor::from([[1.0f32, 0.0], [1.0, 0.0], [0.0, 1.0]]), &Tensor::from(vec![0i64, 1, 1]));
    /// // the one 0 was found; one of the two 1s was
    /// assert_eq!(cm.recall_per_class(), [1.0, 0.5]);
    /// // a class that never occurs has recall 0
    /// assert_eq!(ConfusionMatrix::new(2).recall_per_class(), [0.0, 0.0]);
    /// ```
    pub fn recall_per_class(&self) -> Vec<f64> {
        self.tallies().iter().map(|&(tp, _, a)| if a > 0.0 { tp / a } else { 0.0 }).collect()
    }

    /// scikit-learn's `classification_report`: precision, recall, F1 and support per
    /// class, then accuracy and the macro and support-weighted averages.
    ///
    /// ```
    /// use sinew_train::metrics::{ConfusionMatrix, Metric};
    /// use sinew_tensor::Tensor;
    /// let mut cm = ConfusionMatrix::new(2);
    /// let logits = Tensor::from([[1.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]);
    /// cm.update(&logits, &Tensor::from(vec![0i64, 1, 1, 1]));
    /// let report = cm.classification_report();
    /// assert!(report.contains("           1     1.0000    0.6667    0.8000         3"));
    /// assert!(report.contains("    accuracy                         0.7500         4"));
    /// ```
    pub fn classification_report(&self) -> String {
        let (p, r, f) = (self.precision_per_class(), self.recall_per_class(), self.f1_per_class());
        let support: Vec<u64> = self.counts.iter().map(|row| row.iter().sum()).collect();
        let total: u64 = support.iter().sum();
        let mut out =
            format!("{:>12} {:>10} {:>9} {:>9} {:>9}\n\n", "", "precision", "recall", "f1-score", "support");
        for c in 0..self.counts.len() {
            out += &format!("{c:>12} {:>10.4} {:>9.4} {:>9.4} {:>9}\n", p[c], r[c], f[c], support[c]);
        }
        let correct: u64 = (0..self.counts.len()).map(|c| self.counts[c][c]).sum();
        let accuracy = if total > 0 { correct as f64 / total as f64 } else { 0.0 };
        out += &format!("\n{:>12} {:>10} {:>9} {:>9.4} {:>9}\n", "accuracy", "", "", accuracy, total);
        let n = self.counts.len().max(1) as f64;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / n;
        let weighted = |v: &[f64]| {
            if total == 0 {
                0.0
            } else {
                v.iter().zip(&support).map(|(x, &s)| x * s as f64).sum::<f64>() / total as f64
            }
        };
        out += &format!(
            "{:>12} {:>10.4} {:>9.4} {:>9.4} {:>9}\n",
            "macro avg",
            mean(&p),
            mean(&r),
            mean(&f),
            total
        );
        out += &format!(
            "{:>12} {:>10.4} {:>9.4} {:>9.4} {:>9}\n",
            "weighted avg",
            weighted(&p),
            weighted(&r),
            weighted(&f),
            total
        );
        out
    }

    /// F1 of each class.
    ///
    /// ```
    /// use sinew_train::metrics::{ConfusionMatrix, Metric};
    /// use sinew_tensor::Tensor;
    /// // counts [[1, 0], [1, 1]]: precision [1/2, 1], recall [1, 1/2]
    /// let mut cm = ConfusionMatrix::new(2);
    /// cm.update(&Tensor::from([[1.0f32, 0.0], [1.0, 0.0], [0.0, 1.0]]), &Tensor::from(vec![0i64, 1, 1]));
    /// // sklearn.metrics.f1_score(y, p, average=None) == [2/3, 2/3]
    /// let f1 = cm.f1_per_class();
    /// assert!(f1.iter().all(|f| (f - 2.0 / 3.0).abs() < 1e-12));
    /// ```
    pub fn f1_per_class(&self) -> Vec<f64> {
        self.precision_per_class()
            .iter()
            .zip(self.recall_per_class())
            .map(|(&p, r)| if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 })
            .collect()
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
}

/// The counts as a table, rows the true classes and columns the predicted ones.
///
/// ```
/// use sinew_train::metrics::{ConfusionMatrix, Metric};
/// use sinew_tensor::Tensor;
/// let mut cm = ConfusionMatrix::new(2);
/// cm.update(&Tensor::from([[1.0f32, 0.0], [1.0, 0.0]]), &Tensor::from(vec![0i64, 1]));
/// assert_eq!(cm.to_string(), " true\\pred      0      1\n         0      1      0\n         1      1      0\n");
/// ```
impl std::fmt::Display for ConfusionMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let width = self.counts.iter().flatten().map(|c| c.to_string().len()).max().unwrap_or(1).max(6);
        write!(f, "{:>10}", "true\\pred")?;
        for c in 0..self.counts.len() {
            write!(f, " {c:>width$}")?;
        }
        writeln!(f)?;
        for (t, row) in self.counts.iter().enumerate() {
            write!(f, "{t:>10}")?;
            for v in row {
                write!(f, " {v:>width$}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl Metric for ConfusionMatrix {
    fn name(&self) -> String {
        "confusion_matrix".into()
    }
    fn reset(&mut self) {
        self.counts.iter_mut().flatten().for_each(|c| *c = 0);
    }
    fn update(&mut self, predictions: &Tensor, targets: &Tensor) {
        let n = self.counts.len() as i64;
        for (p, t) in
            predicted_classes_with_threshold(predictions, self.threshold).into_iter().zip(classes(targets))
        {
            if (0..n).contains(&p) && (0..n).contains(&t) {
                self.counts[t as usize][p as usize] += 1;
            }
        }
    }
    /// Accuracy from the matrix (the matrix itself is read with [`ConfusionMatrix::counts`]).
    fn value(&self) -> f64 {
        let total: u64 = self.counts.iter().flatten().sum();
        let diag: u64 = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        if total == 0 { 0.0 } else { diag as f64 / total as f64 }
    }
    /// The matrix, row by row.
    fn accumulators(&self) -> Option<Vec<f64>> {
        Some(self.counts.iter().flatten().map(|&c| c as f64).collect())
    }
    fn set_accumulators(&mut self, values: &[f64]) {
        let n = self.counts.len();
        assert_eq!(
            values.len(),
            n * n,
            "{}: expected {} accumulators, got {}",
            self.name(),
            n * n,
            values.len()
        );
        for (c, &v) in self.counts.iter_mut().flatten().zip(values) {
            *c = v as u64;
        }
    }
}

macro_rules! macro_metric {
    ($(#[$m:meta])* $name:ident, $label:literal, $per_class:ident) => {
        $(#[$m])*
        #[derive(Clone, Debug)]
        pub struct $name(pub ConfusionMatrix);

        impl $name {
            /// Macro average over `classes` classes.
            pub fn new(classes: usize) -> Self {
                $name(ConfusionMatrix::new(classes))
            }
            /// The same metric with single-column predictions counted as class 1 when
            /// strictly above `threshold` (default 0, for logits; 0.5 for probabilities).
            pub fn binary_threshold(self, threshold: f64) -> Self {
                $name(self.0.binary_threshold(threshold))
            }
            /// The value of each class.
            pub fn per_class(&self) -> Vec<f64> {
                self.0.$per_class()
            }
        }

        impl Metric for $name {
            fn name(&self) -> String {
                $label.into()
            }
            fn reset(&mut self) {
                self.0.reset();
            }
            fn update(&mut self, predictions: &Tensor, targets: &Tensor) {
                self.0.update(predictions, targets);
            }
            fn value(&self) -> f64 {
                mean(&self.0.$per_class())
            }
            fn accumulators(&self) -> Option<Vec<f64>> {
                self.0.accumulators()
            }
            fn set_accumulators(&mut self, values: &[f64]) {
                self.0.set_accumulators(values)
            }
        }
    };
}

macro_metric!(
    /// Precision, macro-averaged over classes (`per_class` for each).
    Precision, "precision", precision_per_class
);
macro_metric!(
    /// Recall, macro-averaged over classes (`per_class` for each).
    Recall, "recall", recall_per_class
);
macro_metric!(
    /// F1 score, macro-averaged over classes (`per_class` for each).
    ///
    /// ```
    /// use sinew_train::metrics::{F1, Metric};
    /// use sinew_tensor::Tensor;
    /// let mut f1 = F1::new(2);
    /// let logits = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], &[2, 2])?;
    /// f1.update(&logits, &Tensor::from_vec(vec![0i64, 1], &[2])?);
    /// assert_eq!(f1.value(), 1.0);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    ///
    /// Binary problems with one column of probabilities:
    ///
    /// ```
    /// use sinew_train::metrics::{F1, Metric};
    /// use sinew_tensor::Tensor;
    /// let mut f1 = F1::new(2).binary_threshold(0.5);
    /// let probabilities = Tensor::from_vec(vec![0.9f32, 0.2, 0.7, 0.4], &[4, 1])?;
    /// f1.update(&probabilities, &Tensor::from_vec(vec![1i64, 0, 1, 0], &[4])?);
    /// assert_eq!(f1.value(), 1.0);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    F1, "f1", f1_per_class
);

/// Mean absolute error of regression outputs.
#[derive(Clone, Debug, Default)]
pub struct Mae {
    sum: f64,
    count: usize,
}

impl Metric for Mae {
    fn name(&self) -> String {
        "mae".into()
    }
    fn reset(&mut self) {
        *self = Mae::default();
    }
    fn update(&mut self, predictions: &Tensor, targets: &Tensor) {
        let p = predictions.to_vec::<f64>();
        let t = targets.to_vec::<f64>();
        self.sum += p.iter().zip(&t).map(|(a, b)| (a - b).abs()).sum::<f64>();
        self.count += t.len();
    }
    fn value(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }
    fn accumulators(&self) -> Option<Vec<f64>> {
        Some(vec![self.sum, self.count as f64])
    }
    fn set_accumulators(&mut self, values: &[f64]) {
        let [sum, count] = counts("mae", values);
        (self.sum, self.count) = (sum, count as usize);
    }
}

/// Coefficient of determination `1 - SS_res / SS_tot` of regression outputs. It keeps
/// every prediction (SS_tot needs the mean of all targets first), so it has no
/// [`accumulators`](Metric::accumulators) and a data-parallel `fit` cannot use it.
///
/// ```
/// use sinew_train::metrics::{Metric, R2};
/// use sinew_tensor::Tensor;
/// let mut r2 = R2::default();
/// let y = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
/// r2.update(&y, &y);
/// assert_eq!(r2.value(), 1.0);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct R2 {
    predictions: Vec<f64>,
    targets: Vec<f64>,
}

impl Metric for R2 {
    fn name(&self) -> String {
        "r2".into()
    }
    fn reset(&mut self) {
        *self = R2::default();
    }
    fn update(&mut self, predictions: &Tensor, targets: &Tensor) {
        self.predictions.extend(predictions.to_vec::<f64>());
        self.targets.extend(targets.to_vec::<f64>());
    }
    fn value(&self) -> f64 {
        let m = mean(&self.targets);
        let ss_tot: f64 = self.targets.iter().map(|t| (t - m) * (t - m)).sum();
        let ss_res: f64 = self.predictions.iter().zip(&self.targets).map(|(p, t)| (p - t) * (p - t)).sum();
        if ss_tot == 0.0 { 0.0 } else { 1.0 - ss_res / ss_tot }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t32(v: Vec<f32>, shape: &[usize]) -> Tensor {
        Tensor::from_vec(v, shape).unwrap()
    }

    #[test]
    fn single_column_threshold_defaults_to_zero_and_is_strict() {
        let scores = t32(vec![0.0, 1e-6, -1e-6, 0.7], &[4, 1]);
        assert_eq!(predicted_classes(&scores), vec![0, 1, 0, 1]);
        assert_eq!(predicted_classes_with_threshold(&scores, 0.5), vec![0, 0, 0, 1]);
        // exactly at the threshold is class 0, in f64 too
        let probs = Tensor::from_vec(vec![0.5f64, 0.5000001], &[2]).unwrap();
        assert_eq!(predicted_classes_with_threshold(&probs, 0.5), vec![0, 1]);
        assert_eq!(Accuracy::default().threshold(), DEFAULT_BINARY_THRESHOLD);
    }

    #[test]
    fn the_threshold_changes_binary_metrics_but_not_argmax() {
        let probs = t32(vec![0.9, 0.6, 0.4, 0.1], &[4]);
        let targets = Tensor::from_vec(vec![1i64, 0, 1, 0], &[4]).unwrap();
        let mut at0 = Accuracy::default();
        let mut at_half = Accuracy::binary_threshold(0.5);
        at0.update(&probs, &targets);
        at_half.update(&probs, &targets);
        assert_eq!(at0.value(), 0.5); // everything is "class 1"
        assert_eq!(at_half.value(), 0.5); // 0.9 ✓, 0.6 ✗, 0.4 ✗, 0.1 ✓
        let mut at_035 = Accuracy::binary_threshold(0.35);
        at_035.update(&probs, &targets);
        assert_eq!(at_035.value(), 0.75);
        // reset keeps the threshold
        at_035.reset();
        at_035.update(&probs, &targets);
        assert_eq!(at_035.value(), 0.75);

        let (mut p, mut r) = (Precision::new(2).binary_threshold(0.5), Recall::new(2).binary_threshold(0.5));
        p.update(&probs, &targets);
        r.update(&probs, &targets);
        assert_eq!(p.per_class(), vec![0.5, 0.5]);
        assert_eq!(r.per_class(), vec![0.5, 0.5]);
        p.reset();
        assert_eq!(p.0.threshold(), 0.5);

        // two columns: the arg-max, whatever the threshold
        let two = t32(vec![0.1, 0.9, 0.8, 0.2], &[2, 2]);
        let mut acc = Accuracy::binary_threshold(100.0);
        acc.update(&two, &Tensor::from_vec(vec![1i64, 0], &[2]).unwrap());
        assert_eq!(acc.value(), 1.0);
    }

    #[test]
    fn borrowed_and_boxed_metrics_forward() {
        let mut acc = Accuracy::default();
        {
            let mut lent: Box<dyn Metric + '_> = Box::new(&mut acc);
            lent.update(&t32(vec![1.0, -1.0], &[2]), &Tensor::from_vec(vec![1i64, 1], &[2]).unwrap());
            assert_eq!(lent.name(), "accuracy");
        }
        assert_eq!(acc.value(), 0.5);
    }
}
