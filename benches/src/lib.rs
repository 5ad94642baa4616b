//! Benchmark support for Weir: input builders shared by the criterion benches in `benches/`
//! (see `docs/benchmarks.md` for how to run them and the recorded figures).

use weir_storage::batch::testing::{build_batch, RecordRef};

/// Builds one uncompressed v2 batch of about `batch_bytes` made of `record_bytes`-sized values
/// (e.g. 16 KiB of 1 KiB records), like a producer's batch.
pub fn make_batch(batch_bytes: usize, record_bytes: usize) -> Vec<u8> {
    let n = (batch_bytes / record_bytes.max(1)).max(1);
    let value: Vec<u8> = (0..record_bytes).map(|i| (i % 251) as u8).collect();
    let recs: Vec<RecordRef<'_>> = (0..n).map(|_| (None, Some(value.as_slice()))).collect();
    build_batch(&recs, 1_700_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_has_requested_shape() {
        let b = make_batch(16 * 1024, 1024);
        let hs = weir_storage::batch::validate_batches(&b).expect("valid");
        assert_eq!(hs[0].record_count, 16);
        assert!(b.len() > 16 * 1024 && b.len() < 17 * 1024);
    }
}
