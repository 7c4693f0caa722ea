//! `serve` with many domains: the drift schedule in slices (the service's own schedule loop
//! over a real store), the cursor following a changed config, tasks scheduled in batches
//! on SQLite and on a real PostgreSQL exactly as one by one, old ended tasks pruned, and
//! the domain, task and DKIM key lists paged with `X-Total-Count` and RFC 8288 `Link`.

use std::path::Path;
use std::time::{Duration, Instant};

use mailzone_engine::tasks::{DRIFT_SLICE, DriftCursor, DriftPlan, schedule_all};
use mailzone_server::AppState;
use mailzone_server::auth::{new_token, token_hash};
use mailzone_store::{NewTask, Store, TaskEnd, TaskFilter, TaskStatus};
use mailzone_testkit::{POSTGRES_TOOLS, Postgres, require_tools};
use serde_json::Value;
use tokio::sync::watch;

/// A config of `n` domains `d00000.example.test`, …: those whose index `automatic` accepts
/// publish through an RFC 2136 server nobody asks (no worker runs in these tests), the
/// others are manual. DKIM keys are automatic ed25519 ones everywhere.
fn config(n: usize, automatic: impl Fn(usize) -> bool) -> String {
    let mut text = String::from(
        "[server]\nhostname = \"mail.example.test\"\nipv4 = [\"192.0.2.10\"]\n\n\
         [dnsServer.primary]\nkind = \"rfc2136\"\nhost = \"127.0.0.1\"\nport = 9\n\n",
    );
    for i in 0..n {
        text.push_str(&format!("[domain.\"{}\"]\n", name(i)));
        if automatic(i) {
            text.push_str("dnsManagement = { automatic = { dnsServer = \"primary\" } }\n");
        }
        text.push_str("dkimManagement = { automatic = { algorithms = [\"ed25519-sha256\"] } }\n\n");
    }
    text
}

fn name(i: usize) -> String {
    format!("d{i:05}.example.test")
}

/// The service's state over a config of `text` in `dir`.
async fn state(dir: &Path, text: &str) -> AppState {
    let path = dir.join("mailzone.toml");
    std::fs::write(&path, text).unwrap();
    let state_dir = dir.join("state");
    let store = Store::open_sqlite(&state_dir).await.unwrap();
    let loaded = mailzone_engine::load_config_from(&path, &store)
        .await
        .unwrap();
    AppState::new(store, loaded, path, state_dir)
}

fn of_kind(kind: &str) -> TaskFilter {
    TaskFilter {
        kind: Some(kind.to_string()),
        ..TaskFilter::default()
    }
}

