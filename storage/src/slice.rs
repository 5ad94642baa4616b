//! Reads answered as a range of a segment file instead of a copy in memory: a consumer's Fetch
//! sends the range straight from the page cache to the socket (sendfile), so the records are
//! neither copied into user space nor through the response encoder.
//!
//! This module owns [`RecordSlice`] and the walk that finds where such a read ends. It reads
//! only batch headers, in small windows, never the records between them. It must not send
//! anything: the caller owns the socket.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::batch::{BatchHeader, BATCH_HEADER_LEN};
use crate::log::Read;
use crate::segment::SegmentFile;
use crate::Offset;

/// Bytes read at a time to find batch headers. Small batches are found many to a window;
/// a large batch costs one window read for its header.
const HEADER_WINDOW_BYTES: usize = 8 * 1024;

/// Whole batches, as a range of one segment file. The file stays open while the slice lives,
/// even if retention deletes the segment; the bytes are read when the slice is sent.
#[derive(Clone)]
pub struct RecordSlice {
    file: Arc<SegmentFile>,
    position: u64,
    len: usize,
    next_offset: Offset,
}

impl RecordSlice {
    /// The segment file the batches are in.
    pub fn file(&self) -> &File {
        &self.file.file
    }

    /// Where the first batch starts in [`RecordSlice::file`].
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Length in bytes of the batches.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No batches.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One past the last offset of the last batch (`None` when the slice is empty).
    pub fn next_offset(&self) -> Option<Offset> {
        (self.len > 0).then_some(self.next_offset)
    }

    /// The batches in memory: for readers that look at them (down-conversion, share groups,
    /// clients that cannot take a file range). Fails with `UnexpectedEof` if the file was
    /// truncated below the slice since it was taken.
    pub fn read_to_vec(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len];
        self.file.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf)
    }

    fn empty(file: Arc<SegmentFile>, position: u64) -> Self {
        RecordSlice {
            file,
            position,
            len: 0,
            next_offset: 0,
        }
    }
}

impl std::fmt::Debug for RecordSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSlice")
            .field("path", &self.file.path)
            .field("position", &self.position)
            .field("len", &self.len)
            .field("next_offset", &self.next_offset)
            .finish()
    }
}

/// Whether the batch `h`, starting `taken` bytes into a read, belongs to it: it starts below
/// the high watermark, and it is the first batch or fits in `max_bytes` with those before it.
pub(crate) fn batch_belongs(h: &BatchHeader, taken: usize, max_bytes: usize, hw: Offset) -> bool {
    h.base_offset < hw && (taken == 0 || taken + h.total_len() <= max_bytes)
}

/// The batches of `read` as a [`RecordSlice`] of `file`, walking from the batch at `position`
/// to the one holding `read.offset` (or the first after it), below `hw`. The same batches that
/// [`crate::Log::read`] copies (`None` when the segment ends before the offset, e.g. after a
/// crash cut it).
pub(crate) fn slice_from(
    file: &Arc<SegmentFile>,
    position: u64,
    hw: Offset,
    read: &Read,
) -> io::Result<Option<RecordSlice>> {
    let Read {
        offset,
        max_bytes,
        min_one_batch,
        ..
    } = *read;
    let limit = file.readable.load(std::sync::atomic::Ordering::Acquire);
    let mut window = HeaderWindow::new(&file.file, limit);
    let mut start = position;
    let first = loop {
        let Some(h) = window.header_at(start, limit)? else {
            return Ok(None);
        };
        if h.base_offset >= hw {
            return Ok(Some(RecordSlice::empty(file.clone(), start)));
        }
        if h.last_offset() >= offset {
            break h;
        }
        start += h.total_len() as u64;
    };
    if !min_one_batch && first.total_len() > max_bytes {
        return Ok(Some(RecordSlice::empty(file.clone(), start)));
    }
    let mut taken = first.total_len();
    let mut next_offset = first.last_offset().saturating_add(1);
    // Headers are read no further than the read may reach.
    let reach = start.saturating_add(max_bytes.max(taken) as u64).min(limit);
    while let Some(h) = window.header_at(start + taken as u64, reach)? {
        if !batch_belongs(&h, taken, max_bytes, hw) {
            break;
        }
        taken += h.total_len();
        next_offset = h.last_offset().saturating_add(1);
    }
    Ok(Some(RecordSlice {
        file: file.clone(),
        position: start,
        len: taken,
        next_offset,
    }))
}

/// Batch headers read through a small buffer that holds the bytes at `start..start + filled`.
struct HeaderWindow<'a> {
    file: &'a File,
    file_limit: u64,
    buf: Vec<u8>,
    start: u64,
    filled: usize,
}

impl<'a> HeaderWindow<'a> {
    fn new(file: &'a File, file_limit: u64) -> Self {
        HeaderWindow {
            file,
            file_limit,
            buf: Vec::new(),
            start: 0,
            filled: 0,
        }
    }

    /// The header of the batch at `pos` if the whole batch lies below `limit` (and below the
    /// readable end of the file) and the header is sane; `None` otherwise.
    fn header_at(&mut self, pos: u64, limit: u64) -> io::Result<Option<BatchHeader>> {
        let limit = limit.min(self.file_limit);
        let header_end = pos.saturating_add(BATCH_HEADER_LEN as u64);
        if header_end > limit {
            return Ok(None);
        }
        let window_end = self.start + self.filled as u64;
        if pos < self.start || header_end > window_end {
            let want = (limit - pos).min(HEADER_WINDOW_BYTES as u64) as usize;
            self.buf.resize(want.max(BATCH_HEADER_LEN), 0);
            self.file.read_exact_at(&mut self.buf[..want], pos)?;
            self.start = pos;
            self.filled = want;
        }
        let at = (pos - self.start) as usize;
        match BatchHeader::parse(&self.buf[at..self.filled]) {
            Ok(h)
                if pos.saturating_add(h.total_len() as u64) <= limit
                    && h.last_offset_delta >= 0 =>
            {
                Ok(Some(h))
            }
            _ => Ok(None),
        }
    }
}
