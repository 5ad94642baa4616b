//! Share groups (KIP-932, "queues for Kafka"): groups whose members read the same partitions at
//! once, each record handed to one member at a time and acknowledged on its own.
//!
//! - `partition`: the state machine of one share-partition (pure, time passed in).

pub mod partition;
