//! Weir Kafka protocol layer (being built).
