use super::*;

fn name(s: &str) -> Name {
    Name::owner(s).unwrap()
}

fn txt(owner: &str, value: &str, ttl: u32) -> Record {
    Record {
        name: name(owner),
        ttl,
        data: RData::Txt(value.as_bytes().to_vec()),
    }
}

fn caa(tag: &str, value: &str) -> Record {
    Record {
        name: name("example.org"),
        ttl: 3600,
        data: RData::Caa {
            flags: 0,
            tag: tag.into(),
            value: value.into(),
        },
    }
}

fn mx(pref: u16, host: &str) -> Record {
    Record {
        name: name("example.org"),
        ttl: 3600,
        data: RData::Mx {
            preference: pref,
            exchange: name(host),
        },
    }
}

/// A ledger saying mailzone published `record` as a DKIM key.
fn published_dkim(record: &Record) -> BTreeSet<LedgerEntry> {
    [LedgerEntry {
        purpose: RecordPurpose::Dkim,
        name: record.name.clone(),
        data: record.data.clone(),
    }]
    .into()
}

fn desired(t: RecordPurpose, record: Record) -> DesiredRecord {
    DesiredRecord { purpose: t, record }
}

fn live(records: &[Record]) -> Vec<LiveRecord> {
    records
        .iter()
        .cloned()
        .map(LiveRecord::from_record)
        .collect()
}

fn zone() -> Name {
    name("example.org")
}

const ALL: &[RecordPurpose] = &RecordPurpose::ALL;

#[test]
fn empty_zone_gets_every_record_with_must_not_exist_prerequisites() {
    let want = vec![
        desired(RecordPurpose::Mx, mx(10, "mail.example.org")),
        desired(
            RecordPurpose::Spf,
            txt("example.org", "v=spf1 mx -all", 3600),
        ),
    ];
    let changes = diff(&zone(), &want, &[], &BTreeSet::new(), ALL);
    assert_eq!(changes.adds, want);
    assert!(changes.deletes.is_empty());
    assert_eq!(changes.prerequisites.len(), 2);
    assert!(changes.prerequisites.iter().all(|p| p.records.is_empty()));
}

#[test]
fn zone_in_sync_has_no_changes() {
    let want = vec![desired(RecordPurpose::Mx, mx(10, "mail.example.org"))];
    let changes = diff(
        &zone(),
        &want,
        &live(&[mx(10, "mail.example.org")]),
        &BTreeSet::new(),
        ALL,
    );
    assert!(changes.is_empty());
    assert!(changes.prerequisites.is_empty());
}

#[test]
fn site_verification_survives_and_old_spf_is_replaced() {
    let verification = txt("example.org", "google-site-verification=abc", 3600);
    let old_spf = txt("example.org", "v=spf1 a ~all", 3600);
    let new_spf = txt("example.org", "v=spf1 mx -all", 3600);
    let want = vec![desired(RecordPurpose::Spf, new_spf.clone())];
    let changes = diff(
        &zone(),
        &want,
        &live(&[verification.clone(), old_spf.clone()]),
        &BTreeSet::new(),
        ALL,
    );
    assert_eq!(changes.adds, want);
    assert_eq!(
        changes.deletes,
        vec![(
            Some(RecordPurpose::Spf),
            LiveRecord::from_record(old_spf.clone())
        )]
    );
    // The prerequisite is the whole apex TXT RRset as read, foreign value included.
    assert_eq!(changes.prerequisites.len(), 1);
    assert_eq!(changes.prerequisites[0].records.len(), 2);
    assert_eq!(
        changes.entries(),
        vec![PlanEntry::Replace {
            purpose: RecordPurpose::Spf,
            old: vec![old_spf],
            new: vec![new_spf]
        }]
    );
}

#[test]
fn other_cas_are_kept_and_our_ca_is_updated() {
    let other = caa("issue", "digicert.com");
    let ours_old = caa("issue", "letsencrypt.org");
    let ours_new = caa("issue", "letsencrypt.org; validationmethods=dns-01");
    let want = vec![desired(RecordPurpose::Caa, ours_new.clone())];
    let changes = diff(
        &zone(),
        &want,
        &live(&[other, ours_old.clone()]),
        &BTreeSet::new(),
        ALL,
    );
    assert_eq!(changes.adds, want);
    assert_eq!(changes.deletes.len(), 1);
    assert_eq!(changes.deletes[0].1.record, ours_old);
}

#[test]
fn unknown_selectors_survive_and_retired_ones_we_published_go() {
    let google = txt(
        "google._domainkey.example.org",
        "v=DKIM1; k=rsa; p=AAAA",
        3600,
    );
    let retired = txt(
        "old._domainkey.example.org",
        "v=DKIM1; k=ed25519; p=BBBB",
        3600,
    );
    let current = txt(
        "new._domainkey.example.org",
        "v=DKIM1; k=ed25519; p=CCCC",
        3600,
    );
    let ledger = published_dkim(&retired);
    let want = vec![desired(RecordPurpose::Dkim, current.clone())];
    let changes = diff(
        &zone(),
        &want,
        &live(&[google.clone(), retired.clone(), current]),
        &ledger,
        ALL,
    );
    assert!(changes.adds.is_empty());
    assert_eq!(
        changes.deletes,
        vec![(Some(RecordPurpose::Dkim), LiveRecord::from_record(retired))]
    );
    // Without the ledger, the retired key is not ours to delete.
    let changes = diff(&zone(), &want, &live(&[google]), &BTreeSet::new(), ALL);
    assert!(changes.deletes.is_empty());
}

