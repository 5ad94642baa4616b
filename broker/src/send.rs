//! Writes response frames to a connection. A frame comes as parts (see
//! `weir_protocol::ResponseParts`): encoded bytes, and records a Fetch left in their segment file
//! ([`RecordSlice`]). On a plaintext socket the kernel sends those records from the page cache
//! with sendfile(2), so they are never copied into the broker; under TLS, whose encryption must
//! see them, they are read in bounded chunks and written through the TLS stream.
//!
//! This module owns the write side of one connection. It must not decide what to answer, and it
//! must never let a frame go out shorter than its size prefix says: if a file range cannot be
//! sent whole (its segment was truncated under it), the write fails and the connection closes.

use std::io;
use std::os::fd::AsRawFd;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use weir_protocol::{ResponsePart, ResponseParts};
use weir_storage::RecordSlice;

/// Size of the buffer that gathers a frame's small parts, and through which file ranges pass
/// when they must be copied (TLS, or too small for sendfile to pay).
const COPY_CHUNK_BYTES: usize = 64 * 1024;
/// File ranges from this size on go with sendfile on a plaintext socket; below it a copy into
/// the gathering buffer costs less than a second system call and a second TCP segment.
const SENDFILE_MIN_BYTES: usize = 16 * 1024;
/// At most this much per sendfile(2) call (Linux sends at most 0x7ffff000 bytes per call).
const SENDFILE_MAX_BYTES: usize = 1 << 30;

/// The write half of a connection.
pub(crate) trait ResponseSink: AsyncWrite + Unpin + Send + 'static {
    /// The socket itself, when what is written to it reaches the peer unchanged (plaintext):
    /// the kernel may then send file ranges to it directly.
    fn raw_socket(&self) -> Option<&TcpStream> {
        None
    }
}

