//! `weir user create|list|delete`: SCRAM credentials (SCRAM-SHA-256 and SCRAM-SHA-512, also
//! used to check SASL/PLAIN passwords). Through a running broker (AlterUserScramCredentials /
//! DescribeUserScramCredentials: the password is salted and hashed here, the broker never sees
//! it), or with `--data-dir` straight into a stopped broker's credential store, to create the
//! first user of a broker whose listeners all require authentication.

use std::io::BufRead;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;
use weir_broker::security::credentials::{CredentialChange, CredentialStore, LocalCredentialStore};
use weir_broker::security::scram::{
    random_bytes, ScramMechanism, DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS,
};
use weir_protocol::*;

use super::client::{expect_response, Client};
use super::{check, Output};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user or change its password (SCRAM credentials).
    Create {
        name: String,
        /// The password (default: read one line from stdin).
        #[arg(long, env = "WEIR_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// SCRAM-SHA-256, SCRAM-SHA-512 or all.
        #[arg(long, default_value = "all")]
        mechanism: String,
        /// PBKDF2 iterations (4096 to 16384).
        #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
        iterations: u32,
        #[command(flatten)]
        offline: Offline,
    },
    /// List users and their SCRAM mechanisms.
    List {
        #[command(flatten)]
        offline: Offline,
    },
    /// Delete a user's credentials.
    Delete {
        name: String,
        /// SCRAM-SHA-256, SCRAM-SHA-512 or all.
        #[arg(long, default_value = "all")]
        mechanism: String,
        #[command(flatten)]
        offline: Offline,
    },
}

#[derive(Args, Debug, Clone)]
pub struct Offline {
    /// Edit the credential store of this data directory directly instead of going through a
    /// broker (only while the broker is stopped: a running broker does not see the change).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl UserCommand {
    /// The data directory of an offline command.
    pub fn data_dir(&self) -> Option<&PathBuf> {
        match self {
            UserCommand::Create { offline, .. }
            | UserCommand::List { offline }
            | UserCommand::Delete { offline, .. } => offline.data_dir.as_ref(),
        }
    }
}

fn mechanisms(s: &str) -> anyhow::Result<Vec<ScramMechanism>> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(ScramMechanism::ALL.to_vec());
    }
    s.split(',')
        .map(|m| {
            ScramMechanism::from_name(m.trim()).ok_or_else(|| {
                anyhow::anyhow!(
                    "'{m}' is not a SCRAM mechanism (SCRAM-SHA-256, SCRAM-SHA-512, all)"
                )
            })
        })
        .collect()
}

