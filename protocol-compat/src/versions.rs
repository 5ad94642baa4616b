//! The version ranges Weir serves, as declared in the table in [`crate::apis`], and the part of
//! them ApiVersions advertises.

use crate::responses::ApiVersionRange;

use crate::apis::{advertised, SUPPORTED};

/// `(api_key, min_version, max_version)` of everything Weir decodes and encodes, sorted by api
/// key: the APIs ApiVersions advertises ([`advertised_apis`]) and the ones it does not list
/// (the inter-broker Raft APIs, and admin APIs whose broker side is not written yet).
pub fn supported_apis() -> &'static [(i16, i16, i16)] {
    SUPPORTED
}

/// The supported version range of `api_key`, or `None` if Weir does not serve it. Requests of
/// an API outside this table are [`crate::DecodeError::UnknownApiKey`]; advertised or not makes
/// no difference here.
pub fn supported_range(api_key: i16) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|&(_, min, max)| (min, max))
}

/// The entries of [`supported_apis`] that ApiVersions lists, in the same order.
pub fn advertised_apis() -> Vec<(i16, i16, i16)> {
    SUPPORTED
        .iter()
        .copied()
        .filter(|&(key, _, _)| advertised(key))
        .collect()
}

/// [`advertised_apis`] as ApiVersions entries.
pub(crate) fn supported_api_ranges() -> Vec<ApiVersionRange> {
    advertised_apis()
        .into_iter()
        .map(|(api_key, min_version, max_version)| ApiVersionRange {
            api_key,
            min_version,
            max_version,
        })
        .collect()
}