#[test]
fn ledger_entries_of_unmanaged_types_are_left_alone() {
    let retired = txt(
        "old._domainkey.example.org",
        "v=DKIM1; k=ed25519; p=BBBB",
        3600,
    );
    let ledger = published_dkim(&retired);
    let changes = diff(
        &zone(),
        &[],
        &live(&[retired]),
        &ledger,
        &[RecordPurpose::Mx],
    );
    assert!(changes.is_empty());
}

#[test]
fn shared_rrset_keeps_its_ttl() {
    let verification = txt("example.org", "google-site-verification=abc", 300);
    let spf_live = txt("example.org", "v=spf1 mx -all", 300);
    let want = vec![desired(
        RecordPurpose::Spf,
        txt("example.org", "v=spf1 mx -all", 3600),
    )];
    let changes = diff(
        &zone(),
        &want,
        &live(&[verification, spf_live]),
        &BTreeSet::new(),
        ALL,
    );
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn ttl_change_of_an_owned_rrset_is_a_replacement() {
    let want = vec![desired(RecordPurpose::Mx, mx(10, "mail.example.org"))];
    let mut old = mx(10, "mail.example.org");
    old.ttl = 300;
    let changes = diff(&zone(), &want, &live(&[old]), &BTreeSet::new(), ALL);
    assert_eq!(changes.adds.len(), 1);
    assert_eq!(changes.deletes.len(), 1);
}

#[test]
fn txt_families_need_a_delimiter() {
    assert_eq!(txt_family(b"v=spf1 -all"), Some("v=spf1"));
    assert_eq!(txt_family(b"V=DMARC1;p=none"), Some("v=dmarc1"));
    assert_eq!(txt_family(b"v=spf10 -all"), None);
    assert_eq!(txt_family(b"google-site-verification=x"), None);
}

#[test]
fn ledger_after_remembers_adds_and_forgets_deletes() {
    let old = txt("old._domainkey.example.org", "v=DKIM1; p=A", 3600);
    let new = txt("new._domainkey.example.org", "v=DKIM1; p=B", 3600);
    let ledger = published_dkim(&old);
    let changes = ChangeSet {
        adds: vec![desired(RecordPurpose::Dkim, new.clone())],
        deletes: vec![(Some(RecordPurpose::Dkim), LiveRecord::from_record(old))],
        ..ChangeSet::default()
    };
    let next = ledger_after(&ledger, &changes);
    assert_eq!(next.len(), 1);
    assert_eq!(next.iter().next().unwrap().name, new.name);
}

/// The counts of a change set, and its plain deletes, are those of its entries: one zone
/// with a replaced SPF, a replaced CAA of our CA beside another CA's, a new MX beside a
/// new DKIM key, and a retired DKIM key deleted.
#[test]
fn entry_counts_and_plain_deletes_match_the_entries() {
    let old_spf = txt("example.org", "v=spf1 a ~all", 3600);
    let new_spf = txt("example.org", "v=spf1 mx -all", 3600);
    let retired = txt("old._domainkey.example.org", "v=DKIM1; p=BBBB", 3600);
    let current = txt("new._domainkey.example.org", "v=DKIM1; p=CCCC", 3600);
    let want = vec![
        desired(RecordPurpose::Spf, new_spf),
        desired(RecordPurpose::Caa, caa("issue", "letsencrypt.org; x=y")),
        desired(RecordPurpose::Caa, caa("issue", "letsencrypt.org; x=z")),
        desired(RecordPurpose::Mx, mx(10, "mail.example.org")),
        desired(RecordPurpose::Dkim, current),
    ];
    let changes = diff(
        &zone(),
        &want,
        &live(&[
            old_spf,
            caa("issue", "digicert.com"),
            caa("issue", "letsencrypt.org"),
            retired.clone(),
        ]),
        &published_dkim(&retired),
        ALL,
    );
    let entries = changes.entries();
    let count = |f: fn(&PlanEntry) -> bool| entries.iter().filter(|e| f(e)).count();
    let counts = changes.entry_counts();
    assert_eq!(
        (counts.adds, counts.replaces, counts.deletes),
        (
            count(|e| matches!(e, PlanEntry::Add(_))),
            count(|e| matches!(e, PlanEntry::Replace { .. })),
            count(|e| matches!(e, PlanEntry::Delete(..))),
        )
    );
    assert_eq!((counts.adds, counts.replaces, counts.deletes), (2, 2, 1));
    assert!(!counts.is_empty());
    let plain: Vec<&Record> = changes.plain_deletes().collect();
    assert_eq!(plain, vec![&retired]);
    assert!(
        diff(&zone(), &[], &[], &BTreeSet::new(), ALL)
            .entry_counts()
            .is_empty()
    );
}
