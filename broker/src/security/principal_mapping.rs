//! Client certificate subject to principal name: Kafka's `ssl.principal.mapping.rules`.
//!
//! The subject is written as Java's `X500Principal.getName()` does (RFC 2253: most specific RDN
//! first, `CN=client,OU=eng,O=Acme,C=US`), so rules written for Kafka work unchanged. Rules are a
//! comma-separated list of `DEFAULT` (the whole DN) and `RULE:pattern/replacement/[L|U]`; the
//! first rule whose pattern matches the whole DN gives the name. No rule matching fails the
//! authentication, as in Kafka.

use regex::Regex;
use x509_parser::prelude::*;

/// Longest rule list accepted (characters), and most rules.
const MAX_RULES_CHARS: usize = 16 * 1024;
const MAX_RULES: usize = 64;

#[derive(Clone, Debug)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// Parsed `ssl.principal.mapping.rules`.
#[derive(Clone, Debug)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

/// Reads up to an unescaped `/`; returns the text (escapes of `/` removed) and the rest after it.
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return None,
            },
            '/' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

impl PrincipalMapper {
    pub fn parse(rules: &str) -> Result<Self, String> {
        if rules.len() > MAX_RULES_CHARS {
            return Err("rules too long".into());
        }
        let mut out = Vec::new();
        let mut rest = rules.trim_start_matches([',', ' ', '\t', '\n']);
        while !rest.is_empty() {
            if out.len() == MAX_RULES {
                return Err(format!("more than {MAX_RULES} rules"));
            }
            if let Some(r) = rest.strip_prefix("DEFAULT") {
                out.push(Rule::Default);
                rest = r;
            } else if let Some(r) = rest.strip_prefix("RULE:") {
                let (pattern, r) = until_slash(r).ok_or("a RULE needs pattern/replacement/")?;
                let (replacement, r) = until_slash(r).ok_or("a RULE needs pattern/replacement/")?;
                let (case, r) = match r.chars().next() {
                    Some('L') => (Case::Lower, &r[1..]),
                    Some('U') => (Case::Upper, &r[1..]),
                    _ => (Case::Keep, r),
                };
                // Java's Matcher.matches(): the pattern must match the whole DN.
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("bad pattern '{pattern}': {e}"))?;
                out.push(Rule::Replace {
                    pattern,
                    replacement,
                    case,
                });
                rest = r;
            } else {
                return Err(format!("cannot parse rule at '{rest}'"));
            }
            let trimmed = rest.trim_start_matches([' ', '\t', '\n']);
            rest = match trimmed.strip_prefix(',') {
                Some(r) => r.trim_start_matches([',', ' ', '\t', '\n']),
                None if trimmed.is_empty() => trimmed,
                None => return Err(format!("expected ',' at '{trimmed}'")),
            };
        }
        if out.is_empty() {
            return Err("no rules".into());
        }
        Ok(Self { rules: out })
    }

    /// The principal name for a certificate subject `dn`, or `None` if no rule applies.
    pub fn map(&self, dn: &str) -> Option<String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Some(dn.to_string()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(dn) {
                        let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                        return Some(match case {
                            Case::Keep => name,
                            Case::Lower => name.to_lowercase(),
                            Case::Upper => name.to_uppercase(),
                        });
                    }
                }
            }
        }
        None
    }
}

/// The subject of a DER certificate as an RFC 2253 string, or `None` if it cannot be parsed.
pub fn subject_dn(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    Some(rfc2253(cert.subject()))
}

fn attr_key(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    use x509_parser::oid_registry as r;
    let known = [
        (r::OID_X509_COMMON_NAME, "CN"),
        (r::OID_X509_COUNTRY_NAME, "C"),
        (r::OID_X509_LOCALITY_NAME, "L"),
        (r::OID_X509_STATE_OR_PROVINCE_NAME, "ST"),
        (r::OID_X509_ORGANIZATION_NAME, "O"),
        (r::OID_X509_ORGANIZATIONAL_UNIT, "OU"),
        (r::OID_X509_STREET_ADDRESS, "STREET"),
        (r::OID_DOMAIN_COMPONENT, "DC"),
        (r::OID_USERID, "UID"),
    ];
    known
        .iter()
        .find(|(k, _)| k == oid)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| oid.to_id_string())
}

fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let value = atv
                        .as_str()
                        .map(escape_value)
                        .unwrap_or_else(|_| format!("#{}", hex(atv.as_slice())));
                    format!("{}={}", attr_key(atv.attr_type()), value)
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_whole_dn() {
        let m = PrincipalMapper::parse("DEFAULT").expect("valid");
        assert_eq!(
            m.map("CN=alice,OU=eng,O=Acme").as_deref(),
            Some("CN=alice,OU=eng,O=Acme")
        );
    }

    #[test]
    fn first_matching_rule_wins_with_case_flags() {
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=([^,]*).*$/user-$1/,DEFAULT",
        )
        .expect("valid");
        assert_eq!(
            m.map("CN=Kafka-Client,OU=ServiceUsers,O=Acme").as_deref(),
            Some("kafka-client")
        );
        assert_eq!(m.map("CN=bob,O=Acme").as_deref(), Some("user-bob"));
        assert_eq!(m.map("O=Acme").as_deref(), Some("O=Acme"));
    }

    #[test]
    fn no_matching_rule_is_no_principal() {
        let m = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/U").expect("valid");
        assert_eq!(m.map("CN=x").as_deref(), Some("X"));
        assert_eq!(m.map("O=x"), None);
    }

    #[test]
    fn escaped_slash_and_bad_rules() {
        let m = PrincipalMapper::parse(r"RULE:^CN=a\/b$/ab/").expect("valid");
        assert_eq!(m.map("CN=a/b").as_deref(), Some("ab"));
        assert!(PrincipalMapper::parse("RULE:^CN=(.*$/x/").is_err());
        assert!(PrincipalMapper::parse("RULE:abc").is_err());
        assert!(PrincipalMapper::parse("SOMETHING").is_err());
        assert!(PrincipalMapper::parse("").is_err());
    }

    #[test]
    fn subject_is_written_most_specific_first() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Acme, Inc");
        dn.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        assert_eq!(
            subject_dn(cert.der()).as_deref(),
            Some(r"CN=alice,O=Acme\, Inc,C=US")
        );
        assert_eq!(subject_dn(b"not a certificate"), None);
    }
}
