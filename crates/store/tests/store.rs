//! Integration tests of the SQLite state database: file modes, persistence, the
//! insert-if-absent contract under races, and that secrets stay out of output.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use mailzone_records::{DkimAlgorithm, DkimStage};
use mailzone_store::{DATABASE_FILE_NAME, Store, StoreError, StoredDkimKey};
use zeroize::Zeroizing;

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE\n-----END PRIVATE KEY-----\n";

fn key(domain: &str, selector: &str, pem: &str, created_at: i64) -> StoredDkimKey {
    StoredDkimKey {
        domain: domain.to_string(),
        selector: selector.to_string(),
        algorithm: DkimAlgorithm::Ed25519Sha256,
        private_key_pem: Zeroizing::new(pem.to_string()),
        stage: DkimStage::Active,
        created_at,
        next_transition: Some(created_at + 86_400),
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn sidecar(db: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

#[tokio::test]
async fn open_creates_private_directory_and_database() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("a/b/state");
    let store = Store::open_sqlite(&state).await.unwrap();

    for dir in [tmp.path().join("a"), tmp.path().join("a/b"), state.clone()] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    let db = state.join(DATABASE_FILE_NAME);
    assert_eq!(store.database_path(), db);
    assert_eq!(mode(&db), 0o600);

    // Write something so the WAL is in use, then check the companions while open.
    store
        .insert_dkim_key_if_absent(&key("example.org", "s1", PEM, 1))
        .await
        .unwrap();
    for suffix in ["-wal", "-shm"] {
        let path = sidecar(&db, suffix);
        assert!(
            path.exists(),
            "WAL mode should keep {} while open",
            path.display()
        );
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    store.close().await;
}

#[tokio::test]
async fn open_restricts_existing_wal_and_shm_files() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    Store::open_sqlite(&state).await.unwrap().close().await;
    let db = state.join(DATABASE_FILE_NAME);
    // Companions left world-readable by someone else must be tightened on open.
    for suffix in ["-wal", "-shm"] {
        let path = sidecar(&db, suffix);
        if !path.exists() {
            fs::write(&path, b"").unwrap();
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let store = Store::open_sqlite(&state).await.unwrap();
    for suffix in ["-wal", "-shm"] {
        let path = sidecar(&db, suffix);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    store.close().await;
}

#[tokio::test]
async fn open_leaves_existing_directory_mode_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    fs::create_dir(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o750)).unwrap();
    let store = Store::open_sqlite(&state).await.unwrap();
    assert_eq!(mode(&state), 0o750);
    assert_eq!(mode(&state.join(DATABASE_FILE_NAME)), 0o600);
    store.close().await;
}

#[tokio::test]
async fn reopening_keeps_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let stored = key("example.org", "202611e", PEM, 1_700_000_000);

    let store = Store::open_sqlite(tmp.path()).await.unwrap();
    store.insert_dkim_key_if_absent(&stored).await.unwrap();
    store.close().await;

    let store = Store::open_sqlite(tmp.path()).await.unwrap();
    assert_eq!(store.dkim_keys("example.org").await.unwrap(), vec![stored]);
    store.close().await;
}

#[tokio::test]
async fn insert_if_absent_keeps_the_existing_key() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(tmp.path()).await.unwrap();
    let first = key("example.org", "s1", "first", 10);
    let mut second = key("example.org", "s1", "second", 20);
    second.algorithm = DkimAlgorithm::RsaSha256;
    second.stage = DkimStage::Pending;
    second.next_transition = None;

    assert_eq!(
        store.insert_dkim_key_if_absent(&first).await.unwrap(),
        first
    );
    assert_eq!(
        store.insert_dkim_key_if_absent(&second).await.unwrap(),
        first
    );
    assert_eq!(store.dkim_keys("example.org").await.unwrap(), vec![first]);
    store.close().await;
}

#[tokio::test]
async fn keys_are_ordered_by_creation_then_selector_per_domain() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(tmp.path()).await.unwrap();
    for (selector, created_at) in [("c", 300), ("b", 100), ("z", 200), ("a", 200)] {
        store
            .insert_dkim_key_if_absent(&key("example.org", selector, PEM, created_at))
            .await
            .unwrap();
    }
    store
        .insert_dkim_key_if_absent(&key("example.net", "a", PEM, 1))
        .await
        .unwrap();

    let selectors: Vec<String> = store
        .dkim_keys("example.org")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.selector)
        .collect();
    assert_eq!(selectors, ["b", "a", "z", "c"]);
    assert!(store.dkim_keys("example.com").await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
async fn unwritable_parent_is_a_clear_error() {
    // Tests run as root, so permissions cannot make creation fail; a regular file in the
    // way can.
    let file = tempfile::NamedTempFile::new().unwrap();
    let state = file.path().join("sub");
    let err = Store::open_sqlite(&state).await.unwrap_err();
    assert!(matches!(err, StoreError::CreateStateDir { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot create state directory {}",
            state.display()
        )),
        "{message}"
    );
    assert!(
        message.contains("choose another state directory"),
        "{message}"
    );
}

#[tokio::test]
async fn state_dir_that_is_a_file_is_a_clear_error() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = Store::open_sqlite(file.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotADirectory { .. }), "{err:?}");
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

