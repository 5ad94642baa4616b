//! Request framing: every Kafka request and response is a 4-byte big-endian signed size
//! followed by that many bytes. The broker reads the prefix, validates it here, and only
//! then reads (and allocates for) the body.

/// Default maximum request size, as Kafka's `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// Maximum request size before a connection has authenticated (Kafka uses the same
/// 512 KiB bound for SASL handshakes), so unauthenticated peers cannot make the broker
/// buffer 100 MiB each.
pub const MAX_UNAUTHENTICATED_REQUEST_BYTES: usize = 512 * 1024;

/// Why a size prefix was rejected. The caller closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The prefix announces more than the allowed maximum.
    #[error("request of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// Limit in force.
        max: usize,
    },
    /// The prefix is negative.
    #[error("negative request size {0}")]
    Negative(i32),
}

/// Validates the 4-byte big-endian size prefix and returns the body length.
///
/// A zero length is returned as `Ok(0)`; such a frame then fails header decoding.
pub fn frame_len(prefix: [u8; 4], max_bytes: usize) -> Result<usize, FrameError> {
    let len = i32::from_be_bytes(prefix);
    if len < 0 {
        return Err(FrameError::Negative(len));
    }
    // i32 -> usize cannot fail on the 32/64-bit targets we build for, but stay total.
    let len = usize::try_from(len).map_err(|_| FrameError::Negative(len))?;
    if len > max_bytes {
        return Err(FrameError::TooLarge {
            len,
            max: max_bytes,
        });
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_up_to_the_limit() {
        assert_eq!(frame_len([0, 0, 0, 0], 10), Ok(0));
        assert_eq!(frame_len([0, 0, 0, 10], 10), Ok(10));
        assert_eq!(
            frame_len(100u32.to_be_bytes(), DEFAULT_MAX_REQUEST_BYTES),
            Ok(100)
        );
    }

    #[test]
    fn rejects_too_large_and_negative() {
        assert_eq!(
            frame_len([0, 0, 0, 11], 10),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );
        assert_eq!(
            frame_len([0xff, 0xff, 0xff, 0xff], 10),
            Err(FrameError::Negative(-1))
        );
        assert_eq!(
            frame_len([0x80, 0, 0, 0], usize::MAX),
            Err(FrameError::Negative(i32::MIN))
        );
        assert!(frame_len(
            (MAX_UNAUTHENTICATED_REQUEST_BYTES as u32 + 1).to_be_bytes(),
            MAX_UNAUTHENTICATED_REQUEST_BYTES
        )
        .is_err());
    }
}
