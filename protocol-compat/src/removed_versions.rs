//! The request versions Kafka 3.x served and Kafka 4.0 removed (KIP-896), which the vendored
//! crate no longer decodes but old clients still send (the Go kafka-go 0.2.1 of Debian 12 creates
//! topics with CreateTopics v0; clients of the 0.8 protocol commit offsets with OffsetCommit v0).
//!
//! Each such version is *served as* the oldest version the crate has: the request body is
//! rewritten into that version's layout (fields the old version lacks get the value Kafka gave
//! them: no generation and no member for an OffsetCommit v0, a literal pattern for the ACL
//! APIs v0, no synonyms for DescribeConfigs v0) and decoded by the ordinary path; the response
//! is encoded at that version and rewritten into the old layout. The broker sees the client's
//! own version in the request header and nothing else of this module.
//!
//! What this module must not do: know a Weir type. It maps bytes to bytes, reading through the
//! bounds-checked [`Reader`], so hostile input is an error, never a panic or an allocation
//! beyond the frame's size. JoinGroup v0-1 is not here: the crate still decodes it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::api_key as k;
use crate::legacy::Reader;

/// ConfigSource DEFAULT_CONFIG (DescribeConfigs v1+), which v0's `is_default` stands for.
const CONFIG_SOURCE_DEFAULT: i8 = 5;
/// PatternType LITERAL: the only pattern the ACL APIs v0 knew.
const PATTERN_TYPE_LITERAL: i8 = 3;

/// The version a request of `api_key` at `version` is served as, when `version` is one of the
/// removed versions this module rewrites; `None` for every version the crate decodes itself.
pub(crate) fn served_as(api_key: i16, version: i16) -> Option<i16> {
    let oldest_decoded = match api_key {
        k::OFFSET_COMMIT | k::CREATE_TOPICS | k::OFFSET_FOR_LEADER_EPOCH => 2,
        k::OFFSET_FETCH
        | k::DELETE_TOPICS
        | k::DESCRIBE_ACLS
        | k::CREATE_ACLS
        | k::DELETE_ACLS
        | k::DESCRIBE_CONFIGS
        | k::ALTER_REPLICA_LOG_DIRS
        | k::DESCRIBE_LOG_DIRS => 1,
        _ => return None,
    };
    (version < oldest_decoded).then_some(oldest_decoded)
}

/// Rewrites the body of a request of `api_key` at the removed `version` into the layout of
/// [`served_as`]`(api_key, version)`.
pub(crate) fn upgrade_request(api_key: i16, version: i16, body: Bytes) -> Result<Bytes, String> {
    let mut t = Transcoder::new(body);
    match api_key {
        // v0: no generation or member (a commit outside any group generation, as Kafka's
        // v0 commits were); v1 adds them and a per-partition commit timestamp; v2 drops the
        // timestamp for a request-wide retention time (-1: the broker's retention).
        k::OFFSET_COMMIT => {
            t.string("group_id")?;
            if version == 0 {
                t.out.put_i32(-1);
                t.out.put_i16(0);
            } else {
                t.fixed(4, "generation_id")?;
                t.string("member_id")?;
            }
            t.out.put_i64(-1);
            t.array("topics", |t| {
                t.string("topic name")?;
                t.array("partitions", |t| {
                    t.fixed(4 + 8, "partition index and offset")?;
                    if version == 1 {
                        t.skip(8, "commit_timestamp")?;
                    }
                    t.nullable_string("committed_metadata")
                })
            })?;
        }
        // v0 lacks the trailing `validate_only` of v1; v1 and v2 are the same.
        k::CREATE_TOPICS => {
            t.rest();
            if version == 0 {
                t.out.put_u8(0);
            }
        }
        // v2 adds each partition's current leader epoch (-1: not checked).
        k::OFFSET_FOR_LEADER_EPOCH => {
            t.array("topics", |t| {
                t.string("topic name")?;
                t.array("partitions", |t| {
                    t.fixed(4, "partition")?;
                    t.out.put_i32(-1);
                    t.fixed(4, "leader_epoch")
                })
            })?;
        }
        k::CREATE_ACLS => {
            t.array("creations", |t| {
                t.fixed(1, "resource_type")?;
                t.string("resource_name")?;
                t.out.put_i8(PATTERN_TYPE_LITERAL);
                t.string("principal")?;
                t.string("host")?;
                t.fixed(2, "operation and permission_type")
            })?;
        }
        k::DESCRIBE_ACLS => acl_filter(&mut t)?,
        k::DELETE_ACLS => t.array("filters", acl_filter)?,
        // v1 adds the trailing `include_synonyms`.
        k::DESCRIBE_CONFIGS => {
            t.rest();
            t.out.put_u8(0);
        }
        // The same layout as the version they are served as (only the broker's ZooKeeper
        // storage, or its throttling behaviour, told them apart).
        k::OFFSET_FETCH | k::DELETE_TOPICS | k::ALTER_REPLICA_LOG_DIRS | k::DESCRIBE_LOG_DIRS => {
            t.rest()
        }
        other => return Err(format!("api key {other} v{version} has no rewrite")),
    }
    Ok(t.finish())
}

