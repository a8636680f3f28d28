//! What can go wrong when starting or feeding a [`super::ShardPool`].

use std::fmt;

use super::ShardId;

/// Why a pool operation failed.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// A config value cannot work.
    #[error("invalid shard config: {0}")]
    InvalidConfig(&'static str),
    /// The OS would not start a thread.
    #[error("could not spawn {thread}: {reason}")]
    Spawn {
        /// Thread name.
        thread: String,
        /// The OS error, as text.
        reason: String,
    },
    /// The shard's control queue is full; the command was not sent.
    #[error("control queue of {0} is full")]
    ControlQueueFull(ShardId),
    /// Every shard holds `max_rooms_per_shard` rooms.
    #[error("every shard is at its room limit")]
    PoolFull,
    /// A room with this id is already in the pool.
    #[error("a room with this id is already in the pool")]
    DuplicateRoom,
    /// No room with this id is in the pool.
    #[error("no room with this id is in the pool")]
    UnknownRoom,
    /// The pool has been shut down.
    #[error("the shard pool is shut down")]
    ShutDown,
    /// A shard thread panicked (found when joining it).
    #[error("{0} panicked")]
    Panicked(ShardId),
}

/// A command that was not delivered, with the state it carried given back.
pub struct Rejected<T> {
    /// Why.
    pub error: ShardError,
    /// The room or member that was to be sent.
    pub value: T,
}

impl<T> fmt::Debug for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<T> std::error::Error for Rejected<T> {}
