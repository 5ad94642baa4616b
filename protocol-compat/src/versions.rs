//! The version ranges Weir serves, as declared in the table in [`crate::apis`].

use crate::responses::ApiVersionRange;

use crate::apis::SUPPORTED;

/// `(api_key, min_version, max_version)` of everything Weir serves, sorted by api key.
/// This is exactly what ApiVersions advertises.
pub fn supported_apis() -> &'static [(i16, i16, i16)] {
    SUPPORTED
}

/// The supported version range of `api_key`, or `None` if Weir does not serve it.
pub fn supported_range(api_key: i16) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|&(_, min, max)| (min, max))
}

/// [`supported_apis`] as ApiVersions entries.
pub(crate) fn supported_api_ranges() -> Vec<ApiVersionRange> {
    SUPPORTED
        .iter()
        .map(|&(api_key, min_version, max_version)| ApiVersionRange {
            api_key,
            min_version,
            max_version,
        })
        .collect()
}