#[tokio::test]
async fn debug_does_not_print_the_private_key() {
    let k = key("example.org", "s1", PEM, 1);
    let debug = format!("{k:?} {k:#?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    assert!(!debug.contains("FAKEFAKE"), "{debug}");
    assert!(
        debug.contains("s1") && debug.contains("<redacted>"),
        "{debug}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_agree_on_one_key() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(tmp.path()).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mine = key("example.org", "race", &format!("pem-{i}"), i);
                store.insert_dkim_key_if_absent(&mine).await.unwrap()
            })
        })
        .collect();
    let mut pems = Vec::new();
    for task in tasks {
        pems.push(task.await.unwrap().private_key_pem.to_string());
    }
    assert!(pems.iter().all(|pem| *pem == pems[0]), "{pems:?}");
    let stored = store.dkim_keys("example.org").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(*stored[0].private_key_pem, pems[0]);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_stores_opening_a_new_database_agree_on_one_key() {
    // Like two processes starting at once: each opens (and migrates) the same new database,
    // then races to insert.
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let state = state.clone();
            tokio::spawn(async move {
                let store = Store::open_sqlite(&state).await.unwrap();
                let mine = key("example.org", "race", &format!("pem-{i}"), i);
                let got = store.insert_dkim_key_if_absent(&mine).await.unwrap();
                store.close().await;
                got.private_key_pem.to_string()
            })
        })
        .collect();
    let mut pems = Vec::new();
    for task in tasks {
        pems.push(task.await.unwrap());
    }
    assert!(pems.iter().all(|pem| *pem == pems[0]), "{pems:?}");
}

