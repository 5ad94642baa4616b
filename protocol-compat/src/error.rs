//! Error types: Kafka error codes ([`ErrorCode`]) and this crate's decode/encode errors.

use crate::requests::RequestHeader;

macro_rules! error_codes {
    ($($name:ident = $code:literal,)*) => {
        impl ErrorCode {
            $(
                #[doc = concat!("Kafka `", stringify!($name), "` (", stringify!($code), ").")]
                pub const $name: ErrorCode = ErrorCode($code);
            )*

            /// Kafka's name for this code (as in `Errors.java`), or `None` if unknown.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($code => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }

        #[cfg(test)]
        pub(crate) const ALL_ERROR_CODES: &[(&str, i16)] = &[$((stringify!($name), $code),)*];
    };
}

/// A Kafka protocol error code, as written in responses.
///
/// The associated constants are named exactly like Kafka's `Errors` enum, and the values
/// were checked against Kafka's `Errors.java` (a unit test also cross-checks them with
/// the kafka-protocol crate's table). `Default` is [`ErrorCode::NONE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ErrorCode(pub i16);

impl ErrorCode {
    /// `true` for [`ErrorCode::NONE`].
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> Self {
        ErrorCode(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> Self {
        code.0
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "error code {}", self.0),
        }
    }
}

error_codes! {
    UNKNOWN_SERVER_ERROR = -1,
    NONE = 0,
    OFFSET_OUT_OF_RANGE = 1,
    CORRUPT_MESSAGE = 2,
    UNKNOWN_TOPIC_OR_PARTITION = 3,
    INVALID_FETCH_SIZE = 4,
    LEADER_NOT_AVAILABLE = 5,
    NOT_LEADER_OR_FOLLOWER = 6,
    REQUEST_TIMED_OUT = 7,
    BROKER_NOT_AVAILABLE = 8,
    REPLICA_NOT_AVAILABLE = 9,
    MESSAGE_TOO_LARGE = 10,
    STALE_CONTROLLER_EPOCH = 11,
    OFFSET_METADATA_TOO_LARGE = 12,
    NETWORK_EXCEPTION = 13,
    COORDINATOR_LOAD_IN_PROGRESS = 14,
    COORDINATOR_NOT_AVAILABLE = 15,
    NOT_COORDINATOR = 16,
    INVALID_TOPIC_EXCEPTION = 17,
    RECORD_LIST_TOO_LARGE = 18,
    NOT_ENOUGH_REPLICAS = 19,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
    INVALID_REQUIRED_ACKS = 21,
    ILLEGAL_GENERATION = 22,
    INCONSISTENT_GROUP_PROTOCOL = 23,
    INVALID_GROUP_ID = 24,
    UNKNOWN_MEMBER_ID = 25,
    INVALID_SESSION_TIMEOUT = 26,
    REBALANCE_IN_PROGRESS = 27,
    INVALID_COMMIT_OFFSET_SIZE = 28,
    TOPIC_AUTHORIZATION_FAILED = 29,
    GROUP_AUTHORIZATION_FAILED = 30,
    CLUSTER_AUTHORIZATION_FAILED = 31,
    INVALID_TIMESTAMP = 32,
    UNSUPPORTED_SASL_MECHANISM = 33,
    ILLEGAL_SASL_STATE = 34,
    UNSUPPORTED_VERSION = 35,
    TOPIC_ALREADY_EXISTS = 36,
    INVALID_PARTITIONS = 37,
    INVALID_REPLICATION_FACTOR = 38,
    INVALID_REPLICA_ASSIGNMENT = 39,
    INVALID_CONFIG = 40,
    NOT_CONTROLLER = 41,
    INVALID_REQUEST = 42,
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
    POLICY_VIOLATION = 44,
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    DUPLICATE_SEQUENCE_NUMBER = 46,
    INVALID_PRODUCER_EPOCH = 47,
    INVALID_TXN_STATE = 48,
    INVALID_PRODUCER_ID_MAPPING = 49,
    INVALID_TRANSACTION_TIMEOUT = 50,
    CONCURRENT_TRANSACTIONS = 51,
    TRANSACTION_COORDINATOR_FENCED = 52,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    SECURITY_DISABLED = 54,
    OPERATION_NOT_ATTEMPTED = 55,
    KAFKA_STORAGE_ERROR = 56,
    LOG_DIR_NOT_FOUND = 57,
    SASL_AUTHENTICATION_FAILED = 58,
    UNKNOWN_PRODUCER_ID = 59,
    REASSIGNMENT_IN_PROGRESS = 60,
    DELEGATION_TOKEN_AUTH_DISABLED = 61,
    DELEGATION_TOKEN_NOT_FOUND = 62,
    DELEGATION_TOKEN_OWNER_MISMATCH = 63,
    DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64,
    DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65,
    DELEGATION_TOKEN_EXPIRED = 66,
    INVALID_PRINCIPAL_TYPE = 67,
    NON_EMPTY_GROUP = 68,
    GROUP_ID_NOT_FOUND = 69,
    FETCH_SESSION_ID_NOT_FOUND = 70,
    INVALID_FETCH_SESSION_EPOCH = 71,
    LISTENER_NOT_FOUND = 72,
    TOPIC_DELETION_DISABLED = 73,
    FENCED_LEADER_EPOCH = 74,
    UNKNOWN_LEADER_EPOCH = 75,
    UNSUPPORTED_COMPRESSION_TYPE = 76,
    STALE_BROKER_EPOCH = 77,
    OFFSET_NOT_AVAILABLE = 78,
    MEMBER_ID_REQUIRED = 79,
    PREFERRED_LEADER_NOT_AVAILABLE = 80,
    GROUP_MAX_SIZE_REACHED = 81,
    FENCED_INSTANCE_ID = 82,
    ELIGIBLE_LEADERS_NOT_AVAILABLE = 83,
    ELECTION_NOT_NEEDED = 84,
    NO_REASSIGNMENT_IN_PROGRESS = 85,
    GROUP_SUBSCRIBED_TO_TOPIC = 86,
    INVALID_RECORD = 87,
    UNSTABLE_OFFSET_COMMIT = 88,
    THROTTLING_QUOTA_EXCEEDED = 89,
    PRODUCER_FENCED = 90,
    RESOURCE_NOT_FOUND = 91,
    DUPLICATE_RESOURCE = 92,
    UNACCEPTABLE_CREDENTIAL = 93,
    INCONSISTENT_VOTER_SET = 94,
    INVALID_UPDATE_VERSION = 95,
    FEATURE_UPDATE_FAILED = 96,
    PRINCIPAL_DESERIALIZATION_FAILURE = 97,
    SNAPSHOT_NOT_FOUND = 98,
    POSITION_OUT_OF_RANGE = 99,
    UNKNOWN_TOPIC_ID = 100,
    DUPLICATE_BROKER_REGISTRATION = 101,
    BROKER_ID_NOT_REGISTERED = 102,
    INCONSISTENT_TOPIC_ID = 103,
    INCONSISTENT_CLUSTER_ID = 104,
    TRANSACTIONAL_ID_NOT_FOUND = 105,
    FETCH_SESSION_TOPIC_ID_ERROR = 106,
    INELIGIBLE_REPLICA = 107,
    NEW_LEADER_ELECTED = 108,
    OFFSET_MOVED_TO_TIERED_STORAGE = 109,
    FENCED_MEMBER_EPOCH = 110,
    UNRELEASED_INSTANCE_ID = 111,
    UNSUPPORTED_ASSIGNOR = 112,
    STALE_MEMBER_EPOCH = 113,
    MISMATCHED_ENDPOINT_TYPE = 114,
    UNSUPPORTED_ENDPOINT_TYPE = 115,
    UNKNOWN_CONTROLLER_ID = 116,
    UNKNOWN_SUBSCRIPTION_ID = 117,
    TELEMETRY_TOO_LARGE = 118,
    INVALID_REGISTRATION = 119,
    TRANSACTION_ABORTABLE = 120,
    INVALID_RECORD_STATE = 121,
    SHARE_SESSION_NOT_FOUND = 122,
    INVALID_SHARE_SESSION_EPOCH = 123,
    FENCED_STATE_EPOCH = 124,
    INVALID_VOTER_KEY = 125,
    DUPLICATE_VOTER = 126,
    VOTER_NOT_FOUND = 127,
    INVALID_REGULAR_EXPRESSION = 128,
    REBOOTSTRAP_REQUIRED = 129,
    STREAMS_INVALID_TOPOLOGY = 130,
    STREAMS_INVALID_TOPOLOGY_EPOCH = 131,
    STREAMS_TOPOLOGY_FENCED = 132,
    SHARE_SESSION_LIMIT_REACHED = 133,
}

/// Why a request frame could not be turned into a [`crate::Request`].
///
/// Every variant except [`DecodeError::Header`] carries the header, so the caller can
/// log it and (for ApiVersions) answer with the right correlation id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The header itself is unreadable (too short, bad client id). The caller closes the
    /// connection: there is no correlation id to answer with.
    #[error("unreadable request header: {0}")]
    Header(String),
    /// A known API key at a version outside the range we serve. For ApiVersions the
    /// caller must answer with [`crate::encode_api_versions_unsupported`] (KIP-511); for
    /// every other API Kafka closes the connection, and so should the caller.
    #[error("unsupported version {} of api key {}", .header.api_version, .header.api_key)]
    UnsupportedVersion {
        /// The request header.
        header: RequestHeader,
    },
    /// An API key we do not serve. The caller closes the connection (as Kafka does).
    #[error("unknown or unserved api key {}", .header.api_key)]
    UnknownApiKey {
        /// The request header.
        header: RequestHeader,
    },
    /// The body is malformed. The caller closes the connection.
    #[error("malformed body for api key {} v{}: {reason}", .header.api_key, .header.api_version)]
    Body {
        /// The request header.
        header: RequestHeader,
        /// What was wrong.
        reason: String,
    },
}

