//! Tasks and leases on a real SQLite database in a temporary state directory.

use mailzone_store::{NewTask, Store, TaskChange, TaskEnd, TaskFilter, TaskStatus};

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

/// The task a change produced, failing the test on any other outcome.
fn changed(change: TaskChange) -> mailzone_store::Task {
    match change {
        TaskChange::Changed(task) => task,
        other => panic!("expected a change, got {other:?}"),
    }
}

#[tokio::test]
async fn a_cancelled_task_is_never_claimed_and_a_running_one_cannot_be_cancelled() {
    let (_dir, store) = store().await;
    let waiting = store.create_task(&task("a.test", 10), 0).await.unwrap();
    let cancelled = changed(store.cancel_task(&waiting.id, 5).await.unwrap());
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert_eq!(cancelled.updated_at, 5);
    assert_eq!(store.claim_task("w", 1_000, 2_000).await.unwrap(), None);
    // Cancelled twice: refused, unchanged.
    match store.cancel_task(&waiting.id, 6).await.unwrap() {
        TaskChange::Refused(t) => assert_eq!(t.updated_at, 5),
        other => panic!("{other:?}"),
    }
    // A new task for the same domain is not swallowed by the cancelled one.
    let again = store.create_task(&task("a.test", 10), 20).await.unwrap();
    assert_ne!(again.id, waiting.id);

    let running = store.claim_task("w", 1_000, 2_000).await.unwrap().unwrap();
    assert_eq!(running.id, again.id);
    match store.cancel_task(&running.id, 1_001).await.unwrap() {
        TaskChange::Refused(t) => assert_eq!(t.status, TaskStatus::Running),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.cancel_task("nope", 1).await.unwrap(),
        TaskChange::NotFound
    );
    let counts = store.task_counts().await.unwrap();
    assert!(counts.contains(&(TaskStatus::Cancelled, 1)), "{counts:?}");
}

#[tokio::test]
async fn a_retry_task_can_be_cancelled_too() {
    let (_dir, store) = store().await;
    let t = store.create_task(&task("r.test", 0), 0).await.unwrap();
    store.claim_task("w", 1, 100).await.unwrap().unwrap();
    let retry = TaskEnd::Retry {
        due_at: 50,
        reason: "unreachable".into(),
    };
    assert!(store.finish_task(&t.id, "w", &retry, 2).await.unwrap());
    let cancelled = changed(store.cancel_task(&t.id, 3).await.unwrap());
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert_eq!(store.claim_task("w", 60, 200).await.unwrap(), None);
}

#[tokio::test]
async fn rescheduling_moves_the_due_time_and_brings_a_failed_task_back() {
    let (_dir, store) = store().await;
    let t = store.create_task(&task("s.test", 100), 0).await.unwrap();
    let later = changed(store.reschedule_task(&t.id, 500, 1).await.unwrap());
    assert_eq!((later.status, later.due_at), (TaskStatus::Scheduled, 500));
    assert_eq!(store.claim_task("w", 499, 1_000).await.unwrap(), None);
    let now = changed(store.reschedule_task(&t.id, 10, 2).await.unwrap());
    assert_eq!(now.due_at, 10);

    // Failed: Scheduled again, attempts reset.
    store.claim_task("w", 10, 100).await.unwrap().unwrap();
    let failed = TaskEnd::Failed {
        reason: "BADSIG".into(),
    };
    assert!(store.finish_task(&t.id, "w", &failed, 11).await.unwrap());
    let back = changed(store.reschedule_task(&t.id, 30, 12).await.unwrap());
    assert_eq!(
        (back.status, back.attempts, back.due_at),
        (TaskStatus::Scheduled, 0, 30)
    );
    // Running: refused.
    store.claim_task("w", 30, 100).await.unwrap().unwrap();
    match store.reschedule_task(&t.id, 40, 31).await.unwrap() {
        TaskChange::Refused(t) => assert_eq!((t.status, t.due_at), (TaskStatus::Running, 30)),
        other => panic!("{other:?}"),
    }
    // Succeeded: refused.
    let done = TaskEnd::Succeeded {
        result: "ok".into(),
    };
    assert!(store.finish_task(&t.id, "w", &done, 32).await.unwrap());
    assert!(matches!(
        store.reschedule_task(&t.id, 40, 33).await.unwrap(),
        TaskChange::Refused(_)
    ));
}

#[tokio::test]
async fn a_task_page_is_filtered_and_newest_first() {
    let (_dir, store) = store().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let domain = if i % 2 == 0 { "even.test" } else { "odd.test" };
        let new = NewTask {
            kind: if i == 6 {
                "DkimRotation"
            } else {
                "DnsManagement"
            }
            .into(),
            ..task(domain, 1_000 + i)
        };
        // Distinct types so that no waiting task stands for another.
        let new = NewTask {
            update_records: vec![format!("t{i}")],
            ..new
        };
        ids.push(store.create_task(&new, i).await.unwrap().id);
    }
    let all = TaskFilter::default();
    let first = store.task_page(&all, 3, 0).await.unwrap();
    let second = store.task_page(&all, 3, 3).await.unwrap();
    let last = store.task_page(&all, 3, 6).await.unwrap();
    let order: Vec<String> = [first, second, last]
        .into_iter()
        .flatten()
        .map(|t| t.id)
        .collect();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(order, newest_first);

    let even = TaskFilter {
        domain: Some("even.test".into()),
        ..TaskFilter::default()
    };
    assert_eq!(store.task_page(&even, 10, 0).await.unwrap().len(), 4);
    let rotation = TaskFilter {
        kind: Some("DkimRotation".into()),
        ..TaskFilter::default()
    };
    let page = store.task_page(&rotation, 10, 0).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, ids[6]);

    store.cancel_task(&ids[0], 10).await.unwrap();
    let cancelled = TaskFilter {
        statuses: vec![TaskStatus::Cancelled],
        ..TaskFilter::default()
    };
    let page = store.task_page(&cancelled, 10, 0).await.unwrap();
    assert_eq!(page.iter().map(|t| &t.id).collect::<Vec<_>>(), [&ids[0]]);
    let waiting = TaskFilter {
        statuses: vec![TaskStatus::Scheduled, TaskStatus::Retry],
        domain: Some("even.test".into()),
        ..TaskFilter::default()
    };
    assert_eq!(store.task_page(&waiting, 10, 0).await.unwrap().len(), 3);
}

/// Tasks made within one second (`created_at` counts seconds) still come newest first: a
/// task that failed, then the one a user started right after it, twenty times over.
#[tokio::test]
async fn the_newest_task_of_one_second_is_the_last_one_made() {
    let (_dir, store) = store().await;
    for round in 0..20 {
        let made = store.create_task(&task("a.example", 10), 10).await.unwrap();
        let claimed = store.claim_task("w", 10, 100).await.unwrap().unwrap();
        assert_eq!(claimed.id, made.id);
        let end = TaskEnd::Failed {
            reason: format!("round {round}"),
        };
        assert!(store.finish_task(&made.id, "w", &end, 10).await.unwrap());
        let newest = store.newest_task_per_domain().await.unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].id, made.id, "round {round}");
    }
}
