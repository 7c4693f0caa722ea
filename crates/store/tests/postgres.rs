//! The store on a real PostgreSQL (a throwaway cluster from the test kit): the same
//! behaviour as on SQLite, and tasks claimed by many workers at once are each claimed once.

use std::collections::HashMap;

use mailzone_store::{NewTask, Store, StoredDkimKey, TaskChange, TaskEnd, TaskFilter, TaskStatus};
use mailzone_testkit::{POSTGRES_TOOLS, Postgres, require_tools};
use zeroize::Zeroizing;

fn cluster() -> Option<Postgres> {
    if !require_tools(POSTGRES_TOOLS) {
        return None;
    }
    Some(Postgres::start().expect("postgres starts"))
}

fn task(domain: &str) -> NewTask {
    NewTask {
        kind: "DnsManagement".into(),
        domain: domain.into(),
        update_records: vec![],
        on_success_renew_certificate: false,
        due_at: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_claim_each_task_exactly_once() {
    let Some(pg) = cluster() else { return };
    let state = tempfile::tempdir().unwrap();
    // Two "instances": two stores (pools) on the same database.
    let a = Store::open_postgres(&pg.url, state.path()).await.unwrap();
    let b = Store::open_postgres(&pg.url, state.path()).await.unwrap();
    assert!(a.is_shared());
    for i in 0..200 {
        a.create_task(&task(&format!("d{i:03}.example")), 0)
            .await
            .unwrap();
    }
    let mut workers = Vec::new();
    for w in 0..8 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        workers.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            let mut claimed = Vec::new();
            while let Some(t) = store.claim_task(&owner, 10, 1_000).await.unwrap() {
                let end = TaskEnd::Succeeded {
                    result: "ok".into(),
                };
                assert!(store.finish_task(&t.id, &owner, &end, 11).await.unwrap());
                claimed.push(t.id);
            }
            claimed
        }));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for w in workers {
        for id in w.await.unwrap() {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 200, "every task was claimed");
    assert!(seen.values().all(|&n| n == 1), "a task was claimed twice");
    let done = a.tasks(Some(TaskStatus::Succeeded), 1000).await.unwrap();
    assert_eq!(done.len(), 200);
    assert!(done.iter().all(|t| t.attempts == 1));
}