/// Runs `statements` on the store's database through a connection of its own: damage
/// done behind the store's back.
async fn damage(store: &Store, statements: &[&'static str]) {
    let url = format!("sqlite://{}", store.database_path().display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    for &statement in statements {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    sqlx::Connection::close(conn).await.unwrap();
}

#[tokio::test]
async fn unknown_stage_is_corrupt_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(tmp.path()).await.unwrap();
    store
        .insert_dkim_key_if_absent(&key("example.org", "s1", PEM, 1))
        .await
        .unwrap();

    // Damage the row behind the store's back; the CHECK constraint has to be bypassed.
    damage(
        &store,
        &[
            "PRAGMA ignore_check_constraints = ON",
            "UPDATE dkim_keys SET stage = 'Frozen' WHERE selector = 's1'",
        ],
    )
    .await;

    let err = store.dkim_keys("example.org").await.unwrap_err();
    match &err {
        StoreError::Corrupt {
            domain, selector, ..
        } => assert_eq!((domain.as_str(), selector.as_str()), ("example.org", "s1")),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("`s1`") && message.contains("example.org"),
        "{message}"
    );
    assert!(
        message.contains("Frozen") && !message.contains("PRIVATE KEY"),
        "{message}"
    );
    store.close().await;
}

/// A ledger row damaged behind the store's back (its RDATA, then its owner) is a clear
/// error naming the zone and the name, never a panic or a record read wrong.
#[tokio::test]
async fn an_unreadable_ledger_row_is_corrupt_not_a_panic() {
    use mailzone_records::diff::LedgerEntry;
    use mailzone_records::{Name, RData, RecordPurpose};

    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(tmp.path()).await.unwrap();
    let zone = Name::owner("example.org").unwrap();
    let entry = LedgerEntry {
        purpose: RecordPurpose::Mx,
        name: zone.clone(),
        data: RData::Mx {
            preference: 10,
            exchange: Name::owner("mail.example.org").unwrap(),
        },
    };
    store
        .ledger_add(&zone, std::slice::from_ref(&entry), 1)
        .await
        .unwrap();
    assert_eq!(store.ledger(&zone).await.unwrap(), [entry.clone()].into());
    assert_eq!(
        store.ledgers_of(&[&zone]).await.unwrap()[zone.as_str()],
        [entry].into()
    );

    for (statement, reason) in [
        ("UPDATE published_records SET rdata = '10'", "incomplete"),
        (
            "UPDATE published_records SET rdata = '10 mail.example.org.', name = 'bad name'",
            "bad name",
        ),
        // A field separator of the joined rows the batch read gets (never in a name or
        // presentation RDATA): a field too many there, a bad name one by one.
        (
            "UPDATE published_records SET name = 'example.org' || char(31) || 'x'",
            "",
        ),
    ] {
        damage(&store, &[statement]).await;

        let one = store.ledger(&zone).await.unwrap_err();
        let batch = store.ledgers_of(&[&zone]).await.unwrap_err();
        for err in [one, batch] {
            assert!(
                matches!(&err, StoreError::CorruptLedger { zone, .. } if zone == "example.org"),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(
                message.contains("zone example.org") && message.contains(reason),
                "{message}"
            );
        }
    }
    store.close().await;
}

/// A zone state damaged behind the store's back (its serial no number) is a clear error
/// naming the zone, never a panic or a serial read wrong; a state without the digest of
/// its inputs still reads back as one.
#[tokio::test]
async fn an_unreadable_zone_state_is_corrupt_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(tmp.path()).await.unwrap();
    let zone = mailzone_records::Name::owner("example.org").unwrap();
    let state = mailzone_store::ZoneState {
        serial: 4_000_000_000,
        desired_digest: "d".into(),
        inputs_digest: None,
    };
    store
        .set_zone_state(&zone, "primary", &state, 1)
        .await
        .unwrap();
    let key = ("example.org".to_string(), "primary".to_string());
    let states = store
        .zone_states_of(std::slice::from_ref(&key))
        .await
        .unwrap();
    assert_eq!(states.get(&key), Some(&state));

    damage(&store, &["UPDATE zone_state SET serial = 'twelve'"]).await;
    let err = store.zone_states_of(&[key]).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::CorruptZoneState { zone, .. } if zone == "example.org"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("zone example.org") && message.contains("`twelve` is no number"),
        "{message}"
    );
}

/// Written as JSON and read in a batch, a zone's rows come joined in one text with
/// control characters between them: RDATA holding those very characters, quotes and
/// backslashes is read back whole.
#[tokio::test]
async fn records_holding_the_separators_of_a_batch_read_come_back_whole() {
    use mailzone_records::diff::LedgerEntry;
    use mailzone_records::{Name, RData, RecordPurpose};

    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(tmp.path()).await.unwrap();
    let zone = Name::owner("example.org").unwrap();
    let entries: std::collections::BTreeSet<LedgerEntry> = [
        b"v=spf1 \x1e\x1f -all".to_vec(),
        b"\"quoted\"; \x1f".to_vec(),
        // Escaped in presentation form (a backslash, bytes outside ASCII, NUL), then in
        // the JSON the rows are written as.
        b"back\\slash \xc3\xa9 \x00 \\\"".to_vec(),
    ]
    .into_iter()
    .map(|txt| LedgerEntry {
        purpose: RecordPurpose::Spf,
        name: zone.clone(),
        data: RData::Txt(txt),
    })
    .collect();
    let rows: Vec<LedgerEntry> = entries.iter().cloned().collect();
    store.ledger_add(&zone, &rows, 1).await.unwrap();
    let ledgers = store.ledgers_of(&[&zone]).await.unwrap();
    assert_eq!(ledgers[zone.as_str()], entries);
    store.close().await;
}

#[tokio::test]
async fn non_canonical_names_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(tmp.path()).await.unwrap();
    for (domain, selector) in [
        ("Example.org", "s1"),
        ("example.org.", "s1"),
        ("example.org", "S1"),
        ("example.org", ""),
    ] {
        let err = store
            .insert_dkim_key_if_absent(&key(domain, selector, PEM, 1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidName { .. }), "{err:?}");
    }
    assert!(matches!(
        store.dkim_keys("EXAMPLE.org").await.unwrap_err(),
        StoreError::InvalidName { what: "domain", .. }
    ));
    assert!(store.dkim_keys("example.org").await.unwrap().is_empty());
    store.close().await;
}

