//! The cluster: which brokers exist, which topics and partitions, where each partition's replicas
//! are and who leads them.
//!
//! - `etcd` — a client of etcd's JSON gateway (KV, leases, watches).
//! - `metadata` — Weir's metadata layout (keys and JSON values) and the in-memory
//!   [`metadata::ClusterView`] every broker keeps up to date from a watch.
//! - `placement` — where replicas go (pure).
//! - `elections` — when leadership should move back to a preferred replica (pure).
//! - `store` — the metadata in etcd: registration, watched view, transactional writes.
//! - `peer`, `runtime` — the tasks that carry Raft messages and replica fetches between
//!   brokers, apply metadata changes, publish leaders and run the controller.
//! - `status` — the operator's view: partition health and local replica detail (admin API,
//!   metrics).
//!
//! A single node needs none of this running: its metadata is local (see `topics`), and its
//! partitions are Raft groups of one.

pub mod elections;
pub mod etcd;
pub mod metadata;
pub mod peer;
pub mod placement;
pub mod runtime;
pub mod status;
pub mod store;
