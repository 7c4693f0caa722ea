//! CAA records (RFC 8659 §4.2 `issue`, §4.3 `issuewild`, §4.4 `iodef`; RFC 8657 §3 and §4
//! for the `accounturi` and `validationmethods` parameters).

use crate::model::CaaPolicy;

/// One CAA property: flags 0 (not critical), tag, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaProperty {
    pub tag: &'static str,
    pub value: String,
}

/// The properties of a policy: an `issue` per CA (with RFC 8657 parameters), `issuewild`
/// when configured, and `iodef` for violation reports.
pub fn properties(policy: &CaaPolicy) -> Vec<CaaProperty> {
    let mut out: Vec<CaaProperty> = policy
        .issuers
        .iter()
        .map(|ca| CaaProperty {
            tag: "issue",
            value: issuer_value(ca.as_str(), policy),
        })
        .collect();
    if let Some(wild) = &policy.issuers_wild {
        if wild.is_empty() {
            // RFC 8659 §4.3: an empty issuer domain forbids wildcard issuance.
            out.push(CaaProperty {
                tag: "issuewild",
                value: ";".into(),
            });
        }
        out.extend(wild.iter().map(|ca| CaaProperty {
            tag: "issuewild",
            value: issuer_value(ca.as_str(), policy),
        }));
    }
    if let Some(iodef) = &policy.iodef {
        out.push(CaaProperty {
            tag: "iodef",
            value: iodef.clone(),
        });
    }
    out
}

fn issuer_value(ca: &str, policy: &CaaPolicy) -> String {
    let mut value = ca.to_string();
    if let Some(uri) = &policy.account_uri {
        value.push_str(&format!("; accounturi={uri}"));
    }
    if !policy.validation_methods.is_empty() {
        value.push_str(&format!(
            "; validationmethods={}",
            policy.validation_methods.join(",")
        ));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::Name;

    #[test]
    fn issue_and_iodef() {
        let policy = CaaPolicy {
            issuers: vec![Name::host("letsencrypt.org").unwrap()],
            issuers_wild: Some(vec![]),
            account_uri: Some("https://acme-v02.api.letsencrypt.org/acme/acct/1".into()),
            validation_methods: vec!["dns-01".into()],
            iodef: Some("mailto:postmaster@example.org".into()),
        };
        let p = properties(&policy);
        assert_eq!(
            p[0].value,
            "letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/1; validationmethods=dns-01"
        );
        assert_eq!(
            p[1],
            CaaProperty {
                tag: "issuewild",
                value: ";".into()
            }
        );
        assert_eq!(p[2].tag, "iodef");
    }
}