impl DecodeError {
    /// The request header, when it could be read.
    pub fn header(&self) -> Option<&RequestHeader> {
        match self {
            DecodeError::Header(_) => None,
            DecodeError::UnsupportedVersion { header }
            | DecodeError::UnknownApiKey { header }
            | DecodeError::Body { header, .. } => Some(header),
        }
    }
}

/// Why a response could not be encoded. These are broker bugs, not client errors: the
/// caller should log and close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The response variant does not match the request's API key.
    #[error("response for api key {response_api_key} given for a request with api key {request_api_key}")]
    ApiKeyMismatch {
        /// API key of the request header.
        request_api_key: i16,
        /// API key of the response value.
        response_api_key: i16,
    },
    /// The header's version is outside the range we serve for its API.
    #[error("cannot encode api key {api_key} at unsupported version {api_version}")]
    UnsupportedVersion {
        /// API key.
        api_key: i16,
        /// Requested version.
        api_version: i16,
    },
    /// The response cannot be represented at this version (e.g. two groups in an
    /// OffsetFetch v7 response, or a string longer than the wire format allows).
    #[error("response not representable at api key {api_key} v{api_version}: {reason}")]
    Invalid {
        /// API key.
        api_key: i16,
        /// Version.
        api_version: i16,
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ParseResponseErrorCode;

    fn screaming(camel: &str) -> String {
        let mut out = String::new();
        for (i, c) in camel.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }

    /// Cross-checks every constant with the kafka-protocol crate's own table (generated
    /// from Kafka's `Errors.java`), by value and by name.
    #[test]
    fn codes_match_kafka_protocol_table() {
        assert!(ALL_ERROR_CODES.len() > 100);
        for &(name, code) in ALL_ERROR_CODES {
            if code == 0 {
                assert_eq!(name, "NONE");
                continue;
            }
            let Some(kp) = code.err() else {
                panic!("{name} ({code}) unknown to kafka-protocol");
            };
            assert_eq!(kp.code(), code);
            assert_eq!(screaming(&format!("{kp:?}")), name, "code {code}");
            assert_eq!(ErrorCode(code).name(), Some(name));
        }
    }

    /// The values the broker relies on, spelled out (checked against Errors.java).
    #[test]
    fn well_known_values() {
        let expected: &[(ErrorCode, i16)] = &[
            (ErrorCode::UNKNOWN_SERVER_ERROR, -1),
            (ErrorCode::NONE, 0),
            (ErrorCode::OFFSET_OUT_OF_RANGE, 1),
            (ErrorCode::CORRUPT_MESSAGE, 2),
            (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, 3),
            (ErrorCode::INVALID_FETCH_SIZE, 4),
            (ErrorCode::LEADER_NOT_AVAILABLE, 5),
            (ErrorCode::NOT_LEADER_OR_FOLLOWER, 6),
            (ErrorCode::REQUEST_TIMED_OUT, 7),
            (ErrorCode::MESSAGE_TOO_LARGE, 10),
            (ErrorCode::COORDINATOR_LOAD_IN_PROGRESS, 14),
            (ErrorCode::COORDINATOR_NOT_AVAILABLE, 15),
            (ErrorCode::NOT_COORDINATOR, 16),
            (ErrorCode::INVALID_TOPIC_EXCEPTION, 17),
            (ErrorCode::RECORD_LIST_TOO_LARGE, 18),
            (ErrorCode::NOT_ENOUGH_REPLICAS, 19),
            (ErrorCode::INVALID_REQUIRED_ACKS, 21),
            (ErrorCode::ILLEGAL_GENERATION, 22),
            (ErrorCode::INCONSISTENT_GROUP_PROTOCOL, 23),
            (ErrorCode::INVALID_GROUP_ID, 24),
            (ErrorCode::UNKNOWN_MEMBER_ID, 25),
            (ErrorCode::INVALID_SESSION_TIMEOUT, 26),
            (ErrorCode::REBALANCE_IN_PROGRESS, 27),
            (ErrorCode::INVALID_COMMIT_OFFSET_SIZE, 28),
            (ErrorCode::TOPIC_AUTHORIZATION_FAILED, 29),
            (ErrorCode::GROUP_AUTHORIZATION_FAILED, 30),
            (ErrorCode::INVALID_TIMESTAMP, 32),
            (ErrorCode::UNSUPPORTED_VERSION, 35),
            (ErrorCode::TOPIC_ALREADY_EXISTS, 36),
            (ErrorCode::INVALID_PARTITIONS, 37),
            (ErrorCode::INVALID_REPLICATION_FACTOR, 38),
            (ErrorCode::INVALID_CONFIG, 40),
            (ErrorCode::NOT_CONTROLLER, 41),
            (ErrorCode::INVALID_REQUEST, 42),
            (ErrorCode::UNSUPPORTED_FOR_MESSAGE_FORMAT, 43),
            (ErrorCode::POLICY_VIOLATION, 44),
            (ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, 45),
            (ErrorCode::DUPLICATE_SEQUENCE_NUMBER, 46),
            (ErrorCode::INVALID_PRODUCER_EPOCH, 47),
            (ErrorCode::UNKNOWN_PRODUCER_ID, 59),
            (ErrorCode::NON_EMPTY_GROUP, 68),
            (ErrorCode::GROUP_ID_NOT_FOUND, 69),
            (ErrorCode::FETCH_SESSION_ID_NOT_FOUND, 70),
            (ErrorCode::INVALID_FETCH_SESSION_EPOCH, 71),
            (ErrorCode::UNSUPPORTED_COMPRESSION_TYPE, 76),
            (ErrorCode::MEMBER_ID_REQUIRED, 79),
            (ErrorCode::FENCED_INSTANCE_ID, 82),
            (ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC, 86),
            (ErrorCode::INVALID_RECORD, 87),
            (ErrorCode::UNKNOWN_TOPIC_ID, 100),
        ];
        for &(code, value) in expected {
            assert_eq!(code.0, value, "{code}");
        }
        assert_eq!(ErrorCode::default(), ErrorCode::NONE);
        assert_eq!(ErrorCode(9999).name(), None);
        assert_eq!(
            ErrorCode::UNSUPPORTED_VERSION.to_string(),
            "UNSUPPORTED_VERSION (35)"
        );
    }
}
