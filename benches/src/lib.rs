//! Benchmarks crate: see `benches/`.
