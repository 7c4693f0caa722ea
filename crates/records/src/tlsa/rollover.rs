//! TLSA key rollover (RFC 7671 §8.1: publish the new key's record before the certificate
//! changes, withdraw the old one only after it is no longer served).
//!
//! Pure bookkeeping: the engine stores [`TlsaEntry`]s per host, reads the certificate files,
//! and asks [`advance`] what a publication now would leave. A read shows that state; only
//! the apply that publishes its records stores it, so `now` there is the publication time. Every digest the files ever named stays in
//! the published set until `retireAfter` after the files stopped naming it, so the sequence
//! of served sets over a renewal under a new key is {old} → {old, new} → {new}.

use super::{TlsaKeys, USAGE_DANE_EE, USAGE_DANE_TA};

/// Why a digest is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsaRole {
    /// The certificate file's leaf key (`3 1 1`) or its issuer's key (`2 1 1`).
    Current,
    /// `server.tls.nextKey`: announced ahead of the certificate switch.
    Next,
    /// No longer named by the files; withdrawn at `retire_at`.
    Retiring,
}

impl TlsaRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsaRole::Current => "current",
            TlsaRole::Next => "next",
            TlsaRole::Retiring => "retiring",
        }
    }

    pub fn parse(text: &str) -> Option<TlsaRole> {
        [TlsaRole::Current, TlsaRole::Next, TlsaRole::Retiring]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// One published digest of a host's TLSA RRset and its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsaEntry {
    /// Certificate usage: 3 (DANE-EE) or 2 (DANE-TA).
    pub usage: u8,
    /// SHA-256 of the SubjectPublicKeyInfo.
    pub digest: Vec<u8>,
    pub role: TlsaRole,
    /// When the digest was first published (Unix seconds).
    pub since: i64,
    /// For `Retiring` entries: when the record is withdrawn.
    pub retire_at: Option<i64>,
}

/// Something that changed in a host's TLSA set, for logs and task results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsaEvent {
    /// A digest is published for the first time.
    Added {
        usage: u8,
        digest: Vec<u8>,
        role: TlsaRole,
    },
    /// The certificate's key changed. `announced`: the new key was published (as the next
    /// key) before the certificate switched; when false, clients holding the old RRset
    /// cannot validate the new certificate until their cached copy expires.
    Switched { digest: Vec<u8>, announced: bool },
    /// A digest is no longer named by the files; it stays published until `retire_at`.
    Retiring {
        usage: u8,
        digest: Vec<u8>,
        retire_at: i64,
    },
    /// A retiring digest's time has come: its record is withdrawn.
    Withdrawn { usage: u8, digest: Vec<u8> },
}

/// The new state and what changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Advance {
    pub entries: Vec<TlsaEntry>,
    pub events: Vec<TlsaEvent>,
}

impl Advance {
    /// True when the stored entries must be rewritten.
    pub fn changed(&self, before: &[TlsaEntry]) -> bool {
        self.entries != before
    }
}

/// The digests the files name now, with their role.
fn named(keys: &TlsaKeys) -> Vec<(u8, Vec<u8>, TlsaRole)> {
    let mut out = vec![(USAGE_DANE_EE, keys.leaf.clone(), TlsaRole::Current)];
    if let Some(next) = keys.next.as_ref().filter(|n| **n != keys.leaf) {
        out.push((USAGE_DANE_EE, next.clone(), TlsaRole::Next));
    }
    if let Some(issuer) = &keys.issuer {
        out.push((USAGE_DANE_TA, issuer.clone(), TlsaRole::Current));
    }
    out
}

/// Moves a host's TLSA state to `now`: digests the files name become (or stay) current or
/// next, digests they stopped naming start retiring, and retiring ones whose time has come
/// are withdrawn. Entries are kept in a stable order (usage, role, digest).
pub fn advance(stored: &[TlsaEntry], keys: &TlsaKeys, now: i64, retire_after_secs: i64) -> Advance {
    let named = named(keys);
    let find = |usage: u8, digest: &[u8]| {
        stored
            .iter()
            .find(|e| e.usage == usage && e.digest == digest)
    };
    let had_current_leaf = stored
        .iter()
        .any(|e| e.usage == USAGE_DANE_EE && e.role == TlsaRole::Current);
    let mut out = Advance::default();
    for (usage, digest, role) in &named {
        let previous = find(*usage, digest);
        if previous.is_none() {
            out.events.push(TlsaEvent::Added {
                usage: *usage,
                digest: digest.clone(),
                role: *role,
            });
        }
        let becomes_current_leaf = *usage == USAGE_DANE_EE
            && *role == TlsaRole::Current
            && previous.is_none_or(|e| e.role != TlsaRole::Current);
        if becomes_current_leaf && had_current_leaf {
            out.events.push(TlsaEvent::Switched {
                digest: digest.clone(),
                announced: previous.is_some(),
            });
        }
        out.entries.push(TlsaEntry {
            usage: *usage,
            digest: digest.clone(),
            role: *role,
            since: previous.map_or(now, |e| e.since),
            retire_at: None,
        });
    }
    for entry in stored {
        let still_named = named
            .iter()
            .any(|(u, d, _)| *u == entry.usage && *d == entry.digest);
        if still_named {
            continue;
        }
        let retire_at = entry.retire_at.unwrap_or(now + retire_after_secs);
        if retire_at <= now {
            out.events.push(TlsaEvent::Withdrawn {
                usage: entry.usage,
                digest: entry.digest.clone(),
            });
            continue;
        }
        if entry.role != TlsaRole::Retiring {
            out.events.push(TlsaEvent::Retiring {
                usage: entry.usage,
                digest: entry.digest.clone(),
                retire_at,
            });
        }
        out.entries.push(TlsaEntry {
            role: TlsaRole::Retiring,
            retire_at: Some(retire_at),
            ..entry.clone()
        });
    }
    out.entries
        .sort_by(|a, b| (a.usage, a.role, &a.digest).cmp(&(b.usage, b.role, &b.digest)));
    out
}

