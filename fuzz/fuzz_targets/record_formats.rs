//! Fuzz target: arbitrary bytes as a produce payload and as stored batches.
//!
//! Properties: reading a legacy message set (magic 0/1, with decompression), the records of a v2
//! batch and down-converting never panic, and never hold more decompressed bytes than their limit
//! (libFuzzer's RSS limit catches a decompression that ignores it); a message set that parses
//! always converts to a valid v2 batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_storage::{batch, legacy, records};

/// Small, so that a bypassed bound shows up as an RSS spike.
const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = legacy::parse_message_set(data, LIMIT) {
        let v2 = legacy::to_v2_batch(&set).expect("a parsed set converts");
        assert!(batch::validate_batches(&v2).is_ok());
    }
    if batch::validate_batch(data).is_ok() {
        let _ = records::visit_records(data, LIMIT, |_| {});
    }
    for magic in [legacy::MAGIC_V0, legacy::MAGIC_V1] {
        let _ = legacy::down_convert(data, magic, 0, LIMIT, LIMIT);
    }
});
