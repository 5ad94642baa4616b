//! The cluster: which brokers exist, which topics and partitions, where each partition's replicas
//! are and who leads them.
//!
//! - `etcd` — a client of etcd's JSON gateway (KV, leases, watches).
//! - `metadata` — Weir's metadata layout (keys and JSON values) and the in-memory
//!   [`metadata::ClusterView`] every broker keeps up to date from a watch.
//! - `placement` — where replicas go (pure).
//!
//! A single node needs none of this running: its metadata is local (see `topics`), and its
//! partitions are Raft groups of one.

pub mod etcd;
pub mod metadata;
pub mod peer;
pub mod placement;
pub mod runtime;
pub mod store;
