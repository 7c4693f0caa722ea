//! MTA-STS (RFC 8461 §3.1 the `_mta-sts` TXT record, §3.2 the policy file, §3.3 its
//! location `https://mta-sts.<domain>/.well-known/mta-sts.txt`).

use sha2::{Digest, Sha256};

use crate::model::MtaStsPolicy;

/// RFC 8461 §3.2: `max_age` is at most 31557600 seconds (about a year).
pub const MAX_AGE_LIMIT: u32 = 31_557_600;

/// The exact policy text served (RFC 8461 §3.2: `key: value` lines ending in CRLF, `version`
/// first). Its bytes are what the id is derived from, so it must never change for the same
/// policy.
pub fn policy_text(policy: &MtaStsPolicy) -> String {
    let mut text = format!("version: STSv1\r\nmode: {}\r\n", policy.mode.as_str());
    for mx in &policy.mx {
        text.push_str(&format!("mx: {mx}\r\n"));
    }
    text.push_str(&format!("max_age: {}\r\n", policy.max_age));
    text
}

/// The policy id (RFC 8461 §3.1: 1–32 alphanumeric characters): the first 128 bits of the
/// SHA-256 of the policy text, in lowercase hex. It changes exactly when the text changes
/// and is the same on every machine and in every release.
pub fn policy_id(policy_text: &str) -> String {
    let digest = Sha256::digest(policy_text.as_bytes());
    crate::zonefile::hex(&digest[..16])
}

/// `v=STSv1; id=<id>`.
pub fn txt_value(policy_text: &str) -> String {
    format!("v=STSv1; id={}", policy_id(policy_text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MtaStsMode;

    fn policy(mode: MtaStsMode, mx: &[&str]) -> MtaStsPolicy {
        MtaStsPolicy {
            enabled: true,
            mode,
            max_age: 604800,
            mx: mx.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn text_follows_rfc_layout() {
        assert_eq!(
            policy_text(&policy(MtaStsMode::Enforce, &["mail.example.org"])),
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.org\r\nmax_age: 604800\r\n"
        );
    }

    #[test]
    fn id_is_stable_alphanumeric_and_tracks_the_text() {
        let text = policy_text(&policy(MtaStsMode::Enforce, &["mail.example.org"]));
        let id = policy_id(&text);
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        // Pinned: the id must not change between releases for the same policy.
        assert_eq!(
            id,
            crate::zonefile::hex(&Sha256::digest(text.as_bytes())[..16])
        );
        let other = policy_text(&policy(MtaStsMode::Testing, &["mail.example.org"]));
        assert_ne!(policy_id(&other), id);
        assert_eq!(txt_value(&text), format!("v=STSv1; id={id}"));
    }
}
