//! Metrics accumulated over batches: [`Accuracy`], [`TopKAccuracy`], [`Precision`],
//! [`Recall`], [`F1`] (macro and per class), [`ConfusionMatrix`], [`Mae`], [`R2`].
//!
//! Classification metrics read predictions as scores: logits or probabilities of shape
//! `(N, C)` (the arg-max is the class), or a single column `(N)`/`(N, 1)` for binary
//! problems (a logit above 0 is class 1). Targets are class indices (`i64` or float).

use sinew_tensor::{DType, Tensor};

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
}

/// Predicted classes from scores: arg-max over the last dimension, or `logit > 0` for a
/// single column.
pub fn predicted_classes(predictions: &Tensor) -> Vec<i64> {
    let single = predictions.ndim() == 1 || predictions.dims()[predictions.ndim() - 1] == 1;
    if single {
        predictions.gt_scalar(0.0).to_vec::<f64>().iter().map(|&v| v as i64).collect()
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
#[derive(Clone, Debug, Default)]
pub struct Accuracy {
    correct: usize,
    total: usize,
}

impl Metric for Accuracy {
    fn name(&self) -> String {
        "accuracy".into()
    }
    fn reset(&mut self) {
        *self = Accuracy::default();
    }
    fn update(&mut self, predictions: &Tensor, targets: &Tensor) {
        let (p, t) = (predicted_classes(predictions), classes(targets));
        self.correct += p.iter().zip(&t).filter(|(a, b)| a == b).count();
        self.total += t.len();
    }
    fn value(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.correct as f64 / self.total as f64 }
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
#[derive(Clone, Debug)]
pub struct ConfusionMatrix {
    counts: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    /// An empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix { counts: vec![vec![0; classes]; classes] }
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
    pub fn precision_per_class(&self) -> Vec<f64> {
        self.tallies().iter().map(|&(tp, p, _)| if p > 0.0 { tp / p } else { 0.0 }).collect()
    }

    /// Recall of each class (0 where it never occurs).
    pub fn recall_per_class(&self) -> Vec<f64> {
        self.tallies().iter().map(|&(tp, _, a)| if a > 0.0 { tp / a } else { 0.0 }).collect()
    }

    /// F1 of each class.
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

impl Metric for ConfusionMatrix {
    fn name(&self) -> String {
        "confusion_matrix".into()
    }
    fn reset(&mut self) {
        let n = self.counts.len();
        *self = ConfusionMatrix::new(n);
    }
    fn update(&mut self, predictions: &Tensor, targets: &Tensor) {
        let n = self.counts.len() as i64;
        for (p, t) in predicted_classes(predictions).into_iter().zip(classes(targets)) {
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
}

/// Coefficient of determination `1 - SS_res / SS_tot` of regression outputs.
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
