//! [`Logs`] of one epoch and the [`History`] of a run.

use std::collections::BTreeMap;

/// Named values of one epoch: `loss`, each metric, their `val_` twins, `lr`.
pub type Logs = BTreeMap<String, f64>;

/// What [`Trainer::fit`](crate::Trainer::fit) returns: the logs of every epoch run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// One entry per epoch, in order.
    pub epochs: Vec<Logs>,
}

impl History {
    /// The series of one quantity over the epochs (`history.get("val_loss")`).
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    /// let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[8, 1])?;
    /// let y = x.mul_scalar(2.0).add_scalar(1.0);
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.1);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(3)
    ///     .validation_data(&x, &y)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &y);
    /// // history.history["val_loss"] in Keras: one value per epoch, falling as the line is learnt
    /// let val_loss = history.get("val_loss");
    /// assert_eq!(val_loss.len(), 3);
    /// assert!(val_loss[2] < val_loss[0]);
    /// assert_eq!(val_loss[1], history.epochs[1]["val_loss"]);
    /// assert!(history.get("no_such_log").is_empty());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn get(&self, name: &str) -> Vec<f64> {
        self.epochs.iter().filter_map(|l| l.get(name).copied()).collect()
    }

    /// The last epoch's logs.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{History, Loss, Trainer, Verbosity};
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.05);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse).epochs(2).verbosity(Verbosity::Quiet).fit(&x, &x);
    /// assert_eq!(history.last().unwrap()["loss"], history.get("loss")[1]);
    /// assert!(History::default().last().is_none());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn last(&self) -> Option<&Logs> {
        self.epochs.last()
    }

    /// Number of epochs run.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.05);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse).epochs(3).verbosity(Verbosity::Quiet).fit(&x, &x);
    /// assert_eq!(history.len(), 3);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether no epoch ran.
    ///
    /// ```
    /// use sinew_train::{History, Logs};
    /// let mut history = History::default();
    /// assert!(history.is_empty());
    /// history.epochs.push(Logs::from([("loss".to_string(), 0.5)]));
    /// assert!(!history.is_empty());
    /// assert_eq!(history.get("loss"), [0.5]);
    /// ```
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }
}