fn password(given: Option<String>) -> anyhow::Result<String> {
    let p = match given {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    anyhow::ensure!(
        !p.is_empty(),
        "the password must not be empty (use --password or stdin)"
    );
    Ok(p)
}

fn print_list(out: &Output, users: &[(String, Vec<(ScramMechanism, i32)>)]) {
    let json = json!(users
        .iter()
        .map(|(u, creds)| json!({
            "user": u,
            "credentials": creds.iter().map(|(m, i)| json!({"mechanism": m.name(), "iterations": i})).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>());
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|(u, creds)| {
            vec![
                u.clone(),
                creds
                    .iter()
                    .map(|(m, i)| format!("{}({i})", m.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    out.table(&json, &["USER", "MECHANISMS(ITERATIONS)"], &rows);
}

/// Runs a command against the credential store of a stopped broker's data directory.
pub fn run_offline(
    out: &Output,
    data_dir: &std::path::Path,
    cmd: UserCommand,
) -> anyhow::Result<()> {
    let meta = data_dir.join("__weir_meta");
    std::fs::create_dir_all(&meta)?;
    let store = LocalCredentialStore::open(&meta)?;
    match cmd {
        UserCommand::Create {
            name,
            password: given,
            mechanism,
            iterations,
            ..
        } => {
            anyhow::ensure!(
                (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations),
                "--iterations must be {MIN_ITERATIONS} to {MAX_ITERATIONS}"
            );
            anyhow::ensure!(!name.is_empty(), "the user name must not be empty");
            let pw = password(given)?;
            let changes: Vec<CredentialChange> = mechanisms(&mechanism)?
                .into_iter()
                .map(|m| CredentialChange::Upsert {
                    user: name.clone(),
                    mechanism: m,
                    credential: m.credential(&pw, iterations),
                })
                .collect();
            store.apply_now(&changes)?;
            out.message(
                &json!({"user": name, "created": true}),
                &format!("user {name} created"),
            );
        }
        UserCommand::List { .. } => {
            let users: Vec<_> = store
                .list()
                .into_iter()
                .map(|(u, c)| {
                    (
                        u,
                        c.into_iter()
                            .map(|(m, i)| (m, i32::try_from(i).unwrap_or(i32::MAX)))
                            .collect(),
                    )
                })
                .collect();
            print_list(out, &users);
        }
        UserCommand::Delete {
            name, mechanism, ..
        } => {
            let wanted = mechanisms(&mechanism)?;
            let changes: Vec<CredentialChange> = wanted
                .into_iter()
                .filter(|m| store.get(&name, *m).is_some())
                .map(|m| CredentialChange::Delete {
                    user: name.clone(),
                    mechanism: m,
                })
                .collect();
            anyhow::ensure!(
                !changes.is_empty(),
                "user {name} has no such credentials (see `weir user list`)"
            );
            store.apply_now(&changes)?;
            out.message(
                &json!({"user": name, "deleted": true}),
                &format!("user {name} deleted"),
            );
        }
    }
    Ok(())
}

pub async fn run(client: &mut Client, out: &Output, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            name,
            password: given,
            mechanism,
            iterations,
            ..
        } => {
            let pw = password(given)?;
            let upsertions = mechanisms(&mechanism)?
                .into_iter()
                .map(|m| {
                    let salt = random_bytes(32);
                    ScramCredentialUpsertion {
                        name: name.clone(),
                        mechanism: m.wire_type(),
                        iterations: i32::try_from(iterations).unwrap_or(i32::MAX),
                        salted_password: m.salted_password(pw.as_bytes(), &salt, iterations).into(),
                        salt: salt.into(),
                    }
                })
                .collect();
            let r = client
                .call(Request::AlterUserScramCredentials(
                    AlterUserScramCredentialsRequest {
                        deletions: Vec::new(),
                        upsertions,
                    },
                ))
                .await?;
            let r = expect_response!(r, AlterUserScramCredentials);
            for res in &r.results {
                check(
                    res.error_code,
                    &format!("cannot create user {}", res.user),
                    res.error_message.as_deref(),
                )?;
            }
            out.message(
                &json!({"user": name, "created": true}),
                &format!("user {name} created"),
            );
        }
        UserCommand::List { .. } => {
            let r = client
                .call(Request::DescribeUserScramCredentials(
                    DescribeUserScramCredentialsRequest { users: None },
                ))
                .await?;
            let r = expect_response!(r, DescribeUserScramCredentials);
            check(
                r.error_code,
                "cannot list users",
                r.error_message.as_deref(),
            )?;
            let users: Vec<_> = r
                .results
                .iter()
                .map(|u| {
                    (
                        u.user.clone(),
                        u.credential_infos
                            .iter()
                            .filter_map(|c| {
                                Some((ScramMechanism::from_wire(c.mechanism)?, c.iterations))
                            })
                            .collect(),
                    )
                })
                .collect();
            print_list(out, &users);
        }
        UserCommand::Delete {
            name, mechanism, ..
        } => {
            let r = client
                .call(Request::DescribeUserScramCredentials(
                    DescribeUserScramCredentialsRequest {
                        users: Some(vec![name.clone()]),
                    },
                ))
                .await?;
            let described = expect_response!(r, DescribeUserScramCredentials);
            let have: Vec<i8> = described
                .results
                .iter()
                .flat_map(|u| u.credential_infos.iter().map(|c| c.mechanism))
                .collect();
            let deletions: Vec<ScramCredentialDeletion> = mechanisms(&mechanism)?
                .into_iter()
                .filter(|m| have.contains(&m.wire_type()))
                .map(|m| ScramCredentialDeletion {
                    name: name.clone(),
                    mechanism: m.wire_type(),
                })
                .collect();
            anyhow::ensure!(
                !deletions.is_empty(),
                "user {name} has no such credentials (see `weir user list`)"
            );
            let r = client
                .call(Request::AlterUserScramCredentials(
                    AlterUserScramCredentialsRequest {
                        deletions,
                        upsertions: Vec::new(),
                    },
                ))
                .await?;
            let r = expect_response!(r, AlterUserScramCredentials);
            for res in &r.results {
                check(
                    res.error_code,
                    &format!("cannot delete user {}", res.user),
                    res.error_message.as_deref(),
                )?;
            }
            out.message(
                &json!({"user": name, "deleted": true}),
                &format!("user {name} deleted"),
            );
        }
    }
    Ok(())
}