/// An ACL binding filter of DescribeAcls/DeleteAcls v0, given v1's literal pattern type.
fn acl_filter(t: &mut Transcoder) -> Result<(), String> {
    t.fixed(1, "resource_type_filter")?;
    t.nullable_string("resource_name_filter")?;
    t.out.put_i8(PATTERN_TYPE_LITERAL);
    t.nullable_string("principal_filter")?;
    t.nullable_string("host_filter")?;
    t.fixed(2, "operation and permission_type")
}

/// Rewrites `body`, a response of `api_key` encoded at [`served_as`]`(api_key, version)`, into
/// the layout of the removed `version`, appending it to `out`.
pub(crate) fn downgrade_response(
    api_key: i16,
    version: i16,
    body: Bytes,
    out: &mut BytesMut,
) -> Result<(), String> {
    let mut t = Transcoder::new(body);
    match api_key {
        // v2 adds `throttle_time_ms` in front; v1 adds each topic's `error_message`.
        k::CREATE_TOPICS => {
            t.skip(4, "throttle_time_ms")?;
            if version == 0 {
                t.array("topics", |t| {
                    t.string("topic name")?;
                    t.fixed(2, "error_code")?;
                    t.skip_nullable_string("error_message")
                })?;
            } else {
                t.rest();
            }
        }
        // v1 adds `throttle_time_ms` in front.
        k::DELETE_TOPICS => {
            t.skip(4, "throttle_time_ms")?;
            t.rest();
        }
        // v2 adds `throttle_time_ms` in front; v1 adds each partition's `leader_epoch`.
        k::OFFSET_FOR_LEADER_EPOCH => {
            t.skip(4, "throttle_time_ms")?;
            if version == 0 {
                t.array("topics", |t| {
                    t.string("topic name")?;
                    t.array("partitions", |t| {
                        t.fixed(2 + 4, "error_code and partition")?;
                        t.skip(4, "leader_epoch")?;
                        t.fixed(8, "end_offset")
                    })
                })?;
            } else {
                t.rest();
            }
        }
        // v1 adds each resource's pattern type.
        k::DESCRIBE_ACLS => {
            t.fixed(4 + 2, "throttle_time_ms and error_code")?;
            t.nullable_string("error_message")?;
            t.array("resources", |t| {
                t.fixed(1, "resource_type")?;
                t.string("resource_name")?;
                t.skip(1, "pattern_type")?;
                t.array("acls", |t| {
                    t.string("principal")?;
                    t.string("host")?;
                    t.fixed(2, "operation and permission_type")
                })
            })?;
        }
        k::DELETE_ACLS => {
            t.fixed(4, "throttle_time_ms")?;
            t.array("filter_results", |t| {
                t.fixed(2, "error_code")?;
                t.nullable_string("error_message")?;
                t.array("matching_acls", |t| {
                    t.fixed(2, "error_code")?;
                    t.nullable_string("error_message")?;
                    t.fixed(1, "resource_type")?;
                    t.string("resource_name")?;
                    t.skip(1, "pattern_type")?;
                    t.string("principal")?;
                    t.string("host")?;
                    t.fixed(2, "operation and permission_type")
                })
            })?;
        }
        // v1 replaced `is_default` with `config_source` and added the synonyms.
        k::DESCRIBE_CONFIGS => {
            t.fixed(4, "throttle_time_ms")?;
            t.array("results", |t| {
                t.fixed(2, "error_code")?;
                t.nullable_string("error_message")?;
                t.fixed(1, "resource_type")?;
                t.string("resource_name")?;
                t.array("configs", |t| {
                    t.string("name")?;
                    t.nullable_string("value")?;
                    t.fixed(1, "read_only")?;
                    let source = t.r.i8("config_source")?;
                    t.out.put_u8(u8::from(source == CONFIG_SOURCE_DEFAULT));
                    t.fixed(1, "is_sensitive")?;
                    let synonyms = t.r.array_len("synonyms")?;
                    for _ in 0..synonyms {
                        t.skip_string("synonym name")?;
                        t.skip_nullable_string("synonym value")?;
                        t.skip(1, "synonym source")?;
                    }
                    Ok(())
                })
            })?;
        }
        k::OFFSET_COMMIT
        | k::OFFSET_FETCH
        | k::CREATE_ACLS
        | k::ALTER_REPLICA_LOG_DIRS
        | k::DESCRIBE_LOG_DIRS => t.rest(),
        other => return Err(format!("api key {other} v{version} has no rewrite")),
    }
    out.put_slice(&t.finish());
    Ok(())
}

