//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): SCRAM credentials in
//! the credential store. Clients send salted passwords, never passwords; the store keeps only
//! the derived keys. Results are per user: one bad change fails all of that user's changes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use weir_protocol::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    AlterUserScramCredentialsResult, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse, DescribeUserScramCredentialsResult, ErrorCode,
    ScramCredentialInfo,
};

use crate::broker::Broker;
use crate::security::credentials::{CredentialChange, MAX_USER_NAME_BYTES};
use crate::security::scram::{ScramMechanism, MAX_ITERATIONS, MAX_SALT_BYTES, MIN_ITERATIONS};

pub fn describe(
    broker: &Arc<Broker>,
    r: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let all = broker.security.credentials.list();
    let info = |creds: &[(ScramMechanism, u32)]| -> Vec<ScramCredentialInfo> {
        creds
            .iter()
            .map(|(m, i)| ScramCredentialInfo {
                mechanism: m.wire_type(),
                iterations: i32::try_from(*i).unwrap_or(i32::MAX),
            })
            .collect()
    };
    let results = match r.users.filter(|u| !u.is_empty()) {
        None => all
            .iter()
            .map(|(user, creds)| DescribeUserScramCredentialsResult {
                user: user.clone(),
                error_code: ErrorCode::NONE,
                error_message: None,
                credential_infos: info(creds),
            })
            .collect(),
        Some(users) => {
            let by_name: BTreeMap<&str, &Vec<(ScramMechanism, u32)>> =
                all.iter().map(|(u, c)| (u.as_str(), c)).collect();
            let mut seen = HashSet::new();
            let duplicated: HashSet<&String> = users.iter().filter(|u| !seen.insert(*u)).collect();
            let mut reported = HashSet::new();
            users
                .iter()
                .filter(|u| reported.insert(*u))
                .map(|user| {
                    let (error_code, error_message, credential_infos) = if duplicated.contains(user) {
                        (
                            ErrorCode::DUPLICATE_RESOURCE,
                            Some("Cannot describe SCRAM credentials for the same user twice in a single request".to_string()),
                            Vec::new(),
                        )
                    } else {
                        match by_name.get(user.as_str()) {
                            Some(creds) => (ErrorCode::NONE, None, info(creds)),
                            None => (
                                ErrorCode::RESOURCE_NOT_FOUND,
                                Some("Attempt to describe a user credential that does not exist".to_string()),
                                Vec::new(),
                            ),
                        }
                    };
                    DescribeUserScramCredentialsResult {
                        user: user.clone(),
                        error_code,
                        error_message,
                        credential_infos,
                    }
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse {
        results,
        ..Default::default()
    }
}

type Failure = (ErrorCode, String);

fn unacceptable(message: &str) -> Failure {
    (ErrorCode::UNACCEPTABLE_CREDENTIAL, message.to_string())
}

fn check_user(name: &str) -> Result<(), Failure> {
    if name.is_empty() {
        return Err(unacceptable("Username must not be empty"));
    }
    if name.len() > MAX_USER_NAME_BYTES {
        return Err(unacceptable("Username too long"));
    }
    Ok(())
}

fn mechanism(t: i8) -> Result<ScramMechanism, Failure> {
    ScramMechanism::from_wire(t).ok_or((
        ErrorCode::UNSUPPORTED_SASL_MECHANISM,
        "Unknown SCRAM mechanism".to_string(),
    ))
}

pub async fn alter(
    broker: &Arc<Broker>,
    r: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Per user, in the order users first appear: their changes, or why they all fail.
    let mut order: Vec<String> = Vec::new();
    let mut per_user: BTreeMap<String, Result<Vec<CredentialChange>, Failure>> = BTreeMap::new();
    let mut touched: HashSet<(String, i8)> = HashSet::new();
    let mut add = |user: &str, mech_type: i8, change: Result<CredentialChange, Failure>| {
        if !per_user.contains_key(user) {
            order.push(user.to_string());
            per_user.insert(user.to_string(), Ok(Vec::new()));
        }
        let duplicate = !touched.insert((user.to_string(), mech_type));
        let entry = per_user.get_mut(user).expect("inserted above");
        if let Ok(changes) = entry {
            match change {
                _ if duplicate => {
                    *entry = Err((
                        ErrorCode::DUPLICATE_RESOURCE,
                        "A user credential cannot be altered twice in the same request".to_string(),
                    ))
                }
                Ok(c) => changes.push(c),
                Err(f) => *entry = Err(f),
            }
        }
    };
    let store = broker.security.credentials.clone();
    for d in &r.deletions {
        let change = check_user(&d.name).and_then(|()| {
            let m = mechanism(d.mechanism)?;
            if store.get(&d.name, m).is_none() {
                return Err((
                    ErrorCode::RESOURCE_NOT_FOUND,
                    "Attempt to delete a user credential that does not exist".to_string(),
                ));
            }
            Ok(CredentialChange::Delete {
                user: d.name.clone(),
                mechanism: m,
            })
        });
        add(&d.name, d.mechanism, change);
    }
    for u in &r.upsertions {
        let change = check_user(&u.name).and_then(|()| {
            let m = mechanism(u.mechanism)?;
            let iterations = u32::try_from(u.iterations).unwrap_or(0);
            if iterations < MIN_ITERATIONS {
                return Err(unacceptable(&format!(
                    "Too few iterations (minimum {MIN_ITERATIONS})"
                )));
            }
            if iterations > MAX_ITERATIONS {
                return Err(unacceptable(&format!(
                    "Too many iterations (maximum {MAX_ITERATIONS})"
                )));
            }
            if u.salt.is_empty() || u.salt.len() > MAX_SALT_BYTES {
                return Err(unacceptable("Salt must be 1 to 1024 bytes"));
            }
            if u.salted_password.len() != m.digest_len() {
                return Err(unacceptable(
                    "Salted password has the wrong length for the mechanism",
                ));
            }
            Ok(CredentialChange::Upsert {
                user: u.name.clone(),
                mechanism: m,
                credential: m.credential_from_salted(&u.salt, &u.salted_password, iterations),
            })
        });
        add(&u.name, u.mechanism, change);
    }
    let changes: Vec<CredentialChange> = per_user
        .values()
        .filter_map(|r| r.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    let stored = if changes.is_empty() {
        Ok(())
    } else {
        store.clone().apply(changes).await
    };
    let results = order
        .into_iter()
        .map(|user| {
            let (error_code, error_message) = match per_user.get(&user) {
                Some(Err((code, message))) => (*code, Some(message.clone())),
                _ => match &stored {
                    Ok(()) => (ErrorCode::NONE, None),
                    Err(e) => (ErrorCode::UNKNOWN_SERVER_ERROR, Some(e.to_string())),
                },
            };
            AlterUserScramCredentialsResult {
                user,
                error_code,
                error_message,
            }
        })
        .collect();
    AlterUserScramCredentialsResponse {
        results,
        ..Default::default()
    }
}
