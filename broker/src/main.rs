//! The `weir` binary: the only place where `anyhow` is used.
fn main() -> anyhow::Result<()> {
    Ok(())
}