impl ResponseSink for OwnedWriteHalf {
    fn raw_socket(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

/// TLS (and any other wrapped stream): every byte goes through the wrapper.
impl<T: AsyncRead + AsyncWrite + Send + 'static> ResponseSink for tokio::io::WriteHalf<T> {}

/// Writes frames to one connection.
pub(crate) struct FrameWriter<W> {
    sink: W,
    /// Gathers small parts and copied file ranges; at most [`COPY_CHUNK_BYTES`].
    scratch: Vec<u8>,
}

impl<W: ResponseSink> FrameWriter<W> {
    pub(crate) fn new(sink: W) -> Self {
        FrameWriter {
            sink,
            scratch: Vec::new(),
        }
    }

    /// One frame in parts, in order. Small parts are gathered into one buffer and written
    /// together (a small Fetch answer is one write, as before parts existed); a file range of at
    /// least [`SENDFILE_MIN_BYTES`] on a plaintext socket goes with sendfile.
    pub(crate) async fn write_parts(&mut self, frame: ResponseParts) -> io::Result<()> {
        let parts = frame.into_parts();
        // One buffer (every response but a Fetch with records): written as it is.
        if let [ResponsePart::Bytes(frame)] = parts.as_slice() {
            self.sink.write_all(frame).await?;
            return self.sink.flush().await;
        }
        self.scratch.clear();
        for part in parts {
            match part {
                ResponsePart::Bytes(b) if self.scratch.len() + b.len() <= COPY_CHUNK_BYTES => {
                    self.scratch.extend_from_slice(&b)
                }
                ResponsePart::Bytes(b) => {
                    self.write_gathered().await?;
                    self.sink.write_all(&b).await?;
                }
                ResponsePart::Deferred(d) => {
                    let Some(slice) = d.source::<RecordSlice>() else {
                        return Err(io::Error::other("deferred records of an unknown kind"));
                    };
                    if slice.len() != d.len() {
                        return Err(io::Error::other("deferred records changed length"));
                    }
                    self.write_slice(slice).await?;
                }
            }
        }
        self.write_gathered().await?;
        self.sink.flush().await
    }

    async fn write_gathered(&mut self) -> io::Result<()> {
        if !self.scratch.is_empty() {
            self.sink.write_all(&self.scratch).await?;
            self.scratch.clear();
        }
        Ok(())
    }

    async fn write_slice(&mut self, slice: &RecordSlice) -> io::Result<()> {
        if slice.len() >= SENDFILE_MIN_BYTES && self.sink.raw_socket().is_some() {
            self.write_gathered().await?;
            if let Some(socket) = self.sink.raw_socket() {
                return send_file(socket, slice).await;
            }
        }
        // Copied through the gathering buffer, a chunk at a time.
        let mut position = slice.position();
        let mut left = slice.len();
        while left > 0 {
            if self.scratch.len() == COPY_CHUNK_BYTES {
                self.write_gathered().await?;
            }
            let at = self.scratch.len();
            let n = left.min(COPY_CHUNK_BYTES - at);
            self.scratch.resize(at + n, 0);
            read_exact_at(slice, &mut self.scratch[at..], position)?;
            position += n as u64;
            left -= n;
        }
        Ok(())
    }

    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        self.sink.shutdown().await
    }
}

fn read_exact_at(slice: &RecordSlice, buf: &mut [u8], position: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(slice.file(), buf, position)
}

/// Sends `slice` from its file to `socket` with sendfile(2), waiting for the socket to take it.
async fn send_file(socket: &TcpStream, slice: &RecordSlice) -> io::Result<()> {
    let file = slice.file().as_raw_fd();
    let mut position = slice.position();
    let mut left = slice.len();
    while left > 0 {
        socket.writable().await?;
        let sent = socket.try_io(Interest::WRITABLE, || {
            let mut offset = libc::off_t::try_from(position)
                .map_err(|_| io::Error::other("file position out of range"))?;
            let count = left.min(SENDFILE_MAX_BYTES);
            // SAFETY: both descriptors are open for the call (the socket is borrowed, the file
            // is held by the slice), and `offset` is a valid, exclusively borrowed off_t.
            let n = unsafe { libc::sendfile(socket.as_raw_fd(), file, &mut offset, count) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            // The file ends before the range: its segment was truncated since the read.
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file shorter than the records being sent",
                ))
            }
            Ok(n) => {
                position += n as u64;
                left -= n.min(left);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;
    use weir_protocol::DeferredRecords;
    use weir_storage::batch::testing::{build_batch, RecordRef};
    use weir_storage::{DataDir, Log, LogConfig};

    use super::*;

    /// A log holding `batches` batches of `per_batch` 100-byte records, and a slice of them all.
    fn filled(
        dir: &std::path::Path,
        batches: usize,
        per_batch: usize,
    ) -> (std::sync::Arc<DataDir>, std::sync::Arc<Log>, RecordSlice) {
        let data = DataDir::open(dir).expect("data dir");
        let log = data.open_log("t-0", LogConfig::default()).expect("log");
        let value = [b'v'; 100];
        let records: Vec<RecordRef<'_>> =
            (0..per_batch).map(|_| (None, Some(&value[..]))).collect();
        for _ in 0..batches {
            log.append(build_batch(&records, 1), &Default::default())
                .expect("append");
        }
        let slice = log
            .slice_below(0, usize::MAX, i64::MAX, true)
            .expect("slice")
            .expect("some batches");
        (data, log, slice)
    }

    /// A frame of `head`, the slice, and `tail`, as a Fetch response's parts would be.
    fn frame(head: &[u8], slice: &RecordSlice, tail: &[u8]) -> ResponseParts {
        let parts = vec![
            ResponsePart::Bytes(Bytes::copy_from_slice(head)),
            ResponsePart::Deferred(DeferredRecords::new(slice.len(), slice.clone())),
            ResponsePart::Bytes(Bytes::copy_from_slice(tail)),
        ];
        ResponseParts::new(parts)
    }

    async fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.expect("connect"), accepted.expect("accept").0)
    }

    #[tokio::test]
    async fn a_file_range_goes_out_whole_on_plaintext_and_through_a_wrapped_stream() {
        // Large (sendfile, and more than one copy chunk) and small (gathered with the head).
        for (batches, per_batch) in [(40, 200), (1, 3)] {
            let dir = tempfile::tempdir().expect("tmp");
            let (_data, _log, slice) = filled(dir.path(), batches, per_batch);
            sends_whole(&slice).await;
        }
    }

    async fn sends_whole(slice: &RecordSlice) {
        let expected = {
            let mut v = b"head".to_vec();
            v.extend(slice.read_to_vec().expect("read"));
            v.extend(b"tail");
            v
        };

        // Plaintext: sendfile.
        let (client, server) = connected().await;
        let (_r, w) = server.into_split();
        let got = send_and_read(w, client, frame(b"head", slice, b"tail")).await;
        assert_eq!(got, expected);

        // A wrapped stream (as under TLS): copied in chunks.
        let (client, server) = tokio::io::duplex(4096);
        let (_r, w) = tokio::io::split(server);
        let got = send_and_read(w, client, frame(b"head", slice, b"tail")).await;
        assert_eq!(got, expected);
    }

    /// Writes `frame` to `sink`, closes it, and returns what `peer` read.
    async fn send_and_read<W: ResponseSink>(
        sink: W,
        mut peer: impl AsyncRead + Unpin + Send + 'static,
        frame: ResponseParts,
    ) -> Vec<u8> {
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.expect("read");
            got
        });
        let mut writer = FrameWriter::new(sink);
        writer.write_parts(frame).await.expect("sent");
        writer.shutdown().await.expect("shutdown");
        drop(writer);
        reader.await.expect("reader")
    }

    #[tokio::test]
    async fn a_range_cut_short_by_a_truncation_fails_the_write() {
        let dir = tempfile::tempdir().expect("tmp");
        let (_data, log, slice) = filled(dir.path(), 10, 200);
        // Truncated under the slice (as a follower truncating its log could).
        let segment = std::fs::read_dir(log.dir())
            .expect("log dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|e| e == "log"))
            .expect("segment file");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .expect("open")
            .set_len(slice.position() + slice.len() as u64 / 2)
            .expect("truncate");

        let (_client, server) = connected().await;
        let (_r, w) = server.into_split();
        let mut writer = FrameWriter::new(w);
        let sent = writer.write_parts(frame(b"head", &slice, b"tail")).await;
        assert!(
            matches!(&sent, Err(e) if e.kind() == io::ErrorKind::UnexpectedEof),
            "{sent:?}"
        );

        let (_client, server) = tokio::io::duplex(1 << 20);
        let (_r, w) = tokio::io::split(server);
        let mut writer = FrameWriter::new(w);
        let sent = writer.write_parts(frame(b"head", &slice, b"tail")).await;
        assert!(
            matches!(&sent, Err(e) if e.kind() == io::ErrorKind::UnexpectedEof),
            "{sent:?}"
        );
    }
}
