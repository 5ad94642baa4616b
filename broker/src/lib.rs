//! Weir broker library (being built).