/// The distinct numbers of `DnsManagement` tasks seen while the drift schedule runs, until
/// `until` of them exist or `timeout` passes.
async fn watch_drift(store: &Store, until: u64, timeout: Duration) -> Vec<u64> {
    let started = Instant::now();
    let mut seen = vec![0];
    while started.elapsed() < timeout {
        let n = store.task_count(&of_kind("DnsManagement")).await.unwrap();
        if seen.last() != Some(&n) {
            seen.push(n);
        }
        if n >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

#[test]
fn the_plan_spreads_the_domains_evenly_over_the_interval() {
    let hour = Duration::from_secs(3600);
    let plan = DriftPlan::new(100_000, hour);
    assert_eq!(plan.slices, 200);
    assert_eq!(plan.size, DRIFT_SLICE);
    assert_eq!(plan.tick, Duration::from_secs(18));
    // 1,200 domains: three slices of 400, not 500 + 500 + 200.
    let plan = DriftPlan::new(1_200, hour);
    assert_eq!((plan.slices, plan.size), (3, 400));
    assert_eq!(plan.tick, Duration::from_secs(1200));
    // A small config: one slice, the whole config once per interval (as before slices).
    assert_eq!(
        DriftPlan::new(3, hour),
        DriftPlan {
            slices: 1,
            size: 3,
            tick: hour
        }
    );
    assert_eq!(DriftPlan::new(0, hour).slices, 1);
}

/// How many tasks of `state`'s store match `filter`.
async fn tasks(state: &AppState, filter: &TaskFilter) -> u64 {
    state.store.task_count(filter).await.unwrap()
}

/// The service's drift schedule, running until stopped.
struct Drift {
    stop: watch::Sender<bool>,
    running: tokio::task::JoinHandle<()>,
}

impl Drift {
    fn start(state: &AppState, interval: Duration) -> Drift {
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(mailzone_server::runner::drift_schedule(
            state.clone(),
            interval,
            stopped,
        ));
        Drift { stop, running }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.running.await.unwrap();
    }
}

/// The service's drift loop over 1,200 domains with a 3-second interval: a slice of 400
/// domains every second, never more at once, every domain scheduled once; the next round
/// finds the waiting tasks and adds none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drift_schedule_goes_over_the_domains_in_slices() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), &config(1_200, |_| true)).await;
    let drift = Drift::start(&state, Duration::from_secs(3));
    let seen = watch_drift(&state.store, 1_200, Duration::from_secs(30)).await;
    assert_eq!(seen, vec![0, 400, 800, 1_200], "tasks seen over time");
    // Each domain once: a DnsManagement and a DkimRotation task each.
    let page = state
        .store
        .task_page(&of_kind("DnsManagement"), 2_000, 0)
        .await
        .unwrap();
    let mut domains: Vec<String> = page.iter().map(|t| t.domain.clone()).collect();
    domains.sort();
    domains.dedup();
    assert_eq!(domains, (0..1_200).map(name).collect::<Vec<_>>());
    assert_eq!(tasks(&state, &of_kind("DkimRotation")).await, 1_200);
    // The next round: every domain still has its task waiting, so nothing is added.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(tasks(&state, &TaskFilter::default()).await, 2_400);
    let metrics = state.metrics.render(&state.store).await;
    assert!(
        metrics.contains("mailzone_drift_tasks_total")
            && !metrics.contains("mailzone_drift_slice_seconds_count 0\n"),
        "{metrics}"
    );
    drift.stop().await;
}

/// A config of a few domains is one slice: all of them within the first interval, at once.
#[tokio::test]
async fn a_small_config_is_scheduled_whole_every_interval() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), &config(3, |i| i != 1)).await;
    let drift = Drift::start(&state, Duration::from_secs(1));
    let seen = watch_drift(&state.store, 2, Duration::from_secs(10)).await;
    assert_eq!(seen, vec![0, 2], "both automatic domains in one slice");
    drift.stop().await;
}

/// The cursor goes round the list slice by slice, wraps, and after a config change
/// resumes after the last domain it scheduled, wherever that domain now is.
#[tokio::test]
async fn the_cursor_resumes_after_the_last_domain_scheduled() {
    let dir = tempfile::tempdir().unwrap();
    // Every third domain manual: the slices cover domains, the tasks only automatic ones.
    let first = state(dir.path(), &config(10, |i| i % 3 != 0)).await;
    let loaded = first.loaded();
    let mut cursor = DriftCursor::default();
    let slice = cursor
        .schedule_next(&first.store, &loaded, 4)
        .await
        .unwrap();
    assert_eq!((slice.domains, slice.wrapped), (0..4, false));
    // d1 and d2: a DkimRotation and a DnsManagement task each; d0 and d3 are manual
    // (their keys are published by hand, so nothing rotates them either).
    assert_eq!(slice.tasks, 4);
    // The config changes: two domains before the cursor go away.
    let dir2 = tempfile::tempdir().unwrap();
    let text = config(10, |i| i % 3 != 0).replace(
        "[domain.\"d00000.example.test\"]\ndkimManagement = { automatic = { algorithms = [\"ed25519-sha256\"] } }\n\n",
        "",
    );
    let text = text.replace(
        "[domain.\"d00001.example.test\"]\ndnsManagement = { automatic = { dnsServer = \"primary\" } }\ndkimManagement = { automatic = { algorithms = [\"ed25519-sha256\"] } }\n\n",
        "",
    );
    let second = state(dir2.path(), &text).await;
    let changed = second.loaded();
    assert_eq!(changed.config.domains.len(), 8);
    let slice = cursor
        .schedule_next(&first.store, &changed, 4)
        .await
        .unwrap();
    // d00004.. is now at index 2: nothing skipped, nothing scheduled twice.
    assert_eq!(
        changed.config.domains[slice.domains.start].name.as_str(),
        "d00004.example.test"
    );
    assert_eq!((slice.domains, slice.wrapped), (2..6, false));
    let slice = cursor
        .schedule_next(&first.store, &changed, 4)
        .await
        .unwrap();
    assert_eq!((slice.domains, slice.wrapped), (6..8, true));
    let slice = cursor
        .schedule_next(&first.store, &changed, 4)
        .await
        .unwrap();
    assert_eq!(slice.domains, 0..4, "round two starts over");
}