#[tokio::test]
async fn leases_tokens_ledger_and_sealed_keys_work_on_postgres() {
    let Some(pg) = cluster() else { return };
    let state = tempfile::tempdir().unwrap();
    let store = Store::open_postgres(&pg.url, state.path()).await.unwrap();
    let t = store.create_task(&task("example.org"), 0).await.unwrap();
    assert_eq!(
        store.create_task(&task("example.org"), 1).await.unwrap().id,
        t.id
    );
    store.claim_task("dead", 0, 30).await.unwrap().unwrap();
    let taken = store.claim_task("alive", 31, 60).await.unwrap().unwrap();
    assert_eq!((taken.id.as_str(), taken.attempts), (t.id.as_str(), 2));
    assert!(!store.renew_task(&t.id, "dead", 90, "x", 32).await.unwrap());
    store.release_task(&t.id, "alive", 40).await.unwrap();
    let back = store.task(&t.id).await.unwrap().unwrap();
    assert_eq!((back.status, back.attempts), (TaskStatus::Scheduled, 1));
    assert_eq!(
        store.task_counts().await.unwrap(),
        vec![(TaskStatus::Scheduled, 1)]
    );

    store.add_api_token("admin", "h1", 0).await.unwrap();
    assert_eq!(
        store.api_token_name("h1").await.unwrap().as_deref(),
        Some("admin")
    );
    assert_eq!(store.api_token_count().await.unwrap(), 1);

    // The web UI's admin password and sessions: replaced, expired when idle, ended with
    // the token that opened them.
    store
        .set_admin_password_hash("$argon2id$a", 1)
        .await
        .unwrap();
    store
        .set_admin_password_hash("$argon2id$b", 2)
        .await
        .unwrap();
    let hash = store.admin_password_hash().await.unwrap();
    assert_eq!(hash.as_deref(), Some("$argon2id$b"));
    let token_id = store.add_api_token("ui", "h2", 0).await.unwrap();
    let subject = mailzone_store::token_subject(&token_id);
    store
        .add_web_session("s1", &subject, "token ui", 100)
        .await
        .unwrap();
    store
        .add_web_session("s2", "admin", "admin", 100)
        .await
        .unwrap();
    let session = store.touch_web_session("s1", 50, 200).await.unwrap();
    assert_eq!(session.map(|s| s.label).as_deref(), Some("token ui"));
    assert!(
        store
            .touch_web_session("s2", 150, 300)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.revoke_api_token(&token_id).await.unwrap());
    assert!(
        store
            .touch_web_session("s1", 0, 300)
            .await
            .unwrap()
            .is_none()
    );

    let key = StoredDkimKey {
        domain: "example.org".into(),
        selector: "s1".into(),
        algorithm: mailzone_records::DkimAlgorithm::Ed25519Sha256,
        private_key_pem: Zeroizing::new(
            "-----BEGIN PRIVATE KEY-----\nX\n-----END PRIVATE KEY-----\n".into(),
        ),
        stage: mailzone_records::DkimStage::Active,
        created_at: 1,
        next_transition: None,
    };
    let stored = store.insert_dkim_key_if_absent(&key).await.unwrap();
    assert_eq!(stored.private_key_pem, key.private_key_pem);
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let raw: String = sqlx::query_scalar("SELECT private_key_pem FROM dkim_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(raw.starts_with("sealed:v1:"), "{raw}");

    let zone = mailzone_records::Name::owner("example.org").unwrap();
    let entry = mailzone_records::diff::LedgerEntry {
        purpose: mailzone_records::RecordPurpose::Mx,
        name: zone.clone(),
        data: mailzone_records::RData::Mx {
            preference: 10,
            exchange: mailzone_records::Name::owner("mail.example.org").unwrap(),
        },
    };
    store
        .ledger_add(&zone, std::slice::from_ref(&entry), 5)
        .await
        .unwrap();
    assert!(store.ledger(&zone).await.unwrap().contains(&entry));
    // Read in a batch, a zone's rows come joined in one text (string_agg here).
    let txt = mailzone_records::diff::LedgerEntry {
        purpose: mailzone_records::RecordPurpose::Spf,
        name: zone.clone(),
        data: mailzone_records::RData::Txt(b"v=spf1 mx \"-all\" \x1e\x1f \\ \xc3\xa9".to_vec()),
    };
    store
        .ledger_add(&zone, std::slice::from_ref(&txt), 5)
        .await
        .unwrap();
    let ledgers = store.ledgers_of(&[&zone]).await.unwrap();
    assert_eq!(ledgers.len(), 1);
    assert_eq!(ledgers[zone.as_str()], [entry.clone(), txt.clone()].into());
    let state_row = mailzone_store::ZoneState {
        serial: 7,
        desired_digest: "d".into(),
        inputs_digest: Some("i".into()),
    };
    store
        .set_zone_state(&zone, "primary", &state_row, 5)
        .await
        .unwrap();
    let states = store.zone_states().await.unwrap();
    assert_eq!(
        states.get(&(zone.as_str().to_string(), "primary".to_string())),
        Some(&state_row)
    );
    let asked = [
        (zone.as_str().to_string(), "primary".to_string()),
        (zone.as_str().to_string(), "secondary".to_string()),
        ("absent.test".to_string(), "primary".to_string()),
    ];
    let states = store.zone_states_of(&asked).await.unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(states.get(&asked[0]), Some(&state_row));

    // A group of writes as a run commits them: the removal matched by row values, and a
    // zone's two states in one upsert (PostgreSQL refuses a row touched twice) — the last wins.
    let newer = mailzone_store::ZoneState {
        serial: 8,
        desired_digest: "e".into(),
        inputs_digest: None,
    };
    let group = [
        mailzone_store::ZoneWrite::LedgerRemove {
            zone: zone.clone(),
            records: vec![mailzone_records::Record {
                name: entry.name.clone(),
                ttl: 300,
                data: entry.data.clone(),
            }],
        },
        mailzone_store::ZoneWrite::State {
            zone: zone.clone(),
            dns_server: "primary".into(),
            state: state_row.clone(),
        },
        mailzone_store::ZoneWrite::State {
            zone: zone.clone(),
            dns_server: "primary".into(),
            state: newer.clone(),
        },
    ];
    store.write_zones(&group, 6).await.unwrap();
    assert_eq!(store.ledger(&zone).await.unwrap(), [txt].into());
    let states = store.zone_states_of(&asked[..1]).await.unwrap();
    assert_eq!(states.get(&asked[0]), Some(&newer));
}

/// Two instances seeing the same change of findings: each channel's announcement is
/// claimed by exactly one of them, and a given-back claim can be taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn announced_findings_are_claimed_once_across_instances() {
    let Some(pg) = cluster() else { return };
    let state = tempfile::tempdir().unwrap();
    let a = Store::open_postgres(&pg.url, state.path()).await.unwrap();
    let b = Store::open_postgres(&pg.url, state.path()).await.unwrap();
    for (previous, new) in [(None, "[1]"), (Some("[1]"), "[2]")] {
        let (won_a, won_b) = tokio::join!(
            a.swap_announced_findings("example.org", "webhook", previous, Some(new), 1),
            b.swap_announced_findings("example.org", "webhook", previous, Some(new), 1),
        );
        assert!(
            won_a.unwrap() ^ won_b.unwrap(),
            "exactly one instance claims {new}"
        );
    }
    // Given back after a failed delivery, then claimed again.
    assert!(
        b.swap_announced_findings("example.org", "webhook", Some("[2]"), Some("[1]"), 2)
            .await
            .unwrap()
    );
    assert!(
        a.swap_announced_findings("example.org", "webhook", Some("[1]"), Some("[2]"), 3)
            .await
            .unwrap()
    );
    let stored = b
        .announced_findings("example.org", "webhook")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.findings.as_str(), stored.checked_at), ("[2]", 3));
}

