use mailzone_store::Store;
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probe() {
    let mut fails = 0;
    for _ in 0..50 {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        Store::open_sqlite(&state).await.unwrap().close().await;
        let tasks: Vec<_> = (0..4).map(|_| { let state = state.clone(); tokio::spawn(async move {
            for _ in 0..5 { match Store::open_sqlite(&state).await { Ok(s) => s.close().await, Err(e) => return Err(e.to_string()) } }
            Ok(())
        })}).collect();
        for t in tasks { if let Err(e) = t.await.unwrap() { fails += 1; eprintln!("{e}"); } }
    }
    eprintln!("fails: {fails}");
}
