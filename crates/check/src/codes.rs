//! The registry of finding codes. Each check module declares its codes as `Code` constants
//! and lists them in its `CODES`; [`all`] gathers them so tests can hold docs/checks.md and
//! the code in step, and so no two checks ever share a code.

use mailzone_records::RecordPurpose;

use crate::finding::Severity;

/// A stable finding code with its default severity and a one-line summary.
#[derive(Debug, PartialEq, Eq)]
pub struct Code {
    pub id: &'static str,
    pub severity: Severity,
    pub purpose: Option<RecordPurpose>,
    pub summary: &'static str,
}

/// Declares a check module's codes: a `Code` constant for each, and the module's `CODES`
/// listing them in the order written. Each entry is
/// `NAME: Severity, "id", "summary";`; the record type named first applies to every code
/// that does not give its own in parentheses after the id.
macro_rules! declare {
    (
        purpose: $module_type:expr;
        $($name:ident: $severity:ident, $id:literal $(($own_type:expr))?, $summary:literal;)+
    ) => {
        $(
            pub const $name: &$crate::codes::Code = &$crate::codes::Code {
                id: $id,
                severity: $crate::finding::Severity::$severity,
                purpose: $crate::codes::declare!(@type $module_type $(, $own_type)?),
                summary: $summary,
            };
        )+

        pub const CODES: &[&$crate::codes::Code] = &[$($name),+];
    };
    (@type $module_type:expr) => { $module_type };
    (@type $module_type:expr, $own_type:expr) => { $own_type };
}
pub(crate) use declare;

/// Every code of every check module.
pub fn all() -> Vec<&'static Code> {
    let modules: [&[&'static Code]; 14] = [
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
        crate::live_tls::CODES,
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
