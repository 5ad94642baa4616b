//! The conversion between Weir-owned types and their kafka-protocol counterparts.
//!
//! [`Mirror<K>`] converts a Weir value to the kafka-protocol value `K` (encoding: responses on
//! the broker side, requests on the client side) and back (decoding). It is implemented for the
//! primitives, for `String` against every string-like kafka-protocol type (`StrBytes`,
//! `TopicName`, `GroupId`, `TransactionalId`), `i32`/`BrokerId`, `i64`/`ProducerId`,
//! `[u8; 16]`/`Uuid`, [`ErrorCode`]/`i16`, and element-wise for `Vec` and `Option`.
//!
//! [`mirror!`] declares a Weir struct whose fields carry the names of the kafka-protocol
//! struct's fields (or name them with `as`) and implements `Mirror` for it, so a struct of
//! mirrored fields converts field by field, nested structs included. A Weir struct may carry a
//! subset of the fields: the others are left at kafka-protocol's default when encoding and
//! ignored when decoding. One Weir struct may mirror several kafka-protocol structs of the same
//! shape (e.g. [`crate::PartitionError`]).
//!
//! Mappings need not look at the version: the vendored kafka-protocol drops fields a version
//! does not have when encoding (a `WEIR PATCH`, see `vendor/kafka-protocol/VENDORED.md`) and
//! fills in the schema default for them when decoding.
//!
//! [`ErrorCodes`] collects the error codes of a mirrored response for the broker's metrics.
//!
//! [`Sample`] builds a value with every field set (every list with two elements), which the
//! generated tests and fuzz seeds encode at every served version so mutations reach the inner
//! decoders of APIs nobody wrote a seed for.

use bytes::Bytes;
use kafka_protocol::messages as m;
use kafka_protocol::protocol::StrBytes;

use crate::error::ErrorCode;

/// A Weir value with a kafka-protocol counterpart `K`.
pub(crate) trait Mirror<K>: Sized {
    /// Weir to kafka-protocol.
    fn to_kp(&self) -> K;
    /// kafka-protocol to Weir.
    fn from_kp(k: K) -> Self;
}

/// A value with every field set, for generated test requests.
pub(crate) trait Sample {
    fn sample() -> Self;
}

/// Collects the non-zero error codes of a value (nested ones included, in field order): what
/// the broker's error metrics count (`Response::error_codes`).
pub(crate) trait ErrorCodes {
    fn error_codes(&self, _out: &mut Vec<ErrorCode>) {}
}

macro_rules! identity_mirror {
    ($($t:ty = $sample:expr),* $(,)?) => {$(
        impl Mirror<$t> for $t {
            fn to_kp(&self) -> $t {
                self.clone()
            }
            fn from_kp(k: $t) -> Self {
                k
            }
        }
        impl Sample for $t {
            fn sample() -> Self {
                $sample
            }
        }
        impl ErrorCodes for $t {}
    )*};
}

identity_mirror!(
    bool = true,
    i8 = 1,
    i16 = 1,
    i32 = 1,
    i64 = 1,
    u16 = 1,
    u32 = 1,
    f64 = 1.0,
    Bytes = Bytes::from_static(b"weir"),
);

macro_rules! string_mirror {
    ($($t:ty => |$s:ident| $wrap:expr, |$k:ident| $unwrap:expr;)*) => {$(
        impl Mirror<$t> for String {
            fn to_kp(&self) -> $t {
                let $s = StrBytes::from_string(self.clone());
                $wrap
            }
            fn from_kp($k: $t) -> Self {
                let s: StrBytes = $unwrap;
                s.as_str().to_owned()
            }
        }
    )*};
}

string_mirror! {
    StrBytes => |s| s, |k| k;
    m::TopicName => |s| m::TopicName(s), |k| k.0;
    m::GroupId => |s| m::GroupId(s), |k| k.0;
    m::TransactionalId => |s| m::TransactionalId(s), |k| k.0;
}

impl Sample for String {
    fn sample() -> Self {
        "weir".to_owned()
    }
}