/// The keys to plan with: the files' keys plus every retiring digest.
pub fn with_retiring(keys: &TlsaKeys, entries: &[TlsaEntry]) -> TlsaKeys {
    TlsaKeys {
        retiring: entries
            .iter()
            .filter(|e| e.role == TlsaRole::Retiring)
            .map(|e| (e.usage, e.digest.clone()))
            .collect(),
        ..keys.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn keys(leaf: u8, next: Option<u8>) -> TlsaKeys {
        TlsaKeys {
            leaf: vec![leaf; 32],
            issuer: Some(vec![0xCA; 32]),
            next: next.map(|n| vec![n; 32]),
            leaf_subject: "CN=mail.example.org".into(),
            retiring: Vec::new(),
        }
    }

    /// The first bytes of the `3 1 1` digests the planner would publish.
    fn published_ee(state: &[TlsaEntry], keys: &TlsaKeys) -> Vec<u8> {
        let planned = with_retiring(keys, state);
        let mut out: Vec<u8> = std::iter::once(planned.leaf[0])
            .chain(planned.next.iter().map(|n| n[0]))
            .chain(
                planned
                    .retiring
                    .iter()
                    .filter(|(u, _)| *u == USAGE_DANE_EE)
                    .map(|(_, d)| d[0]),
            )
            .collect();
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn announced_rollover_goes_old_then_both_then_new() {
        let first = advance(&[], &keys(1, None), 0, 2 * DAY);
        assert_eq!(published_ee(&first.entries, &keys(1, None)), [1]);
        // The next key is configured: announced beside the current one.
        let announced = advance(&first.entries, &keys(1, Some(2)), DAY, 2 * DAY);
        assert_eq!(published_ee(&announced.entries, &keys(1, Some(2))), [1, 2]);
        // The certificate switches to the announced key.
        let switched = advance(&announced.entries, &keys(2, None), 3 * DAY, 2 * DAY);
        assert!(switched.events.contains(&TlsaEvent::Switched {
            digest: vec![2; 32],
            announced: true
        }));
        assert_eq!(published_ee(&switched.entries, &keys(2, None)), [1, 2]);
        // Not yet: one second before retireAfter.
        let waiting = advance(&switched.entries, &keys(2, None), 5 * DAY - 1, 2 * DAY);
        assert_eq!(published_ee(&waiting.entries, &keys(2, None)), [1, 2]);
        assert!(!waiting.changed(&switched.entries));
        let done = advance(&waiting.entries, &keys(2, None), 5 * DAY, 2 * DAY);
        assert_eq!(published_ee(&done.entries, &keys(2, None)), [2]);
        assert!(done.events.contains(&TlsaEvent::Withdrawn {
            usage: USAGE_DANE_EE,
            digest: vec![1; 32]
        }));
    }

    #[test]
    fn unannounced_switch_keeps_the_old_key_and_says_so() {
        let first = advance(&[], &keys(1, None), 0, DAY);
        let switched = advance(&first.entries, &keys(3, None), 10, DAY);
        assert!(switched.events.contains(&TlsaEvent::Switched {
            digest: vec![3; 32],
            announced: false
        }));
        assert_eq!(published_ee(&switched.entries, &keys(3, None)), [1, 3]);
        let retiring = switched
            .entries
            .iter()
            .find(|e| e.role == TlsaRole::Retiring)
            .unwrap();
        assert_eq!(retiring.retire_at, Some(10 + DAY));
    }

    #[test]
    fn steady_state_changes_nothing() {
        let first = advance(&[], &keys(1, Some(2)), 0, DAY);
        let again = advance(&first.entries, &keys(1, Some(2)), 100 * DAY, DAY);
        assert!(again.events.is_empty());
        assert!(!again.changed(&first.entries));
    }

    #[test]
    fn a_key_coming_back_is_current_again() {
        let first = advance(&[], &keys(1, None), 0, DAY);
        let switched = advance(&first.entries, &keys(2, None), 10, DAY);
        let back = advance(&switched.entries, &keys(1, None), 20, DAY);
        let one = back
            .entries
            .iter()
            .find(|e| e.digest == vec![1; 32])
            .unwrap();
        assert_eq!((one.role, one.since), (TlsaRole::Current, 0));
        assert_eq!(published_ee(&back.entries, &keys(1, None)), [1, 2]);
    }

    #[test]
    fn issuer_change_retires_the_old_issuer() {
        let first = advance(&[], &keys(1, None), 0, DAY);
        let mut reissued = keys(1, None);
        reissued.issuer = Some(vec![0xCB; 32]);
        let next = advance(&first.entries, &reissued, 5, DAY);
        let planned = with_retiring(&reissued, &next.entries);
        assert_eq!(planned.retiring, vec![(USAGE_DANE_TA, vec![0xCA; 32])]);
    }
}