/// Start and reload schedule every domain, slice by slice, and count what stands.
#[tokio::test]
async fn schedule_all_covers_every_domain_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), &config(1_100, |i| i % 2 == 0)).await;
    let loaded = state.loaded();
    // 550 automatic domains (DnsManagement + DkimRotation), 550 manual (nothing).
    assert_eq!(schedule_all(&state.store, &loaded).await.unwrap(), 1_100);
    // Again: the same tasks stand, none is added.
    assert_eq!(schedule_all(&state.store, &loaded).await.unwrap(), 1_100);
    assert_eq!(tasks(&state, &TaskFilter::default()).await, 1_100);
    // The list of tasks of the old one-by-one schedule: the same tasks.
    let listed = mailzone_engine::tasks::schedule_automatic(&state.store, &loaded)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1_100);
    assert_eq!(listed[0].kind, "DkimRotation");
    assert_eq!(listed[1].kind, "DnsManagement");
    assert_eq!(listed[1].domain, name(0));
    assert_eq!(listed[2].domain, name(2));
}

fn task(domain: &str, kind: &str, due_at: i64) -> NewTask {
    NewTask {
        kind: kind.into(),
        domain: domain.into(),
        update_records: vec![],
        on_success_renew_certificate: false,
        due_at,
    }
}

/// The batch schedule against `store`: what stands for each task is what `schedule_task`
/// one by one would return.
async fn batch_schedule_matches_one_by_one(store: &Store) {
    let owner = "worker";
    let scheduled = TaskFilter {
        statuses: vec![TaskStatus::Scheduled],
        ..TaskFilter::default()
    };
    let waiting_before = store.task_count(&scheduled).await.unwrap();
    // a: waiting; b: running; c: retrying, due later; d: ended; e: nothing yet.
    let a = store
        .schedule_task(&task("a.test", "DnsManagement", 10), 1)
        .await
        .unwrap();
    let b = store
        .schedule_task(&task("b.test", "DnsManagement", 0), 1)
        .await
        .unwrap();
    let claimed = store.claim_task(owner, 2, 1_000).await.unwrap().unwrap();
    assert_eq!(claimed.id, b.id);
    let c = store
        .schedule_task(&task("c.test", "DnsManagement", 0), 2)
        .await
        .unwrap();
    let claimed = store.claim_task(owner, 3, 1_000).await.unwrap().unwrap();
    assert_eq!(claimed.id, c.id);
    let retry = TaskEnd::Retry {
        due_at: 500,
        reason: "unreachable".into(),
    };
    assert!(store.finish_task(&c.id, owner, &retry, 4).await.unwrap());
    let d = store
        .schedule_task(&task("d.test", "DnsManagement", 0), 2)
        .await
        .unwrap();
    assert!(matches!(
        store.cancel_task(&d.id, 5).await.unwrap(),
        mailzone_store::TaskChange::Changed(_)
    ));
    let asked = vec![
        task("a.test", "DnsManagement", 20),
        task("b.test", "DnsManagement", 20),
        task("c.test", "DnsManagement", 20),
        task("d.test", "DnsManagement", 20),
        task("e.test", "DnsManagement", 20),
        task("e.test", "DnsManagement", 15),
        task("a.test", "DkimRotation", 20),
    ];
    let got = store.schedule_tasks(&asked, 6).await.unwrap();
    assert_eq!(got.len(), asked.len());
    assert_eq!(got[0].id, a.id, "a waiting task stands");
    assert_eq!(got[0].due_at, 10, "due sooner than asked: unchanged");
    assert_eq!(got[1].id, b.id, "a running task stands");
    assert_eq!(got[1].status, TaskStatus::Running);
    assert_eq!(got[2].id, c.id, "a retrying task stands");
    assert_eq!(
        (got[2].status, got[2].due_at),
        (TaskStatus::Retry, 20),
        "and comes forward"
    );
    assert_ne!(got[3].id, d.id, "an ended task does not stand");
    assert_eq!(got[3].status, TaskStatus::Scheduled);
    assert_eq!(got[4].id, got[5].id, "asked twice: one task");
    assert_eq!(got[4].due_at, 15, "due at the earlier time asked");
    assert_eq!(
        (got[6].domain.as_str(), got[6].kind.as_str()),
        ("a.test", "DkimRotation")
    );
    // One by one now gives the same tasks.
    for (new, batched) in asked.iter().zip(&got) {
        let one = store.schedule_task(new, 7).await.unwrap();
        assert_eq!(one.id, batched.id, "{} {}", new.domain, new.kind);
    }
    // More than a batch: 1,234 domains in three transactions, each task once.
    let many: Vec<NewTask> = (0..1_234)
        .map(|i| task(&name(i), "DnsManagement", 30))
        .collect();
    let first = store.schedule_tasks(&many, 8).await.unwrap();
    let again = store.schedule_tasks(&many, 9).await.unwrap();
    assert_eq!(
        first.iter().map(|t| &t.id).collect::<Vec<_>>(),
        again.iter().map(|t| &t.id).collect::<Vec<_>>()
    );
    // a, d (new), e, a's DkimRotation, and the 1,234.
    assert_eq!(
        store.task_count(&scheduled).await.unwrap() - waiting_before,
        4 + 1_234
    );
}

