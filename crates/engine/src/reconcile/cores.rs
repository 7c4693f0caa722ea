//! Both cores for one run: the zones of a run are futures borrowing the run (and the
//! config), so they cannot be spawned as tasks; instead, on a multi-thread runtime, two
//! groups of them are driven at once, one on this worker thread (handed over to blocking
//! with `block_in_place`) and one on a scoped thread, each on a current-thread runtime of
//! its own, while a third thread plans through the shared runtime's handle.

use std::future::Future;

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs the two reconciling sides `a` and `b` and the planning side `plan` of a run, on
/// three threads when `two_threads` is asked for and the runtime is multi-threaded
/// (otherwise all three are awaited on this one, as `join!` does). Each reconciling side
/// drives its own current-thread runtime: the DNS connections it opens are registered
/// there, so an answer wakes the thread awaiting it directly, instead of a worker of the
/// shared runtime that then wakes it (two context switches per DNS message). The planning
/// side, which talks to the state database, stays on the shared runtime.
pub(super) async fn spread<A, B, P>(
    two_threads: bool,
    a: A,
    b: B,
    plan: P,
) -> (A::Output, B::Output, P::Output)
where
    A: Future + Send,
    B: Future + Send,
    P: Future + Send,
    A::Output: Send,
    B::Output: Send,
    P::Output: Send,
{
    let handle = Handle::current();
    if !two_threads || handle.runtime_flavor() != RuntimeFlavor::MultiThread {
        return futures::join!(a, b, plan);
    }
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let spawn = |name: &str| std::thread::Builder::new().name(name.into());
            let other = spawn("mailzone-zones")
                .spawn_scoped(scope, || own_runtime().block_on(b))
                .expect("a thread can be started");
            let planning = spawn("mailzone-plan")
                .spawn_scoped(scope, || handle.block_on(plan))
                .expect("a thread can be started");
            let first = own_runtime().block_on(a);
            (first, joined(other), joined(planning))
        })
    })
}

/// A scoped thread's result, its panic carried on to this one.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A current-thread runtime with I/O and timers, for one thread's zones.
fn own_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime can be built (an epoll instance and a timer)")
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// What a side saw: whether it heard from the side before it, its thread, and the
    /// flavour of the runtime driving it.
    type Seen = (bool, std::thread::ThreadId, RuntimeFlavor);

    /// Awaits a timer, sends to the next side, then waits (blocking its thread) to hear
    /// from the one before.
    async fn side(to: mpsc::Sender<()>, from: mpsc::Receiver<()>) -> Seen {
        tokio::time::sleep(Duration::from_millis(5)).await;
        to.send(()).unwrap();
        let heard = from.recv_timeout(Duration::from_secs(5)).is_ok();
        let flavor = Handle::current().runtime_flavor();
        (heard, std::thread::current().id(), flavor)
    }

    /// Each side blocks its thread until it hears from another: on fewer than three
    /// threads one of them would give up waiting. The reconciling sides drive runtimes of
    /// their own, the planning side the shared one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_multi_thread_runtime_the_three_sides_run_at_once() {
        let (to_b, from_a) = mpsc::channel();
        let (to_c, from_b) = mpsc::channel();
        let (to_a, from_c) = mpsc::channel();
        let (a, b, c) = spread(
            true,
            side(to_b, from_c),
            side(to_c, from_a),
            side(to_a, from_b),
        )
        .await;
        assert!(a.0 && b.0 && c.0, "the three sides did not run at once");
        assert!(a.1 != b.1 && b.1 != c.1 && a.1 != c.1);
        assert_eq!(a.2, RuntimeFlavor::CurrentThread);
        assert_eq!(b.2, RuntimeFlavor::CurrentThread);
        assert_eq!(c.2, RuntimeFlavor::MultiThread);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn not_asked_for_they_share_the_caller_thread() {
        let here = || async { std::thread::current().id() };
        let (a, b, c) = spread(false, here(), here(), here()).await;
        assert!(a == b && b == c);
    }

    #[tokio::test]
    async fn on_a_current_thread_runtime_they_are_joined() {
        let here = || async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            std::thread::current().id()
        };
        let (a, b, c) = spread(true, here(), here(), here()).await;
        assert!(a == b && b == c);
    }
}