/// Private keys are sealed at rest: the database file never holds the PEM, plaintext rows
/// of older versions are sealed on open, and a replaced key file is a clear error.
#[tokio::test]
async fn private_keys_are_sealed_at_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let store = Store::open_sqlite(&state).await.unwrap();
    store
        .insert_dkim_key_if_absent(&key("example.org", "s1", PEM, 1))
        .await
        .unwrap();
    // A row as a version before sealing wrote it.
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", state.join("mailzone.db").display()))
            .await
            .unwrap();
    sqlx::query("INSERT INTO dkim_keys (domain, selector, algorithm, private_key_pem, stage, created_at, next_transition) VALUES ('example.org', 'old', 'ed25519-sha256', ?, 'Active', 2, NULL)")
        .bind(PEM)
        .execute(&pool)
        .await
        .unwrap();
    store.close().await;
    assert_eq!(mode(&state.join(mailzone_store::KEY_FILE_NAME)), 0o600);

    let store = Store::open_sqlite(&state).await.unwrap();
    let keys = store.dkim_keys("example.org").await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.private_key_pem.as_str() == PEM));
    let stored: Vec<String> = sqlx::query_scalar("SELECT private_key_pem FROM dkim_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|v| v.starts_with("sealed:v1:") && !v.contains("PRIVATE")),
        "{stored:?}"
    );
    store.close().await;
    pool.close().await;
    let raw = std::fs::read(state.join("mailzone.db")).unwrap();
    assert!(
        !raw.windows(11).any(|w| w == b"PRIVATE KEY"),
        "a PEM is in the database file"
    );

    // Another key file: the keys do not open, and the error says what to restore.
    std::fs::remove_file(state.join(mailzone_store::KEY_FILE_NAME)).unwrap();
    let store = Store::open_sqlite(&state).await.unwrap();
    let e = store
        .dkim_keys("example.org")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("mailzone.key") && e.contains("restore"), "{e}");
    assert!(!e.contains("PRIVATE"), "{e}");
}

/// The states of a run's zones, for a few zones and for more than one query's worth on two
/// DNS servers: only the pairs asked for, each with its own server's state.
#[tokio::test]
async fn zone_states_of_returns_only_the_zones_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path()).await.unwrap();
    let key = |i: usize, server: &str| (format!("z{i:04}.test"), server.to_string());
    let state = |i: usize, server: &str| mailzone_store::ZoneState {
        serial: i as u32,
        desired_digest: format!("digest {i} on {server}"),
        // Every other state without the digest of its inputs (a state written before it).
        inputs_digest: i.is_multiple_of(2).then(|| format!("inputs {i}")),
    };
    for server in ["primary", "secondary"] {
        let stored = if server == "primary" { 1200 } else { 10 };
        for i in 0..stored {
            let zone = mailzone_records::Name::host(&key(i, server).0).unwrap();
            store
                .set_zone_state(&zone, server, &state(i, server), 1)
                .await
                .unwrap();
        }
    }
    let few = vec![(3, "primary"), (7, "secondary"), (2000, "primary")];
    let many: Vec<(usize, &str)> = (0..1100)
        .map(|i| (i, "primary"))
        .chain((5..20).map(|i| (i, "secondary")))
        .collect();
    for asked in [few, many] {
        let keys: Vec<(String, String)> = asked.iter().map(|&(i, s)| key(i, s)).collect();
        let states = store.zone_states_of(&keys).await.unwrap();
        let known: Vec<(usize, &str)> = asked
            .iter()
            .copied()
            .filter(|&(i, s)| i < if s == "primary" { 1200 } else { 10 })
            .collect();
        assert_eq!(states.len(), known.len(), "{} asked", keys.len());
        for (i, server) in known {
            assert_eq!(
                states.get(&key(i, server)),
                Some(&state(i, server)),
                "{} on {server}",
                key(i, server).0
            );
        }
        assert!(!states.contains_key(&key(1150, "primary")));
    }
    store.close().await;
}

