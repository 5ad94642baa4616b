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

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use weir_protocol::{ResponsePart, ResponseParts};
use weir_storage::RecordSlice;

/// Bytes of a file range read at a time when it must pass through user space (TLS).
const COPY_CHUNK_BYTES: usize = 64 * 1024;
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
    /// For file ranges that must be copied (TLS); at most [`COPY_CHUNK_BYTES`].
    scratch: Vec<u8>,
}

impl<W: ResponseSink> FrameWriter<W> {
    pub(crate) fn new(sink: W) -> Self {
        FrameWriter {
            sink,
            scratch: Vec::new(),
        }
    }

    /// One frame in one buffer.
    pub(crate) async fn write_frame(&mut self, frame: &Bytes) -> io::Result<()> {
        self.sink.write_all(frame).await?;
        self.sink.flush().await
    }

    /// One frame in parts, in order.
    pub(crate) async fn write_parts(&mut self, frame: ResponseParts) -> io::Result<()> {
        for part in frame.into_parts() {
            match part {
                ResponsePart::Bytes(b) => self.sink.write_all(&b).await?,
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
        self.sink.flush().await
    }

    async fn write_slice(&mut self, slice: &RecordSlice) -> io::Result<()> {
        if let Some(socket) = self.sink.raw_socket() {
            return send_file(socket, slice).await;
        }
        let mut position = slice.position();
        let mut left = slice.len();
        while left > 0 {
            let n = left.min(COPY_CHUNK_BYTES);
            self.scratch.resize(n, 0);
            read_exact_at(slice, &mut self.scratch[..n], position)?;
            self.sink.write_all(&self.scratch[..n]).await?;
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
