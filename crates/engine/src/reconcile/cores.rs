//! Both cores for one run: the zones of a run are futures borrowing the run (and the
//! config), so they cannot be spawned as tasks; instead, on a multi-thread runtime, two
//! groups of them are driven at once, one on this worker thread (handed over to
//! blocking with `block_in_place`) and one on a scoped thread, both through the runtime's
//! handle (its I/O and timers stay shared).

use std::future::Future;

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `a` and `b` to completion on two threads when `two_threads` is asked for and the
/// runtime is multi-threaded; otherwise both are awaited on this one, as `join!` does.
pub(super) async fn both<A, B>(two_threads: bool, a: A, b: B) -> (A::Output, B::Output)
where
    A: Future + Send,
    B: Future + Send,
    A::Output: Send,
    B::Output: Send,
{
    let handle = Handle::current();
    if !two_threads || handle.runtime_flavor() != RuntimeFlavor::MultiThread {
        return futures::join!(a, b);
    }
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let other = std::thread::Builder::new()
                .name("mailzone-zones".into())
                .spawn_scoped(scope, || handle.block_on(b))
                .expect("a thread can be started");
            let first = handle.block_on(a);
            let second = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (first, second)
        })
    })
}
