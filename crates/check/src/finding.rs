//! Findings: one result of a check, with a stable code, a severity, the record concerned,
//! what was seen, what was expected and a fix a person can apply.

use mailzone_records::RecordPurpose;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// One result of a check. `code` values are stable: scripts match on them, and every one is
/// documented in docs/checks.md (a test keeps the two in step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    /// Serialised as `recordType`, the name scripts and the service's API use.
    #[serde(rename = "recordType")]
    pub purpose: Option<RecordPurpose>,
    /// The owner name concerned, absolute (`_dmarc.example.org.`).
    pub name: String,
    pub message: String,
    pub seen: Option<String>,
    pub expected: Option<String>,
    /// The exact record to publish or remove, or the action to take.
    pub fix: Option<String>,
}

impl Finding {
    /// A finding with the severity registered for its code.
    pub fn new(
        code: &'static crate::codes::Code,
        name: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            code: code.id,
            severity: code.severity,
            purpose: code.purpose,
            name: name.into(),
            message: message.into(),
            seen: None,
            expected: None,
            fix: None,
        }
    }

    pub fn seen(mut self, seen: impl Into<String>) -> Finding {
        self.seen = Some(seen.into());
        self
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Finding {
        self.expected = Some(expected.into());
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }

    /// Overrides the registered record type (for codes that serve several types, e.g. the
    /// SRV record of one service or one autoconfiguration name).
    pub fn typed(mut self, purpose: RecordPurpose) -> Finding {
        self.purpose = Some(purpose);
        self
    }

    /// Overrides the registered severity (e.g. a warning that `--strict` treats as error is
    /// decided by the caller, not here; this is for checks whose severity depends on data).
    pub fn severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }
}
