//! Room in a run's queue of prepared zones. The planning thread takes it a step of zones
//! at a time and a reconciling thread gives it back a zone at a time, so that the planning
//! thread, once ahead, is woken once a step instead of once for every zone taken (each
//! wake-up costs both threads a context switch).

use tokio::sync::Semaphore;

/// Room for `capacity` queued zones, taken [`STEP`] zones at a time.
pub(super) struct Room {
    free: Semaphore,
}

/// Zones taken at a time by a [`Taker`].
const STEP: u32 = 16;

impl Room {
    pub(super) fn new(capacity: usize) -> Room {
        // Less room than a step could never be taken.
        assert!(
            capacity >= STEP as usize,
            "room for at least one step of zones"
        );
        Room {
            free: Semaphore::new(capacity),
        }
    }

    /// One hand-over's taker: the room it took and did not use goes back when it is
    /// dropped (kept, it would be lost to every later hand-over).
    pub(super) fn taker(&self) -> Taker<'_> {
        Taker {
            room: self,
            held: 0,
        }
    }

    /// A queued zone was taken off the queue: its room is free again.
    pub(super) fn give_back(&self) {
        self.free.add_permits(1);
    }

    /// Closes the room when the calling thread unwinds (a reconciling thread that
    /// panicked gives nothing back): a taker waiting for room is then told so.
    pub(super) fn closed_on_panic(&self) -> ClosedOnPanic<'_> {
        ClosedOnPanic(self)
    }
}

/// Takes room zone by zone, [`STEP`] at a time from the [`Room`].
pub(super) struct Taker<'r> {
    room: &'r Room,
    held: u32,
}

impl Taker<'_> {
    /// Room for one more zone; `false` once the room is closed.
    pub(super) async fn one(&mut self) -> bool {
        if self.held == 0 {
            let Ok(step) = self.room.free.acquire_many(STEP).await else {
                return false;
            };
            step.forget();
            self.held = STEP;
        }
        self.held -= 1;
        true
    }
}

impl Drop for Taker<'_> {
    fn drop(&mut self) {
        self.room.free.add_permits(self.held as usize);
    }
}

/// See [`Room::closed_on_panic`].
pub(super) struct ClosedOnPanic<'r>(&'r Room);

impl Drop for ClosedOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.free.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Whether `taker` gets room for one more zone without waiting.
    async fn takes_now(taker: &mut Taker<'_>) -> bool {
        tokio::time::timeout(Duration::from_millis(20), taker.one())
            .await
            .is_ok_and(|taken| taken)
    }

    #[tokio::test]
    async fn room_left_unused_by_a_hand_over_goes_back() {
        let room = Room::new(2 * STEP as usize);
        for _ in 0..100 {
            // Each hand-over queues three zones, and they are taken off the queue.
            let mut taker = room.taker();
            for _ in 0..3 {
                assert!(
                    takes_now(&mut taker).await,
                    "room for the hand-over's zones"
                );
            }
            drop(taker);
            for _ in 0..3 {
                room.give_back();
            }
        }
        assert_eq!(room.free.available_permits(), 2 * STEP as usize);
    }

    #[tokio::test]
    async fn a_full_queue_waits_for_a_step_of_room() {
        let room = Room::new(2 * STEP as usize);
        let mut taker = room.taker();
        for _ in 0..2 * STEP {
            assert!(takes_now(&mut taker).await);
        }
        assert!(!takes_now(&mut taker).await, "the queue is full");
        for _ in 0..STEP - 1 {
            room.give_back();
        }
        assert!(!takes_now(&mut taker).await, "less than a step is free");
        room.give_back();
        assert!(takes_now(&mut taker).await, "a step is free");
    }

    #[tokio::test]
    async fn a_panicking_consumer_closes_the_room() {
        let room = std::sync::Arc::new(Room::new(STEP as usize));
        let mut taker = room.taker();
        for _ in 0..STEP {
            assert!(taker.one().await);
        }
        let consumer = room.clone();
        let panicked = std::thread::spawn(move || {
            let _closed = consumer.closed_on_panic();
            panic!("a reconciling thread fails");
        })
        .join();
        assert!(panicked.is_err());
        assert!(!taker.one().await, "told that no room will come");
    }
}
