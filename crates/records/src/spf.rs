//! SPF records (RFC 7208 §3 record publication, §4.6 record syntax, §5 mechanisms).

use crate::model::SpfPolicy;

/// The domain's own policy: `v=spf1 mx [extra mechanisms] <q>all` (RFC 7208 §5.4 `mx`,
/// §5.1 `all`). Authorising the MX hosts keeps the record right when exchangers change.
pub fn domain_value(policy: &SpfPolicy) -> String {
    let mut terms = vec!["v=spf1".to_string(), "mx".to_string()];
    terms.extend(policy.mechanisms.iter().cloned());
    terms.push(format!("{}all", policy.all_qualifier));
    terms.join(" ")
}

/// The exchanger host's own policy: `v=spf1 a <q>all`, so that bounces (empty
/// MAIL FROM, checked against the HELO name per RFC 7208 §2.3) pass.
pub fn host_value(policy: &SpfPolicy) -> String {
    format!("v=spf1 a {}all", policy.all_qualifier)
}

/// Validates one extra term written by a person (RFC 7208 §4.6.1 grammar, loosely: a known
/// mechanism or modifier name, an optional qualifier, no spaces). Returns why it is wrong.
pub fn validate_term(term: &str) -> Result<(), String> {
    if term.is_empty() || term.contains(char::is_whitespace) {
        return Err("an SPF term must be one word without spaces".into());
    }
    let body = term.trim_start_matches(['+', '-', '~', '?']);
    let lower = body.to_ascii_lowercase();
    if lower == "all" || lower.starts_with("all") {
        return Err("`all` is added by mailzone from `qualifier`; do not list it".into());
    }
    if lower.starts_with("redirect=") {
        return Err("`redirect=` would make `mx` and `all` meaningless; use `include:`".into());
    }
    const KNOWN: [&str; 8] = [
        "include:", "a", "mx", "ptr", "ip4:", "ip6:", "exists:", "exp=",
    ];
    let known = KNOWN.iter().any(|k| {
        lower == k.trim_end_matches(':')
            || lower.starts_with(k)
            || (!k.ends_with([':', '='])
                && (lower.starts_with(&format!("{k}:")) || lower.starts_with(&format!("{k}/"))))
    });
    if !known {
        return Err(format!(
            "`{term}` is not an SPF mechanism (include:, a, mx, ip4:, ip6:, exists:, exp=)"
        ));
    }
    if lower == "ptr" || lower.starts_with("ptr:") {
        return Err("`ptr` must not be used (RFC 7208 §5.5)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(q: char, mechanisms: &[&str]) -> SpfPolicy {
        SpfPolicy {
            all_qualifier: q,
            mechanisms: mechanisms.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn values() {
        assert_eq!(domain_value(&policy('-', &[])), "v=spf1 mx -all");
        assert_eq!(
            domain_value(&policy(
                '~',
                &["include:_spf.example.net", "ip4:192.0.2.0/24"]
            )),
            "v=spf1 mx include:_spf.example.net ip4:192.0.2.0/24 ~all"
        );
        assert_eq!(host_value(&policy('-', &["ip4:1.2.3.4"])), "v=spf1 a -all");
    }

    #[test]
    fn term_validation() {
        for ok in [
            "include:_spf.google.com",
            "ip4:192.0.2.1",
            "ip6:2001:db8::/32",
            "a",
            "a:mail.example",
            "mx/24",
            "-exists:%{i}.bl.example",
        ] {
            assert!(validate_term(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "foo",
            "-all",
            "redirect=x.example",
            "ptr",
            "ip4 1.2.3.4",
        ] {
            assert!(validate_term(bad).is_err(), "{bad}");
        }
    }
}
