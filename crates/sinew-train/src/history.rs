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
    pub fn get(&self, name: &str) -> Vec<f64> {
        self.epochs.iter().filter_map(|l| l.get(name).copied()).collect()
    }

    /// The last epoch's logs.
    pub fn last(&self) -> Option<&Logs> {
        self.epochs.last()
    }

    /// Number of epochs run.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether no epoch ran.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }
}
