//! The compression codecs of Kafka record batches and message sets, with every decompression
//! bounded by a caller-given output limit.
//!
//! The log never decompresses: batches are stored and served as producers sent them. Only the few
//! places that must look at records use this module (the key check of compacted topics, up- and
//! down-conversion of the legacy message formats). Their input comes from the network, so a small
//! compressed input that expands without bound (a "zip bomb") must end in
//! [`CompressionError::TooLarge`], never in an allocation beyond `max_bytes`.
//!
//! Framing follows what Kafka's clients write and read:
//! - gzip: RFC 1952 members (several concatenated members are read as one stream);
//! - snappy: the xerial framing of snappy-java (a magic header, then length-prefixed raw blocks)
//!   when present, else one raw snappy block (what librdkafka writes); written with xerial framing,
//!   as the Kafka broker does;
//! - lz4: LZ4 frames. Magic-0 message sets carry Kafka's historical header checksum, computed over
//!   the frame magic too (KAFKA-3160); it is ignored when reading and reproduced when writing, as
//!   Kafka does for magic 0;
//! - zstd: zstd frames (magic 2 only); written only by the log cleaner, which recompresses what it
//!   keeps of a batch.
//!
//! All codecs are pure Rust.

use std::io::{Read, Write};

/// A compression codec id, as in the low three attribute bits of a batch or message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Uncompressed.
    None,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4.
    Lz4,
    /// zstd (magic 2 only).
    Zstd,
}

impl Codec {
    /// The codec for attribute bits `id` (the caller masks them).
    pub fn from_id(id: u8) -> Result<Codec, CompressionError> {
        Ok(match id {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            other => return Err(CompressionError::UnknownCodec(other)),
        })
    }

    /// The attribute bits of this codec.
    pub fn id(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }
}

/// Why data could not be compressed or decompressed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CompressionError {
    /// Attribute bits that name no codec.
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    /// The output would exceed the caller's limit.
    #[error("decompressed data exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The compressed data is malformed.
    #[error("corrupt {codec:?} data: {reason}")]
    Corrupt {
        /// The codec.
        codec: Codec,
        /// What the decoder said.
        reason: String,
    },
}

/// snappy-java's stream header: magic, then version 1 and minimum compatible version 1.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default block size; each block is compressed on its own.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// LZ4 frame magic number (little endian on the wire).
const LZ4_FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
const LZ4_FLG_CONTENT_SIZE: u8 = 0x08;
const LZ4_FLG_DICT_ID: u8 = 0x01;

fn corrupt(codec: Codec, e: impl std::fmt::Display) -> CompressionError {
    CompressionError::Corrupt {
        codec,
        reason: e.to_string(),
    }
}

/// Reads `reader` to its end into `out`, failing once more than `max_bytes` would be held.
/// `read_to_end` grows the buffer as data arrives, so memory follows the real output.
fn read_bounded(
    codec: Codec,
    reader: impl Read,
    out: &mut Vec<u8>,
    max_bytes: usize,
) -> Result<(), CompressionError> {
    let room = max_bytes.saturating_sub(out.len());
    let cap = u64::try_from(room).unwrap_or(u64::MAX).saturating_add(1);
    let read = reader
        .take(cap)
        .read_to_end(out)
        .map_err(|e| corrupt(codec, e))?;
    if read > room {
        return Err(CompressionError::TooLarge { limit: max_bytes });
    }
    Ok(())
}

/// Decompresses `data`, refusing to produce more than `max_bytes`. `legacy_lz4` is true for the
/// payload of a magic-0 lz4 message, whose frame header checksum is Kafka's historical one.
pub fn decompress(
    codec: Codec,
    data: &[u8],
    max_bytes: usize,
    legacy_lz4: bool,
) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    match codec {
        Codec::None => {
            if data.len() > max_bytes {
                return Err(CompressionError::TooLarge { limit: max_bytes });
            }
            out.extend_from_slice(data);
        }
        Codec::Gzip => read_bounded(
            codec,
            flate2::read::MultiGzDecoder::new(data),
            &mut out,
            max_bytes,
        )?,
        Codec::Snappy => snappy_decompress(data, &mut out, max_bytes)?,
        Codec::Lz4 => {
            if legacy_lz4 {
                let fixed = with_lz4_header_checksum(data, false)?;
                lz4_decompress(&fixed, &mut out, max_bytes)?;
            } else {
                lz4_decompress(data, &mut out, max_bytes)?;
            }
        }
        Codec::Zstd => zstd_decompress(data, &mut out, max_bytes)?,
    }
    Ok(out)
}

