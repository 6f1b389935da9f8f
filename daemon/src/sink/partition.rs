//! One partition of the valuations topic as a sink holds it: the lock that
//! fences its files, its journal (intents and checkpoint, see
//! [`super::journal`]) and the identities of the rows written for it.
//!
//! Every file of a portfolio is written by the sink that holds the lock of
//! the portfolio's partition, `DATA/.sink/partitions/TOPIC/P/lock` (an
//! advisory lock of the file system, `flock`: released by the kernel when
//! its process dies, and honoured across machines by NFSv4). A sink takes
//! it before it touches the partition's files, reads the partition's
//! journal under it (rolling back what an interrupted holder left), and
//! lets it go only after its last batch of the partition is durable,
//! checkpointed and committed. A sink that lost the partition to a
//! rebalance while paused still holds the lock, so the new owner waits
//! until the old one has finished and let go: two sinks never write one
//! file.

use std::fs::File;

use super::identities::Identities;
use super::journal::{Checkpoint, Journal};

/// A partition this sink holds.
pub struct Partition {
    /// Held while the value lives: the fence.
    _lock: File,
    /// Its journal.
    pub journal: Journal,
    /// What is durable.
    pub checkpoint: Checkpoint,
    /// The last identity written per portfolio.
    pub identities: Identities,
}

impl Partition {
    /// The partition whose lock is `lock`, its journal `journal` as read,
    /// and its identities as loaded.
    pub fn new(lock: File, journal: Journal, checkpoint: Checkpoint, identities: Identities) -> Self {
        Partition { _lock: lock, journal, checkpoint, identities }
    }

    /// The identities log of `partition` of `topic`, relative to the data
    /// folder.
    pub fn identities_name(topic: &str, partition: i32) -> String {
        crate::layout::sink_partition_relative(topic, partition)
            .join(super::identities::LOG_SUFFIX)
            .to_string_lossy()
            .into_owned()
    }
}
