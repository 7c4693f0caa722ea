//! Delegated DKIM in the service's schedule: a domain whose keys live in a provider's zone
//! (`delegateTo`) gets its `DkimRotation` task even under manual DNS management, because
//! mailzone publishes its keys itself; without delegation such a domain gets none.

use mailzone_engine::load_config;
use mailzone_engine::tasks::{DKIM_ROTATION, schedule_automatic};
use mailzone_store::Store;

#[tokio::test]
async fn delegated_keys_rotate_by_themselves_under_manual_dns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailzone.toml");
    std::fs::write(
        &path,
        r#"
[server]
hostname = "mail.provider.test"
ipv4 = ["192.0.2.10"]

[dnsServer.provider]
kind = "rfc2136"
host = "127.0.0.1"

[domain."delegated.test"]
dkimManagement = { automatic = { delegateTo = "dkim.provider.test", delegateDnsServer = "provider" } }

[domain."manual.test"]
"#,
    )
    .unwrap();
    let loaded = load_config(&path).unwrap();
    let store = Store::open_sqlite(&dir.path().join("state")).await.unwrap();
    let tasks = schedule_automatic(&store, &loaded).await.unwrap();
    let scheduled: Vec<(String, String)> = tasks
        .iter()
        .map(|t| (t.kind.clone(), t.domain.clone()))
        .collect();
    assert_eq!(
        scheduled,
        vec![(DKIM_ROTATION.to_string(), "delegated.test".to_string())]
    );
    store.close().await;
}