fn snappy_block(block: &[u8], out: &mut Vec<u8>, max_bytes: usize) -> Result<(), CompressionError> {
    let len = snap::raw::decompress_len(block).map_err(|e| corrupt(Codec::Snappy, e))?;
    let start = out.len();
    // The length is the block's own claim: check it before allocating for it.
    if len > max_bytes.saturating_sub(start) {
        return Err(CompressionError::TooLarge { limit: max_bytes });
    }
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(Codec::Snappy, e))?;
    out.truncate(start + written);
    Ok(())
}

fn snappy_decompress(
    data: &[u8],
    out: &mut Vec<u8>,
    max_bytes: usize,
) -> Result<(), CompressionError> {
    if !data.starts_with(XERIAL_MAGIC) {
        return snappy_block(data, out, max_bytes);
    }
    let mut rest = data
        .get(XERIAL_HEADER_LEN..)
        .ok_or_else(|| corrupt(Codec::Snappy, "truncated xerial header"))?;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(Codec::Snappy, "truncated xerial block length"))?;
        let len = usize::try_from(i32::from_be_bytes(*len))
            .map_err(|_| corrupt(Codec::Snappy, "negative xerial block length"))?;
        let block = tail
            .get(..len)
            .ok_or_else(|| corrupt(Codec::Snappy, "truncated xerial block"))?;
        snappy_block(block, out, max_bytes)?;
        rest = &tail[len..];
    }
    Ok(())
}

/// The position of the header checksum byte of the LZ4 frame at the start of `data`.
fn lz4_header_checksum_at(data: &[u8]) -> Result<usize, CompressionError> {
    if data.len() < 7 || data[..4] != LZ4_FRAME_MAGIC {
        return Err(corrupt(Codec::Lz4, "not an LZ4 frame"));
    }
    let flg = data[4];
    let mut at = 6;
    if flg & LZ4_FLG_CONTENT_SIZE != 0 {
        at += 8;
    }
    if flg & LZ4_FLG_DICT_ID != 0 {
        at += 4;
    }
    if at >= data.len() {
        return Err(corrupt(Codec::Lz4, "truncated LZ4 frame header"));
    }
    Ok(at)
}

/// A copy of `data` whose first frame carries the standard header checksum (over the frame
/// descriptor), or with `legacy` Kafka's magic-0 one (over the frame magic and the descriptor).
fn with_lz4_header_checksum(data: &[u8], legacy: bool) -> Result<Vec<u8>, CompressionError> {
    let at = lz4_header_checksum_at(data)?;
    let covered = if legacy { &data[..at] } else { &data[4..at] };
    let checksum = (twox_hash::XxHash32::oneshot(0, covered) >> 8) as u8;
    let mut fixed = data.to_vec();
    fixed[at] = checksum;
    Ok(fixed)
}

fn lz4_decompress(
    data: &[u8],
    out: &mut Vec<u8>,
    max_bytes: usize,
) -> Result<(), CompressionError> {
    read_bounded(
        Codec::Lz4,
        lz4_flex::frame::FrameDecoder::new(data),
        out,
        max_bytes,
    )
}

fn zstd_decompress(
    data: &[u8],
    out: &mut Vec<u8>,
    max_bytes: usize,
) -> Result<(), CompressionError> {
    let mut rest = data;
    // One frame per batch is what producers write; later frames are read too, as zstd streams allow.
    while !rest.is_empty() {
        // The window is allocated up front from the frame header, so it is bounded like the output,
        // but never below the 128 KiB window that ruzstd's encoder (the log cleaner's) declares
        // whatever the content size.
        let window = u64::try_from(max_bytes.max(1 << 17)).unwrap_or(u64::MAX);
        let decoder =
            ruzstd::decoding::StreamingDecoder::new_with_max_window_size(&mut rest, window)
                .map_err(|e| corrupt(Codec::Zstd, e))?;
        read_bounded(Codec::Zstd, decoder, out, max_bytes)?;
    }
    Ok(())
}

