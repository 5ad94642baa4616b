//! The broker's integration tests, one module per area, in one binary (one link of the
//! broker instead of one per file). Run one area with `cargo test -p weir-broker --test
//! broker -- <module>::`.

mod common;

mod cli;
mod cli_partitions;
mod cluster_admin_single_node;
mod console_api;
mod consumer_groups;
mod disk_full;
mod etcd;
mod kafka_behaviour;
mod metrics;
mod offset_delete;
mod offsets_partitions;
mod record_formats;
mod request_order;
mod security;
mod share_groups;
mod shutdown;
mod transactions;
mod txn_partition;
mod wire;
