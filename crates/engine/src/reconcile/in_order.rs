//! A run's zone results put back in plan order: the zones of a run finish in any order on
//! two threads, while its report (and the caller's sink, writing 100,000 zones as they
//! come) takes them in the order they were planned. A result waits here until every zone
//! before it has finished, and the zones still to start wait until the results waiting
//! here are fewer than a window, so that one slow zone (a propagation timeout) holds back
//! a bounded number of results, never a run's worth.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// Where the results go, one at a time and in order.
pub(super) trait Release<T> {
    fn release(&mut self, at: usize, item: T);
}

/// Results by position, released in order to `R`.
pub(super) struct InOrder<T, R> {
    waiting: Mutex<Waiting<T, R>>,
    /// How many results were released (the position of the next one).
    released: watch::Sender<usize>,
    /// At most this many positions past the next one to release may be started.
    window: usize,
}

struct Waiting<T, R> {
    next: usize,
    early: BTreeMap<usize, T>,
    to: R,
}

impl<T, R: Release<T>> InOrder<T, R> {
    pub(super) fn new(window: usize, to: R) -> Self {
        InOrder {
            waiting: Mutex::new(Waiting {
                next: 0,
                early: BTreeMap::new(),
                to,
            }),
            released: watch::Sender::new(0),
            window: window.max(1),
        }
    }

    /// The result at position `at`: released now with those after it that were waiting
    /// for it, or kept until the results before it come. Released under the lock, so
    /// that two threads' releases never interleave out of order.
    pub(super) fn put(&self, at: usize, item: T) {
        let mut waiting = self
            .waiting
            .lock()
            .expect("the results lock is never poisoned");
        let waiting = &mut *waiting;
        waiting.early.insert(at, item);
        let before = waiting.next;
        while let Some(item) = waiting.early.remove(&waiting.next) {
            waiting.to.release(waiting.next, item);
            waiting.next += 1;
        }
        if waiting.next != before {
            self.released.send_replace(waiting.next);
        }
    }

    /// Waits until position `at` is within the window of the next result to release.
    pub(super) async fn room_for(&self, at: usize) {
        let window = self.window;
        let mut released = self.released.subscribe();
        // The sender lives in `self`, borrowed for the whole wait: it cannot close.
        let _ = released.wait_for(|next| at < next + window).await;
    }

    /// Where the results went, once every result was put.
    pub(super) fn finish(self) -> R {
        let waiting = self
            .waiting
            .into_inner()
            .expect("the results lock is never poisoned");
        debug_assert!(waiting.early.is_empty(), "a result was never released");
        waiting.to
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    impl Release<char> for Vec<(usize, char)> {
        fn release(&mut self, at: usize, item: char) {
            self.push((at, item));
        }
    }

    #[test]
    fn results_come_out_in_plan_order_whatever_order_they_finish_in() {
        let results = InOrder::new(8, Vec::new());
        results.put(2, 'c');
        results.put(1, 'b');
        assert!(
            results.waiting.lock().unwrap().to.is_empty(),
            "0 is not there yet"
        );
        results.put(0, 'a');
        results.put(4, 'e');
        results.put(3, 'd');
        assert_eq!(
            results.finish(),
            vec![(0, 'a'), (1, 'b'), (2, 'c'), (3, 'd'), (4, 'e')]
        );
    }

    #[tokio::test]
    async fn a_slow_result_holds_back_the_start_of_those_past_the_window() {
        let results = InOrder::new(2, Vec::new());
        results.room_for(1).await;
        results.put(1, 'b');
        let third = tokio::time::timeout(Duration::from_millis(50), results.room_for(2)).await;
        assert!(
            third.is_err(),
            "position 2 may not start while 0 is unfinished"
        );
        results.put(0, 'a');
        tokio::time::timeout(Duration::from_secs(5), results.room_for(3))
            .await
            .expect("0 and 1 released: 2 and 3 may start");
        assert_eq!(results.finish(), vec![(0, 'a'), (1, 'b')]);
    }
}
