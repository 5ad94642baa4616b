//! Reading a partition log batch by batch, for the broker's own start-up scans (producer state,
//! committed offsets).

use weir_storage::batch::{validate_batches, BatchHeader, BATCH_HEADER_LEN};
use weir_storage::{Log, Offset, StorageError};

/// How much one read step covers.
const SCAN_READ_BYTES: usize = 4 << 20;

/// Calls `f` with the header and bytes of every batch from the log start to the high watermark.
pub fn for_each_batch(log: &Log, f: impl FnMut(&BatchHeader, &[u8])) -> Result<(), StorageError> {
    for_each_batch_in(log, log.log_start_offset(), Offset::MAX, f).map(|_| ())
}

/// Calls `f` with the header and bytes of every batch holding an offset at or above `from`, up to
/// the high watermark. Returns how many bytes it read from the log (the seam that shows a
/// start-up scan reads only a log's tail).
pub fn for_each_batch_from(
    log: &Log,
    from: Offset,
    f: impl FnMut(&BatchHeader, &[u8]),
) -> Result<u64, StorageError> {
    for_each_batch_in(log, from, Offset::MAX, f)
}

/// Headers read per step of [`for_each_header_from`].
const SCAN_HEADERS: usize = 4096;

/// Calls `f` with the header of every batch holding an offset at or above `from`, up to the high
/// watermark, and the bytes of the control batches among them (`None` for the others): what a
/// scan of producer state needs, without reading the data into memory or checking its CRC.
/// Returns the bytes of headers and markers it looked at (storage walks a mapping of the file, so
/// the data between headers is not read).
pub fn for_each_header_from(
    log: &Log,
    from: Offset,
    mut f: impl FnMut(&BatchHeader, Option<&[u8]>),
) -> Result<u64, StorageError> {
    let mut offset = from.max(log.log_start_offset());
    let mut bytes_read = 0u64;
    loop {
        let headers = log.read_headers(offset, SCAN_HEADERS)?;
        let Some(last) = headers.last() else {
            return Ok(bytes_read);
        };
        offset = last.last_offset() + 1;
        bytes_read += (headers.len() * BATCH_HEADER_LEN) as u64;
        for h in &headers {
            if !h.is_control() {
                f(h, None);
                continue;
            }
            let bytes = log.read(h.base_offset, h.total_len())?;
            bytes_read += bytes.len() as u64;
            let batch = bytes.get(..h.total_len()).unwrap_or_default();
            validate_batches(batch).map_err(StorageError::InvalidBatch)?;
            f(h, Some(batch));
        }
    }
}

/// Calls `f` with the header and bytes of every batch holding an offset in `from..end` (`end`
/// capped at the high watermark; `from` raised to the log start), in order. Returns how many
/// bytes it read from the log.
pub fn for_each_batch_in(
    log: &Log,
    from: Offset,
    end: Offset,
    mut f: impl FnMut(&BatchHeader, &[u8]),
) -> Result<u64, StorageError> {
    let mut offset = from.max(log.log_start_offset());
    let end = end.min(log.high_watermark());
    let mut bytes_read = 0u64;
    while offset < end {
        let bytes = log.read(offset, SCAN_READ_BYTES)?;
        bytes_read += bytes.len() as u64;
        let headers = validate_batches(&bytes).map_err(StorageError::InvalidBatch)?;
        let Some(last) = headers.last() else { break };
        let next = last.last_offset() + 1;
        let mut position = 0usize;
        for h in &headers {
            let len = h.total_len();
            // The first batch may start before `offset` (reads begin at the batch holding it).
            if h.last_offset() >= offset && h.base_offset < end {
                f(h, &bytes[position..position + len]);
            }
            position += len;
        }
        offset = next;
    }
    Ok(bytes_read)
}
