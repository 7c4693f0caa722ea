//! The registry of finding codes. Each check module declares its codes as `Code` constants
//! and lists them in its `CODES`; [`all`] gathers them so tests can hold docs/checks.md and
//! the code in step, and so no two checks ever share a code.

use mailzone_records::DnsRecordType;

use crate::finding::Severity;

/// A stable finding code with its default severity and a one-line summary.
#[derive(Debug, PartialEq, Eq)]
pub struct Code {
    pub id: &'static str,
    pub severity: Severity,
    pub record_type: Option<DnsRecordType>,
    pub summary: &'static str,
}

/// Every code of every check module.
pub fn all() -> Vec<&'static Code> {
    let modules: [&[&'static Code]; 13] = [
        crate::records::CODES,
        crate::mx::CODES,
        crate::spf::CODES,
        crate::dkim::CODES,
        crate::dmarc::CODES,
        crate::mtasts::CODES,
        crate::srv::CODES,
        crate::autoconfig::CODES,
        crate::tlsa::CODES,
        crate::dnssec::CODES,
        crate::caa::CODES,
        crate::zone::CODES,
        crate::ptr::CODES,
    ];
    modules.into_iter().flatten().copied().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_unique_and_documented() {
        let docs = include_str!("../../../docs/checks.md");
        let mut seen = std::collections::BTreeSet::new();
        for code in super::all() {
            assert!(seen.insert(code.id), "duplicate code {}", code.id);
            assert!(
                docs.contains(&format!("`{}`", code.id)),
                "{} is not documented in docs/checks.md",
                code.id
            );
        }
    }
}
