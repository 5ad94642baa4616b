//! Weir storage engine (being built).
