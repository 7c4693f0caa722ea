//! Group commit of a run's state writes: the zones in flight hand their ledger and
//! zone-state writes to one writer, which commits whatever queued up meanwhile in one
//! transaction of a few multi-row statements. The state database then costs a few round
//! trips to SQLite's worker thread per group of zones, instead of four per zone, and the
//! one connection SQLite writes through stops being what the zones queue behind.

use mailzone_store::{Store, StoreError, ZoneWrite};
use tokio::sync::{mpsc, oneshot};

use crate::EngineError;

/// Writes committed together at most (a group holds at most one write per zone in flight).
const MAX_GROUP: usize = 256;

/// A write waiting for its group's commit.
struct Queued {
    write: ZoneWrite,
    committed: oneshot::Sender<Result<(), StoreError>>,
}

/// Where a run's zones send their writes.
pub(super) struct ZoneWrites {
    queue: mpsc::UnboundedSender<Queued>,
}

impl ZoneWrites {
    /// The queue, and the writer that drains it: a task of its own (the zones of a run
    /// may block a worker thread each), which ends once the queue is dropped and every
    /// queued write is committed.
    pub(super) fn new(store: &Store) -> (ZoneWrites, Writer) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(writer(store.clone(), receiver));
        (ZoneWrites { queue }, Writer { task })
    }

    /// Commits `write` together with what other zones wrote meanwhile; returns once it is
    /// committed (a zone sends its UPDATE only after its intent is in the ledger).
    pub(super) async fn write(&self, write: ZoneWrite) -> Result<(), EngineError> {
        if nothing_to_write(&write) {
            return Ok(());
        }
        let (committed, done) = oneshot::channel();
        // The writer lives as long as the queue (both belong to one run, awaited
        // together): neither end can be gone while a zone writes.
        self.queue
            .send(Queued { write, committed })
            .unwrap_or_else(|_| unreachable!("the writer outlives its queue"));
        let result = done
            .await
            .unwrap_or_else(|_| unreachable!("the writer answers every write it takes"));
        Ok(result?)
    }
}

/// A ledger write without records (an UPDATE that only adds, say).
fn nothing_to_write(write: &ZoneWrite) -> bool {
    match write {
        ZoneWrite::LedgerAdd { entries, .. } => entries.is_empty(),
        ZoneWrite::LedgerRemove { records, .. } => records.is_empty(),
        ZoneWrite::State { .. } => false,
    }
}

/// The writer's task.
pub(super) struct Writer {
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Waits for the writer to end (once its queue is dropped).
    pub(super) async fn finished(self) {
        if let Err(e) = self.task.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// Commits the queued writes group by group: each group is what queued up while the
/// previous one was committed.
async fn writer(store: Store, mut receiver: mpsc::UnboundedReceiver<Queued>) {
    let mut group = Vec::new();
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (writes, answers): (Vec<ZoneWrite>, Vec<_>) = group
            .drain(..)
            .map(|queued| (queued.write, queued.committed))
            .unzip();
        let now = crate::clock::unix_now();
        match store.write_zones(&writes, now).await {
            Ok(()) => {
                for answer in answers {
                    let _ = answer.send(Ok(()));
                }
            }
            Err(e) if writes.len() == 1 => {
                let _ = answers.into_iter().next().map(|answer| answer.send(Err(e)));
            }
            // The group's transaction is rolled back whole: each write again on its own, so
            // that only the zones whose write fails see an error.
            Err(_) => {
                for (write, answer) in writes.iter().zip(answers) {
                    let result = store.write_zones(std::slice::from_ref(write), now).await;
                    let _ = answer.send(result);
                }
            }
        }
    }
}