#[tokio::test]
async fn batch_schedule_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("state")).await.unwrap();
    batch_schedule_matches_one_by_one(&store).await;
    store.close().await;
}

/// The batch schedule and the pruning on a real PostgreSQL, and two instances scheduling
/// the same domains at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_schedule_and_prune_on_postgres() {
    if !require_tools(POSTGRES_TOOLS) {
        return;
    }
    let pg = Postgres::start().expect("postgres starts");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_postgres(&pg.url, dir.path()).await.unwrap();
    prune_keeps_the_newest_and_the_recent(&store).await;
    batch_schedule_matches_one_by_one(&store).await;
    // Two instances scheduling the same domains at once: each task made once.
    let other = Store::open_postgres(&pg.url, dir.path()).await.unwrap();
    let many: Vec<NewTask> = (0..800)
        .map(|i| task(&format!("x{i}.test"), "DnsManagement", 0))
        .collect();
    let (x, y) = tokio::join!(
        store.schedule_tasks(&many, 10),
        other.schedule_tasks(&many, 10)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(
        x.iter().map(|t| &t.id).collect::<Vec<_>>(),
        y.iter().map(|t| &t.id).collect::<Vec<_>>()
    );
    store.close().await;
    other.close().await;
}

/// Ended tasks older than their cut-off (Succeeded and Cancelled, Failed) go, except each
/// domain and kind's newest; waiting and recent ones stay.
async fn prune_keeps_the_newest_and_the_recent(store: &Store) {
    let owner = "w";
    let mut ended = Vec::new();
    // Three runs of p.test one after the other, ended at 100, 200 and 300.
    for at in [100, 200, 300] {
        let t = store
            .create_task(&task("p.test", "DnsManagement", at), at)
            .await
            .unwrap();
        let claimed = store.claim_task(owner, at, at + 50).await.unwrap().unwrap();
        assert_eq!(claimed.id, t.id);
        let end = TaskEnd::Succeeded {
            result: "in sync".into(),
        };
        assert!(store.finish_task(&t.id, owner, &end, at).await.unwrap());
        ended.push(t.id);
    }
    // One old failed run of q.test: its newest, kept.
    let q = store
        .create_task(&task("q.test", "DnsManagement", 50), 50)
        .await
        .unwrap();
    store.claim_task(owner, 50, 60).await.unwrap().unwrap();
    let failed = TaskEnd::Failed {
        reason: "refused".into(),
    };
    assert!(store.finish_task(&q.id, owner, &failed, 50).await.unwrap());
    // Cut-off 250: p's runs at 100 and 200 go, the one at 300 stays; q stays.
    assert_eq!(store.prune_tasks(250, 250).await.unwrap(), 2);
    assert!(store.task(&ended[0]).await.unwrap().is_none());
    assert!(store.task(&ended[1]).await.unwrap().is_none());
    assert!(store.task(&ended[2]).await.unwrap().is_some());
    assert!(store.task(&q.id).await.unwrap().is_some());
    // r.test: a run failed at 100, a newer one waiting since 150. A failed run has its own
    // cut-off (it explains a problem).
    let r_failed = store
        .create_task(&task("r.test", "DnsManagement", 100), 100)
        .await
        .unwrap();
    let claimed = store.claim_task(owner, 100, 160).await.unwrap().unwrap();
    assert_eq!(claimed.id, r_failed.id);
    assert!(
        store
            .finish_task(&r_failed.id, owner, &failed, 100)
            .await
            .unwrap()
    );
    let r_next = store
        .create_task(&task("r.test", "DnsManagement", 150), 150)
        .await
        .unwrap();
    assert_eq!(store.prune_tasks(250, 50).await.unwrap(), 0);
    assert_eq!(store.prune_tasks(250, 150).await.unwrap(), 1);
    assert!(store.task(&r_failed.id).await.unwrap().is_none());
    // Nothing else to prune: the waiting and the newest stay, however old.
    assert_eq!(store.prune_tasks(i64::MAX, i64::MAX).await.unwrap(), 0);
    assert!(store.task(&r_next.id).await.unwrap().is_some());
}