impl ErrorCodes for String {}

impl Mirror<m::BrokerId> for i32 {
    fn to_kp(&self) -> m::BrokerId {
        m::BrokerId(*self)
    }
    fn from_kp(k: m::BrokerId) -> Self {
        k.0
    }
}

impl Mirror<m::ProducerId> for i64 {
    fn to_kp(&self) -> m::ProducerId {
        m::ProducerId(*self)
    }
    fn from_kp(k: m::ProducerId) -> Self {
        k.0
    }
}

impl Mirror<uuid::Uuid> for [u8; 16] {
    fn to_kp(&self) -> uuid::Uuid {
        uuid::Uuid::from_bytes(*self)
    }
    fn from_kp(k: uuid::Uuid) -> Self {
        *k.as_bytes()
    }
}

impl Sample for [u8; 16] {
    fn sample() -> Self {
        [1; 16]
    }
}

impl ErrorCodes for [u8; 16] {}

impl Mirror<i16> for ErrorCode {
    fn to_kp(&self) -> i16 {
        self.0
    }
    fn from_kp(k: i16) -> Self {
        ErrorCode(k)
    }
}

impl Sample for ErrorCode {
    fn sample() -> Self {
        ErrorCode::UNKNOWN_SERVER_ERROR
    }
}

impl ErrorCodes for ErrorCode {
    fn error_codes(&self, out: &mut Vec<ErrorCode>) {
        if !self.is_none() {
            out.push(*self);
        }
    }
}

impl<W: Mirror<K>, K> Mirror<Vec<K>> for Vec<W> {
    fn to_kp(&self) -> Vec<K> {
        self.iter().map(Mirror::to_kp).collect()
    }
    fn from_kp(k: Vec<K>) -> Self {
        k.into_iter().map(Mirror::from_kp).collect()
    }
}

impl<T: Sample> Sample for Vec<T> {
    fn sample() -> Self {
        vec![T::sample(), T::sample()]
    }
}

impl<T: ErrorCodes> ErrorCodes for Vec<T> {
    fn error_codes(&self, out: &mut Vec<ErrorCode>) {
        self.iter().for_each(|e| e.error_codes(out));
    }
}

impl<W: Mirror<K>, K> Mirror<Option<K>> for Option<W> {
    fn to_kp(&self) -> Option<K> {
        self.as_ref().map(Mirror::to_kp)
    }
    fn from_kp(k: Option<K>) -> Self {
        k.map(Mirror::from_kp)
    }
}

impl<T: Sample> Sample for Option<T> {
    fn sample() -> Self {
        Some(T::sample())
    }
}

impl<T: ErrorCodes> ErrorCodes for Option<T> {
    fn error_codes(&self, out: &mut Vec<ErrorCode>) {
        if let Some(e) = self {
            e.error_codes(out);
        }
    }
}

/// Weir's own bytes in a tagged field of an inter-broker message, under tag [`WEIR_TAG`]: only
/// Weir's brokers write and read them (Kafka's skip tags they do not know). Mirrored against a
/// kafka-protocol struct's `unknown_tagged_fields`; other unknown tags are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WeirTag(pub Option<Bytes>);

/// The tag of [`WeirTag`]: far above the tags Kafka numbers from 0 in each struct.
pub const WEIR_TAG: i32 = 10_000;

impl Mirror<std::collections::BTreeMap<i32, Bytes>> for WeirTag {
    fn to_kp(&self) -> std::collections::BTreeMap<i32, Bytes> {
        self.0.iter().map(|b| (WEIR_TAG, b.clone())).collect()
    }
    fn from_kp(mut k: std::collections::BTreeMap<i32, Bytes>) -> Self {
        WeirTag(k.remove(&WEIR_TAG))
    }
}

impl Sample for WeirTag {
    fn sample() -> Self {
        WeirTag(Some(Bytes::from_static(b"weir")))
    }
}

impl ErrorCodes for WeirTag {}