/// Compresses `data` with `codec` (`None` copies). `legacy_lz4` writes
/// the magic-0 header checksum old consumers expect.
pub fn compress(codec: Codec, data: &[u8], legacy_lz4: bool) -> Result<Vec<u8>, CompressionError> {
    match codec {
        Codec::None => Ok(data.to_vec()),
        Codec::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).map_err(|e| corrupt(codec, e))?;
            e.finish().map_err(|e| corrupt(codec, e))
        }
        Codec::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len() / 2);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in data.chunks(XERIAL_BLOCK_BYTES) {
                let block = encoder.compress_vec(chunk).map_err(|e| corrupt(codec, e))?;
                let len = i32::try_from(block.len()).map_err(|e| corrupt(codec, e))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Codec::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(data).map_err(|e| corrupt(codec, e))?;
            let out = e.finish().map_err(|e| corrupt(codec, e))?;
            if legacy_lz4 {
                with_lz4_header_checksum(&out, true)
            } else {
                Ok(out)
            }
        }
        // Only the log cleaner writes zstd (it recompresses what it keeps of a producer's zstd
        // batch): ruzstd's fastest level, a standard frame any zstd reader takes.
        Codec::Zstd => Ok(ruzstd::encoding::compress_to_vec(
            data,
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &[u8] = b"the quick brown fox jumps over the lazy dog, again and again and again";

    #[test]
    fn every_writable_codec_round_trips() {
        let data: Vec<u8> = TEXT.iter().cycle().take(100_000).copied().collect();
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            for legacy in [false, true] {
                let packed = compress(codec, &data, legacy).expect("compress");
                let back = decompress(codec, &packed, data.len(), legacy).expect("decompress");
                assert_eq!(back, data, "{codec:?} legacy={legacy}");
            }
        }
    }

    #[test]
    fn output_beyond_the_limit_is_an_error_for_every_codec() {
        let zeros = vec![0u8; 1 << 20];
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let packed = compress(codec, &zeros, false).expect("compress");
            assert!(
                packed.len() < zeros.len() / 10,
                "{codec:?} compresses zeros"
            );
            assert_eq!(
                decompress(codec, &packed, (1 << 20) - 1, false),
                Err(CompressionError::TooLarge {
                    limit: (1 << 20) - 1
                }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn raw_snappy_as_librdkafka_writes_it_is_read() {
        let raw = snap::raw::Encoder::new()
            .compress_vec(TEXT)
            .expect("compress");
        assert_eq!(
            decompress(Codec::Snappy, &raw, 1000, false).expect("raw"),
            TEXT
        );
        // A raw block claiming a huge length is refused before anything is allocated for it.
        let mut claim = Vec::new();
        claim.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            decompress(Codec::Snappy, &claim, 1000, false),
            Err(CompressionError::TooLarge { .. })
        ));
    }

    #[test]
    fn legacy_lz4_header_checksum_differs_and_each_side_reads_its_own() {
        let modern = compress(Codec::Lz4, TEXT, false).expect("lz4");
        let legacy = compress(Codec::Lz4, TEXT, true).expect("lz4");
        assert_ne!(modern, legacy, "the header checksum byte differs");
        assert!(decompress(Codec::Lz4, &legacy, 1000, false).is_err());
        assert_eq!(
            decompress(Codec::Lz4, &legacy, 1000, true).expect("legacy"),
            TEXT
        );
        // Magic 0 ignores the stored checksum, so a modern frame reads there too.
        assert_eq!(
            decompress(Codec::Lz4, &modern, 1000, true).expect("modern"),
            TEXT
        );
    }

    #[test]
    fn zstd_frames_are_read() {
        // A zstd frame made of one raw block ("hello"), written by hand: magic, a frame header with
        // the single-segment flag and a 1-byte content size, then a last raw block of 5 bytes.
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x05];
        frame.extend_from_slice(&[0x29, 0x00, 0x00]);
        frame.extend_from_slice(b"hello");
        assert_eq!(
            decompress(Codec::Zstd, &frame, 100, false).expect("zstd"),
            b"hello"
        );
        assert_eq!(
            decompress(Codec::Zstd, &frame, 4, false),
            Err(CompressionError::TooLarge { limit: 4 })
        );
    }

    proptest::proptest! {
        #[test]
        fn decompress_never_panics(
            codec in 0u8..5,
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            legacy in proptest::bool::ANY,
        ) {
            let codec = Codec::from_id(codec).expect("valid id");
            if let Ok(out) = decompress(codec, &bytes, 4096, legacy) {
                proptest::prop_assert!(out.len() <= 4096);
            }
        }
    }
}