/// A group of zones' writes in one call: intents of several zones (320 rows in one
/// statement), removals, and states (the last state of a zone named twice wins);
/// the ledgers read back per batch match what each zone was given.
#[tokio::test]
async fn the_writes_of_several_zones_land_together_and_read_back_per_zone() {
    use mailzone_records::diff::LedgerEntry;
    use mailzone_records::{Name, RData, RecordPurpose};
    use mailzone_store::{ZoneState, ZoneWrite};

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path()).await.unwrap();
    let zone = |i: usize| Name::host(&format!("z{i:02}.test")).unwrap();
    let entry = |i: usize, j: usize| LedgerEntry {
        purpose: RecordPurpose::Dkim,
        name: Name::host(&format!("r{j}.z{i:02}.test")).unwrap(),
        data: RData::Txt(format!("zone {i} record {j}").into_bytes()),
    };
    let state = |serial: u32| ZoneState {
        serial,
        desired_digest: format!("digest {serial}"),
        inputs_digest: Some(format!("inputs {serial}")),
    };
    // 8 zones × 40 records.
    let adds: Vec<ZoneWrite> = (0..8)
        .map(|i| ZoneWrite::LedgerAdd {
            zone: zone(i),
            entries: (0..40).map(|j| entry(i, j)).collect(),
        })
        .collect();
    store.write_zones(&adds, 5).await.unwrap();
    let mut second = vec![
        ZoneWrite::LedgerRemove {
            zone: zone(0),
            records: (0..10)
                .map(|j| {
                    let e = entry(0, j);
                    mailzone_records::Record {
                        name: e.name,
                        ttl: 3600,
                        data: e.data,
                    }
                })
                .collect(),
        },
        ZoneWrite::State {
            zone: zone(1),
            dns_server: "primary".into(),
            state: state(1),
        },
    ];
    second.push(ZoneWrite::State {
        zone: zone(1),
        dns_server: "primary".into(),
        state: state(2),
    });
    store.write_zones(&second, 6).await.unwrap();

    let names: Vec<Name> = (0..9).map(zone).collect();
    let asked: Vec<&Name> = names.iter().collect();
    let ledgers = store.ledgers_of(&asked).await.unwrap();
    assert_eq!(ledgers.len(), 8, "the zone without records is left out");
    assert_eq!(
        ledgers[zone(0).as_str()].len(),
        30,
        "10 of zone 0's records removed"
    );
    for i in 1..8 {
        let expected: std::collections::BTreeSet<LedgerEntry> =
            (0..40).map(|j| entry(i, j)).collect();
        assert_eq!(ledgers[zone(i).as_str()], expected, "zone {i}");
        assert_eq!(store.ledger(&zone(i)).await.unwrap(), expected);
    }
    let states = store
        .zone_states_of(&[(zone(1).as_str().to_string(), "primary".to_string())])
        .await
        .unwrap();
    assert_eq!(states.values().next(), Some(&state(2)));
}

/// A ledger written under the schema before the ledger became a WITHOUT ROWID table
/// (migrations 1 to 13) is carried over whole by the migration that rebuilds it.
#[tokio::test]
async fn the_ledger_survives_its_rebuild_as_a_keyed_table() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let earlier = tmp.path().join("migrations-1-to-13");
    fs::create_dir_all(&state).unwrap();
    fs::create_dir_all(&earlier).unwrap();
    let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in fs::read_dir(&all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "0014" {
            fs::copy(&path, earlier.join(&name)).unwrap();
        }
    }
    let db = state.join(DATABASE_FILE_NAME);
    let options = SqliteConnectOptions::new()
        .filename(&db)
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(earlier.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let rows = [
        ("example.org", "MX", "10 mail.example.org.", "mx"),
        (
            "_dmarc.example.org",
            "TXT",
            "\"v=DMARC1; p=reject\"",
            "dmarc",
        ),
        ("example.net", "MX", "10 mail.example.org.", "mx"),
    ];
    for (name, rtype, rdata, purpose) in rows {
        let zone = if name.ends_with("example.org") {
            "example.org"
        } else {
            "example.net"
        };
        sqlx::query(
            "INSERT INTO published_records (zone, name, rtype, rdata, record_type, published_at) \
             VALUES (?, ?, ?, ?, ?, 1)",
        )
        .bind(zone)
        .bind(name)
        .bind(rtype)
        .bind(rdata)
        .bind(purpose)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).unwrap();

    let store = Store::open_sqlite(&state).await.unwrap();
    let zone = mailzone_records::Name::owner("example.org").unwrap();
    let shown: BTreeSet<String> = store
        .ledger(&zone)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let rdata = mailzone_records::zonefile::rdata_presentation(&e.data);
            format!("{} {} {rdata}", e.purpose.name(), e.name.as_str())
        })
        .collect();
    let expected: BTreeSet<String> = [
        "mx example.org 10 mail.example.org.",
        "dmarc _dmarc.example.org \"v=DMARC1; p=reject\"",
    ]
    .map(String::from)
    .into();
    assert_eq!(shown, expected);
    store.close().await;

    // The rebuilt table has no rowid any more.
    let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&db))
        .await
        .unwrap();
    let rowid = sqlx::query("SELECT rowid FROM published_records")
        .fetch_all(&pool)
        .await;
    assert!(rowid.is_err(), "a WITHOUT ROWID table: {rowid:?}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM published_records")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 3, "every row carried over");
    pool.close().await;
}