#[tokio::test]
async fn old_ended_tasks_are_pruned_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("state")).await.unwrap();
    prune_keeps_the_newest_and_the_recent(&store).await;
    store.close().await;
}

/// The API of `state` on a free loopback port: its base URL and a token.
async fn serve_api(state: AppState) -> (String, String) {
    let token = new_token();
    state
        .store
        .add_api_token("test", &token_hash(&token), 1_795_651_200)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = mailzone_server::api::router(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), token)
}

/// GET `path`: the JSON array, `X-Total-Count` and the `next` link.
async fn page(base: &str, token: &str, path: &str) -> (Vec<Value>, u64, Option<String>) {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let total = header("x-total-count")
        .expect("X-Total-Count")
        .parse()
        .unwrap();
    let next = header("link").and_then(|link| {
        link.split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .map(|l| l[1..l.find('>').unwrap()].to_string())
    });
    let body: Value = response.json().await.unwrap();
    (body.as_array().expect("a JSON array").clone(), total, next)
}

/// Follows the `next` links from `first`: every item of every page, and the page count.
async fn follow(base: &str, token: &str, first: &str) -> (Vec<Value>, u64, usize) {
    let (mut items, total, mut next) = page(base, token, first).await;
    let mut pages = 1;
    while let Some(path) = next {
        let (more, t, n) = page(base, token, &path).await;
        assert_eq!(t, total);
        items.extend(more);
        next = n;
        pages += 1;
    }
    (items, total, pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lists_are_paged_with_their_total_and_next_link() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), &config(250, |i| i < 7)).await;
    // Keys for the first five domains (ed25519: made at once).
    let loaded = state.loaded();
    let request = mailzone_engine::RecordsRequest {
        domains: (0..5).map(name).collect(),
        types: vec![],
        state_dir: state.state_dir.clone(),
        now_unix: 1_795_651_200,
        store: Some(state.store.clone()),
    };
    mailzone_engine::records(&loaded, &request).await.unwrap();
    schedule_all(&state.store, &loaded).await.unwrap();
    let (base, token) = serve_api(state.clone()).await;

    // Domains: the whole list without a limit (as before), pages of 100 with one.
    let (all, total, next) = page(&base, &token, "/api/v1/domains").await;
    assert_eq!((all.len(), total, next), (250, 250, None));
    let (paged, total, pages) = follow(&base, &token, "/api/v1/domains?limit=100").await;
    assert_eq!((total, pages), (250, 3));
    assert_eq!(paged, all, "the pages together are the list");
    let (last, _, next) = page(&base, &token, "/api/v1/domains?offset=200&limit=100").await;
    assert_eq!((last.len(), next), (50, None));

    // Tasks: 14 (7 automatic domains); pages of 5, the filter kept in the links.
    let (tasks, total, pages) = follow(&base, &token, "/api/v1/tasks?limit=5").await;
    assert_eq!((tasks.len(), total, pages), (14, 14, 3));
    let mut ids: Vec<&str> = tasks.iter().map(|t| t["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 14, "no task on two pages");
    let (rotations, total, pages) =
        follow(&base, &token, "/api/v1/tasks?type=DkimRotation&limit=3").await;
    assert_eq!((rotations.len(), total, pages), (7, 7, 3));
    assert!(rotations.iter().all(|t| t["type"] == "DkimRotation"));
    let (one, total, _) = page(&base, &token, "/api/v1/tasks?domain=d00003.example.test").await;
    assert_eq!((one.len(), total), (2, 2));

    // DKIM keys: five, in pages of two, the same as the whole list.
    let (keys, total, next) = page(&base, &token, "/api/v1/dkimSignatures").await;
    assert_eq!((keys.len(), total, next), (5, 5, None));
    let (paged, total, pages) = follow(&base, &token, "/api/v1/dkimSignatures?limit=2").await;
    assert_eq!((total, pages), (5, 3));
    assert_eq!(paged, keys);
}