/// Reads one layout and writes another: fields are copied, skipped or inserted in wire order.
/// Every read is bounds-checked by [`Reader`]; the output is never larger than the input plus
/// a few bytes per element, so it is bounded by the frame.
struct Transcoder {
    r: Reader,
    out: BytesMut,
}

impl Transcoder {
    fn new(body: Bytes) -> Self {
        let out = BytesMut::with_capacity(body.len() + 16);
        Transcoder {
            r: Reader::new(body),
            out,
        }
    }

    /// Copies `n` bytes of fixed-size fields.
    fn fixed(&mut self, n: usize, what: &str) -> Result<(), String> {
        let raw = self.r.take(n, what)?;
        self.out.put_slice(&raw);
        Ok(())
    }

    fn skip(&mut self, n: usize, what: &str) -> Result<(), String> {
        self.r.take(n, what).map(drop)
    }

    /// Copies a classic string; `nullable` allows the null (-1) length.
    fn copy_string(&mut self, what: &str, nullable: bool) -> Result<(), String> {
        let len = self.r.i16(what)?;
        self.out.put_i16(len);
        if len == -1 && nullable {
            return Ok(());
        }
        let len = usize::try_from(len).map_err(|_| format!("{what}: invalid length {len}"))?;
        self.fixed(len, what)
    }

    fn string(&mut self, what: &str) -> Result<(), String> {
        self.copy_string(what, false)
    }

    fn nullable_string(&mut self, what: &str) -> Result<(), String> {
        self.copy_string(what, true)
    }

    fn skip_string(&mut self, what: &str) -> Result<(), String> {
        self.r.string(what).map(drop)
    }

    fn skip_nullable_string(&mut self, what: &str) -> Result<(), String> {
        self.r.nullable_string(what, true).map(drop)
    }

    /// Copies a classic array's count and transcodes each element with `element`.
    fn array(
        &mut self,
        what: &str,
        mut element: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        let n = self.r.array_len(what)?;
        // `array_len` bounds n by the bytes remaining, far below i32::MAX.
        self.out.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
        for _ in 0..n {
            element(self)?;
        }
        Ok(())
    }

    /// Copies everything not read yet.
    fn rest(&mut self) {
        let rest = std::mem::replace(&mut self.r, Reader::new(Bytes::new())).into_rest();
        self.out.put_slice(&rest);
    }

    fn finish(mut self) -> Bytes {
        // Trailing bytes after the fields are kept, as the ordinary decoders ignore them.
        self.rest();
        self.out.freeze()
    }
}