/// Cancel, reschedule and the filtered task page on PostgreSQL (its CHECK constraint
/// takes `Cancelled`; its untyped NULL parameters compare as text).
#[tokio::test]
async fn tasks_are_cancelled_rescheduled_and_paged_on_postgres() {
    let Some(pg) = cluster() else { return };
    let state = tempfile::tempdir().unwrap();
    let store = Store::open_postgres(&pg.url, state.path()).await.unwrap();
    let a = store.create_task(&task("a.test"), 0).await.unwrap();
    let b = store.create_task(&task("b.test"), 1).await.unwrap();
    let TaskChange::Changed(cancelled) = store.cancel_task(&a.id, 2).await.unwrap() else {
        panic!("not cancelled")
    };
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    let TaskChange::Changed(moved) = store.reschedule_task(&b.id, 500, 3).await.unwrap() else {
        panic!("not rescheduled")
    };
    assert_eq!(moved.due_at, 500);
    assert_eq!(store.claim_task("w", 499, 600).await.unwrap(), None);
    let running = store.claim_task("w", 500, 600).await.unwrap().unwrap();
    assert_eq!(running.id, b.id);
    assert!(matches!(
        store.cancel_task(&b.id, 501).await.unwrap(),
        TaskChange::Refused(_)
    ));

    let all = store
        .task_page(&TaskFilter::default(), 10, 0)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        [b.id.as_str(), a.id.as_str()]
    );
    let filter = TaskFilter {
        domain: Some("a.test".into()),
        kind: Some("DnsManagement".into()),
        statuses: vec![TaskStatus::Cancelled],
    };
    let page = store.task_page(&filter, 10, 0).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(store.task_page(&filter, 10, 1).await.unwrap().len(), 0);
}