/// Declares a Weir struct mirroring one or more kafka-protocol structs:
///
/// ```text
/// mirror! {
///     /// Heartbeat request (v0-4).
///     #[derive(Debug, Clone, PartialEq, Eq, Default)]
///     pub struct HeartbeatRequest => m::HeartbeatRequest {
///         /// Group id.
///         pub group_id: String,
///         /// Named differently in kafka-protocol.
///         pub groups: Vec<String> as groups_names,
///     }
/// }
/// ```
///
/// Every field's type must be `Mirror` of the kafka-protocol field's type (write a `Mirror` impl
/// by hand for a one-field wrapper, e.g. a partition index against a partition struct).
macro_rules! mirror {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident => $($kp:path),+ {
            $(
                $(#[$fmeta:meta])*
                $fvis:vis $field:ident : $fty:ty $(as $kpfield:ident)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$fmeta])* $fvis $field: $fty,)*
        }
        $crate::mirror::mirror!(@impls $name [$($kp),+] [$($field $($kpfield)?;)*]);
        impl $crate::mirror::Sample for $name {
            fn sample() -> Self {
                $name {
                    $($field: $crate::mirror::Sample::sample(),)*
                }
            }
        }
        impl $crate::mirror::ErrorCodes for $name {
            #[allow(unused_variables)] // a struct without fields
            fn error_codes(&self, out: &mut Vec<$crate::ErrorCode>) {
                $($crate::mirror::ErrorCodes::error_codes(&self.$field, out);)*
            }
        }
    };
    (@impls $name:ident [$($kp:path),+] $fields:tt) => {
        $($crate::mirror::mirror!(@impl $name $kp $fields);)+
    };
    (@impl $name:ident $kp:path [$($field:ident $($kpfield:ident)?;)*]) => {
        impl $crate::mirror::Mirror<$kp> for $name {
            #[allow(unused_mut)] // a struct without fields
            fn to_kp(&self) -> $kp {
                let mut k = <$kp>::default();
                $(
                    $crate::mirror::mirror!(@field k $field $($kpfield)?) =
                        $crate::mirror::Mirror::to_kp(&self.$field);
                )*
                k
            }
            #[allow(unused_variables)] // a struct without fields
            fn from_kp(k: $kp) -> Self {
                $name {
                    $($field: $crate::mirror::Mirror::from_kp(
                        $crate::mirror::mirror!(@field k $field $($kpfield)?)
                    ),)*
                }
            }
        }
    };
    (@field $k:ident $field:ident) => {
        $k.$field
    };
    (@field $k:ident $field:ident $kpfield:ident) => {
        $k.$kpfield
    };
}

pub(crate) use mirror;

/// Implements `Default` for a mirrored Weir type as kafka-protocol's default converted, i.e.
/// the schema's defaults (`rebalance_timeout_ms: -1`, `authorized_operations: i32::MIN`, ...).
macro_rules! kp_default {
    ($name:ident => $kp:path) => {
        impl Default for $name {
            fn default() -> Self {
                $crate::mirror::Mirror::from_kp(<$kp>::default())
            }
        }
    };
}

pub(crate) use kp_default;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn weir_tag_carries_only_its_own_tag() {
        let none = WeirTag::default();
        assert!(Mirror::<BTreeMap<i32, Bytes>>::to_kp(&none).is_empty());
        let tag = WeirTag(Some(Bytes::from_static(b"intent")));
        let kp: BTreeMap<i32, Bytes> = tag.to_kp();
        assert_eq!(kp.keys().copied().collect::<Vec<_>>(), vec![WEIR_TAG]);
        assert_eq!(WeirTag::from_kp(kp), tag);
        // A tag Kafka (or a later Weir) adds is not taken for Weir's.
        let other = BTreeMap::from([(3, Bytes::from_static(b"x"))]);
        assert_eq!(WeirTag::from_kp(other), WeirTag(None));
        // An empty value is a value (the broker reads it as "cleared").
        let empty = WeirTag(Some(Bytes::new()));
        assert_eq!(WeirTag::from_kp(empty.to_kp()), empty);
    }
}
