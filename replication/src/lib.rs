//! Weir's replication core: one Raft group per partition, with the partition's Kafka log as the
//! Raft log.
//!
//! Log positions are Kafka offsets and Raft terms are Kafka leader epochs (stamped in every
//! batch's partition-leader-epoch field), so there is no second log and no index mapping: replicas
//! find where their logs diverge with the leader-epoch cache, exactly as Kafka followers do
//! (KIP-101/KIP-320), and elections follow KRaft's Raft (KIP-595) with pre-vote (KIP-996).
//! Followers pull: they fetch from the leader, and the offset they fetch from is their
//! acknowledgement. See `docs/cluster.md` for why this is not raft-rs.
//!
//! This crate does no IO. It owns no sockets, no files, no clock, no threads and no randomness of
//! its own: the caller passes time in, hands it messages, executes what it asks for
//! ([`Output`]) in order, and tells it what happened to the log. That makes every decision
//! reproducible in `tests/simulation.rs`, which drives replicas through lossy networks and
//! crashes from a seed.

pub mod epoch_cache;
mod replica;
mod rng;

pub use epoch_cache::{EpochCache, EpochEnd};
pub use replica::{
    BatchMeta, Bootstrap, Config, ElectionState, FetchAnswer, FetchError, FetchOutcome,
    FetchRequest, FetchResponse, FollowerAction, Message, Output, Progress, Replica, Role,
    VoteRequest, VoteResponse,
};

/// A broker id (Kafka's `node.id`).
pub type NodeId = i32;
/// A Kafka offset: a position in the partition log.
pub type Offset = i64;
/// A Kafka leader epoch, which is the Raft term.
pub type Epoch = i32;
