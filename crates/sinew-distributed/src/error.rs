//! [`DistributedError`]: what can go wrong setting up or checking a distributed run.

/// An error of distributed training.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DistributedError {
    /// MPI was initialised before (by an earlier [`World::init`](crate::World::init) or
    /// by other code in the process); a process initialises it once.
    #[error("MPI is already initialised in this process (World::init is called once)")]
    AlreadyInitialized,
    /// The ranks disagree on something that must be identical everywhere.
    #[error("ranks disagree on {what}: {detail}")]
    Mismatch {
        /// What differs (e.g. "the parameters").
        what: String,
        /// How it differs.
        detail: String,
    },
}

/// `Result` with a [`DistributedError`].
pub type Result<T, E = DistributedError> = std::result::Result<T, E>;
