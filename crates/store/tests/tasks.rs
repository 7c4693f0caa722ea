//! Tasks and leases on a real SQLite database in a temporary state directory.

use mailzone_store::{NewTask, Store, TaskEnd, TaskStatus};

fn task(domain: &str, due_at: i64) -> NewTask {
    NewTask {
        kind: "DnsManagement".into(),
        domain: domain.into(),
        update_records: vec![],
        on_success_renew_certificate: false,
        due_at,
    }
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("state")).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_task_is_claimed_once_and_only_when_due() {
    let (_dir, store) = store().await;
    let t = store
        .create_task(&task("example.org", 100), 50)
        .await
        .unwrap();
    assert_eq!(t.status, TaskStatus::Scheduled);
    assert_eq!(
        store.claim_task("a", 99, 200).await.unwrap(),
        None,
        "not due yet"
    );
    let claimed = store.claim_task("a", 100, 200).await.unwrap().unwrap();
    assert_eq!(
        (claimed.id.as_str(), claimed.status),
        (t.id.as_str(), TaskStatus::Running)
    );
    assert_eq!(claimed.attempts, 1);
    assert_eq!(
        store.claim_task("b", 150, 300).await.unwrap(),
        None,
        "leased to a"
    );
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_worker_is_shut_out() {
    let (_dir, store) = store().await;
    let t = store.create_task(&task("example.org", 0), 0).await.unwrap();
    store.claim_task("dead", 0, 30).await.unwrap().unwrap();
    let taken = store.claim_task("alive", 31, 60).await.unwrap().unwrap();
    assert_eq!(taken.id, t.id);
    assert_eq!(taken.lease_owner.as_deref(), Some("alive"));
    assert_eq!(taken.attempts, 2);
    // The first worker comes back: it can neither renew nor finish.
    assert!(!store.renew_task(&t.id, "dead", 90, "x", 32).await.unwrap());
    let end = TaskEnd::Succeeded {
        result: "done".into(),
    };
    assert!(!store.finish_task(&t.id, "dead", &end, 32).await.unwrap());
    assert!(
        store
            .renew_task(&t.id, "alive", 90, "reading", 33)
            .await
            .unwrap()
    );
    assert!(store.finish_task(&t.id, "alive", &end, 34).await.unwrap());
    let done = store.task(&t.id).await.unwrap().unwrap();
    assert_eq!(done.status, TaskStatus::Succeeded);
    assert_eq!(done.result.as_deref(), Some("done"));
    assert_eq!(done.lease_owner, None);
}

#[tokio::test]
async fn retry_and_failure_then_manual_retry() {
    let (_dir, store) = store().await;
    let t = store.create_task(&task("example.org", 0), 0).await.unwrap();
    store.claim_task("w", 0, 30).await.unwrap().unwrap();
    let retry = TaskEnd::Retry {
        due_at: 60,
        reason: "timeout".into(),
    };
    assert!(store.finish_task(&t.id, "w", &retry, 1).await.unwrap());
    let waiting = store.task(&t.id).await.unwrap().unwrap();
    assert_eq!((waiting.status, waiting.due_at), (TaskStatus::Retry, 60));
    assert_eq!(store.claim_task("w", 59, 90).await.unwrap(), None);
    store.claim_task("w", 60, 90).await.unwrap().unwrap();
    let failed = TaskEnd::Failed {
        reason: "BADSIG".into(),
    };
    assert!(store.finish_task(&t.id, "w", &failed, 61).await.unwrap());
    let f = store.task(&t.id).await.unwrap().unwrap();
    assert_eq!(
        (f.status, f.failure_reason.as_deref(), f.attempts),
        (TaskStatus::Failed, Some("BADSIG"), 2)
    );
    let again = store.retry_task(&t.id, 70).await.unwrap().unwrap();
    assert_eq!(
        (again.status, again.attempts, again.due_at),
        (TaskStatus::Scheduled, 0, 70)
    );
    assert_eq!(store.retry_task("nope", 70).await.unwrap(), None);
}

#[tokio::test]
async fn a_waiting_task_is_not_scheduled_twice() {
    let (_dir, store) = store().await;
    let a = store.create_task(&task("example.org", 0), 0).await.unwrap();
    let b = store.create_task(&task("example.org", 0), 1).await.unwrap();
    assert_eq!(a.id, b.id);
    let c = store.create_task(&task("example.net", 0), 1).await.unwrap();
    assert_ne!(a.id, c.id);
    assert_eq!(store.tasks(None, 10).await.unwrap().len(), 2);
    assert_eq!(
        store
            .tasks(Some(TaskStatus::Failed), 10)
            .await
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn a_forced_renewal_is_not_merged_into_a_waiting_task_without_it() {
    let (_dir, store) = store().await;
    let plain = store.create_task(&task("example.org", 0), 0).await.unwrap();
    let forced = NewTask {
        on_success_renew_certificate: true,
        ..task("example.org", 0)
    };
    let with_renewal = store.create_task(&forced, 1).await.unwrap();
    assert_ne!(plain.id, with_renewal.id);
    assert!(with_renewal.on_success_renew_certificate);
    assert_eq!(
        store.create_task(&forced, 2).await.unwrap().id,
        with_renewal.id
    );
}

#[tokio::test]
async fn a_sooner_request_brings_a_waiting_task_forward() {
    let (_dir, store) = store().await;
    let later = store
        .create_task(&task("example.org", 500), 0)
        .await
        .unwrap();
    assert_eq!(later.due_at, 500);
    let sooner = store
        .create_task(&task("example.org", 10), 1)
        .await
        .unwrap();
    assert_eq!((sooner.id.as_str(), sooner.due_at), (later.id.as_str(), 10));
    // A later request leaves it as it is.
    let again = store
        .create_task(&task("example.org", 900), 2)
        .await
        .unwrap();
    assert_eq!(again.due_at, 10);
}

#[tokio::test]
async fn graceful_release_does_not_count_the_attempt() {
    let (_dir, store) = store().await;
    let t = store.create_task(&task("example.org", 0), 0).await.unwrap();
    store.claim_task("w", 0, 30).await.unwrap().unwrap();
    store.release_task(&t.id, "w", 5).await.unwrap();
    let back = store.task(&t.id).await.unwrap().unwrap();
    assert_eq!(
        (back.status, back.attempts, back.lease_owner),
        (TaskStatus::Scheduled, 0, None)
    );
}

#[tokio::test]
async fn api_tokens_are_found_by_hash() {
    let (_dir, store) = store().await;
    assert_eq!(store.api_token_count().await.unwrap(), 0);
    store.add_api_token("admin", "abc123", 0).await.unwrap();
    assert_eq!(
        store.api_token_name("abc123").await.unwrap().as_deref(),
        Some("admin")
    );
    assert_eq!(store.api_token_name("abc124").await.unwrap(), None);
    assert_eq!(store.api_token_count().await.unwrap(), 1);
}

#[tokio::test]
async fn the_schedule_joins_a_running_task_a_change_queues_behind_it() {
    let (_dir, store) = store().await;
    let t = store
        .schedule_task(&task("example.org", 0), 0)
        .await
        .unwrap();
    store.claim_task("w", 0, 100).await.unwrap().unwrap();
    assert_eq!(
        store
            .schedule_task(&task("example.org", 0), 1)
            .await
            .unwrap()
            .id,
        t.id
    );
    assert_ne!(
        store
            .create_task(&task("example.org", 0), 1)
            .await
            .unwrap()
            .id,
        t.id
    );
}

#[tokio::test]
async fn the_newest_task_of_each_domain_comes_in_one_list() {
    let (_dir, store) = store().await;
    store.create_task(&task("a.example", 0), 10).await.unwrap();
    let finished = store.claim_task("w", 10, 100).await.unwrap().unwrap();
    let end = TaskEnd::Failed {
        reason: "boom".into(),
    };
    assert!(
        store
            .finish_task(&finished.id, "w", &end, 11)
            .await
            .unwrap()
    );
    let newer = store.create_task(&task("a.example", 20), 20).await.unwrap();
    let other = store.create_task(&task("b.example", 0), 5).await.unwrap();
    let mut newest = store.newest_task_per_domain().await.unwrap();
    newest.sort_by(|x, y| x.domain.cmp(&y.domain));
    let ids: Vec<(&str, &str)> = newest
        .iter()
        .map(|t| (t.domain.as_str(), t.id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("a.example", newer.id.as_str()),
            ("b.example", other.id.as_str())
        ]
    );
}
