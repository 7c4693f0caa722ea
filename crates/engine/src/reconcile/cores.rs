//! Both cores for one run: the zones of a run are futures borrowing the run (and the
//! config), so they cannot be spawned as tasks; instead, on a multi-thread runtime, two
//! groups of them are driven at once, one on this worker thread (handed over to
//! blocking with `block_in_place`) and one on a scoped thread, both through the runtime's
//! handle (its I/O and timers stay shared). `both` nests: called again inside `b`, it
//! drives three groups on three threads.

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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Sends to the next side, then waits (blocking its thread) to hear from the one
    /// before: whether it heard, and the thread it ran on.
    async fn side(to: mpsc::Sender<()>, from: mpsc::Receiver<()>) -> (bool, std::thread::ThreadId) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        to.send(()).unwrap();
        let heard = from.recv_timeout(Duration::from_secs(5)).is_ok();
        (heard, std::thread::current().id())
    }

    /// Each side blocks its thread until it hears from the other: on one thread the first
    /// side gives up waiting (the other has not run yet).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_multi_thread_runtime_both_run_at_once_and_may_await_timers() {
        let (to_b, from_a) = mpsc::channel();
        let (to_a, from_b) = mpsc::channel();
        let ((a_heard, a), (b_heard, b)) = both(true, side(to_b, from_b), side(to_a, from_a)).await;
        assert!(a_heard && b_heard, "the two sides did not run at once");
        assert_ne!(a, b);
    }

    /// Nested, three sides run at once on three threads (each waits to hear from another;
    /// on two threads the third side would run after one of the others, on its thread).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nested_they_run_on_three_threads_at_once() {
        let (to_b, from_a) = mpsc::channel();
        let (to_c, from_b) = mpsc::channel();
        let (to_a, from_c) = mpsc::channel();
        let ((a_heard, a), ((b_heard, b), (c_heard, c))) = both(
            true,
            side(to_b, from_c),
            both(true, side(to_c, from_a), side(to_a, from_b)),
        )
        .await;
        assert!(
            a_heard && b_heard && c_heard,
            "the three sides did not run at once"
        );
        assert!(a != b && b != c && a != c);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn not_asked_for_they_share_the_caller_thread() {
        let here = || async { std::thread::current().id() };
        let (a, b) = both(false, here(), here()).await;
        assert_eq!(a, b);
    }

    #[tokio::test]
    async fn on_a_current_thread_runtime_they_are_joined() {
        let here = || async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            std::thread::current().id()
        };
        let (a, b) = both(true, here(), here()).await;
        assert_eq!(a, b);
    }
}
