//! Group commit of a run's state writes: the zones in flight hand their ledger and
//! zone-state writes to one writer, which commits whatever queued up meanwhile in one
//! transaction of three statements at most. The state database then costs a few round
//! trips to SQLite's worker thread per group of zones, instead of four per zone, and the
//! one connection SQLite writes through stops being what the zones queue behind.
//!
//! Only a zone's ledger intent is waited for (it must be committed before the UPDATE is
//! sent). What a zone writes after its UPDATE is not: its state (the serial and digest it
//! was left in sync at) is a shortcut for the next run, and one lost to a crash costs that
//! run a full read of the zone, never a wrong "in sync" (the state names the serial it
//! vouches for); the ledger rows of the records its UPDATE deleted, lost, leave the ledger
//! naming records the zone no longer holds, as a crash right after the UPDATE always
//! could (the ledger only ever allows a delete; a record not served is not deleted).
//! These writes are kept back until there are [`MAX_LATER`] of them (or the run ends),
//! then ride along with the group of intents at hand: a group of consecutive zones'
//! states and removals shares the database pages it changes (a zone-state page holds a
//! few dozen zones), where riding along with every group wrote the same pages again for
//! each group.

use mailzone_store::{Store, StoreError, ZoneWrite};
use tokio::sync::{mpsc, oneshot};

use crate::EngineError;

/// Writes taken from the queue at a time.
const MAX_GROUP: usize = 256;

/// Writes nobody waits for kept back before they are committed together.
const MAX_LATER: usize = 192;

/// A write on its way to the writer.
enum Queued {
    /// A write its zone waits for.
    Awaited {
        write: ZoneWrite,
        committed: oneshot::Sender<Result<(), StoreError>>,
    },
    /// A write nobody waits for: committed with the next group.
    Later(ZoneWrite),
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
        self.send(Queued::Awaited { write, committed });
        let result = done
            .await
            .unwrap_or_else(|_| unreachable!("the writer answers every write it takes"));
        Ok(result?)
    }

    /// Queues a write no zone waits for (its state; the ledger rows of records its UPDATE
    /// deleted), committed with a later group, at the latest when the run ends; a failure
    /// to commit it is logged, not returned.
    pub(super) fn write_later(&self, write: ZoneWrite) {
        if !nothing_to_write(&write) {
            self.send(Queued::Later(write));
        }
    }

    fn send(&self, queued: Queued) {
        // The writer lives as long as the queue (both belong to one run, awaited
        // together): neither end can be gone while a zone writes.
        self.queue
            .send(queued)
            .unwrap_or_else(|_| unreachable!("the writer outlives its queue"));
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
/// previous one was committed, with the writes nobody waits for kept back until there
/// are [`MAX_LATER`] of them (the rest at the end).
async fn writer(store: Store, mut receiver: mpsc::UnboundedReceiver<Queued>) {
    let mut queued = Vec::new();
    let mut later = Vec::new();
    while receiver.recv_many(&mut queued, MAX_GROUP).await > 0 {
        let mut awaited = Vec::new();
        for write in queued.drain(..) {
            match write {
                Queued::Awaited { write, committed } => awaited.push((write, committed)),
                Queued::Later(write) => later.push(write),
            }
        }
        let due = if later.len() >= MAX_LATER {
            std::mem::take(&mut later)
        } else {
            Vec::new()
        };
        commit(&store, awaited, due).await;
    }
    commit(&store, Vec::new(), later).await;
}

/// Commits `awaited` and `later` in one transaction and answers the awaited writes.
async fn commit(store: &Store, awaited: Vec<Awaited>, later: Vec<ZoneWrite>) {
    // Each write with where its zone waits, if one does.
    let (writes, answers): (Vec<ZoneWrite>, Vec<Option<_>>) = awaited
        .into_iter()
        .map(|(write, answer)| (write, Some(answer)))
        .chain(later.into_iter().map(|write| (write, None)))
        .unzip();
    if writes.is_empty() {
        return;
    }
    let now = crate::clock::unix_now();
    match store.write_zones(&writes, now).await {
        Ok(()) => {
            for answer in answers.into_iter().flatten() {
                let _ = answer.send(Ok(()));
            }
        }
        // The group's transaction is rolled back whole: each write again on its own, so
        // that only the zones whose write fails see an error.
        Err(e) if writes.len() == 1 => {
            answer_or_log(answers.into_iter().flatten().next(), &writes[0], e)
        }
        Err(_) => {
            for (write, answer) in writes.iter().zip(answers) {
                match store.write_zones(std::slice::from_ref(write), now).await {
                    Ok(()) => {
                        let _ = answer.map(|answer| answer.send(Ok(())));
                    }
                    Err(e) => answer_or_log(answer, write, e),
                }
            }
        }
    }
}

/// A write waiting for its commit, and where its zone waits.
type Awaited = (ZoneWrite, oneshot::Sender<Result<(), StoreError>>);

/// Hands a failed write's error to its zone, or logs it when no zone waits for it.
fn answer_or_log(
    answer: Option<oneshot::Sender<Result<(), StoreError>>>,
    write: &ZoneWrite,
    error: StoreError,
) {
    match answer {
        Some(answer) => {
            let _ = answer.send(Err(error));
        }
        None => {
            let (zone, lost) = match write {
                ZoneWrite::State { zone, .. } => (
                    zone,
                    "the zone's state could not be kept; the next run reads the zone again",
                ),
                ZoneWrite::LedgerRemove { zone, .. } => (
                    zone,
                    "the ledger could not forget records the UPDATE deleted; it keeps naming them, and allows deleting them only if served again",
                ),
                ZoneWrite::LedgerAdd { zone, .. } => (zone, "ledger rows could not be written"),
            };
            tracing::warn!(zone = zone.as_str(), error = %error, "{lost}");
        }
    }
}

#[cfg(test)]
mod tests {
    use mailzone_records::diff::LedgerEntry;
    use mailzone_records::{Name, RData, RecordPurpose};
    use mailzone_store::ZoneState;

    use super::*;

    fn zone(i: usize) -> Name {
        Name::host(&format!("z{i}.test")).unwrap()
    }

    fn state_of(zone_at: usize, serial: u32) -> ZoneWrite {
        ZoneWrite::State {
            zone: zone(zone_at),
            dns_server: "primary".into(),
            state: ZoneState {
                serial,
                desired_digest: format!("digest {serial}"),
                inputs_digest: None,
            },
        }
    }

    async fn states_of(store: &Store, zones: usize) -> Vec<Option<u32>> {
        let keys: Vec<(String, String)> = (0..zones)
            .map(|i| (zone(i).as_str().to_string(), "primary".to_string()))
            .collect();
        let states = store.zone_states_of(&keys).await.unwrap();
        keys.iter()
            .map(|key| states.get(key).map(|s| s.serial))
            .collect()
    }

    #[tokio::test]
    async fn a_state_written_later_is_kept_back_past_awaited_writes_until_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path()).await.unwrap();
        let (writes, writer) = ZoneWrites::new(&store);
        writes.write_later(state_of(0, 7));
        // Alone, it is kept back (fewer than a group of states).
        tokio::task::yield_now().await;
        assert_eq!(states_of(&store, 1).await, [None]);
        let intent = ZoneWrite::LedgerAdd {
            zone: zone(1),
            entries: vec![LedgerEntry {
                purpose: RecordPurpose::Dkim,
                name: Name::host("k.z1.test").unwrap(),
                data: RData::Txt(b"v=DKIM1".to_vec()),
            }],
        };
        writes.write(intent).await.unwrap();
        // The intent is committed on its own; the state waits for more of its kind.
        assert_eq!(store.ledger(&zone(1)).await.unwrap().len(), 1);
        assert_eq!(states_of(&store, 1).await, [None]);
        drop(writes);
        writer.finished().await;
        assert_eq!(states_of(&store, 1).await, [Some(7)]);
    }

    #[tokio::test]
    async fn states_written_later_are_committed_in_groups_and_the_rest_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path()).await.unwrap();
        let (writes, writer) = ZoneWrites::new(&store);
        let zones = MAX_LATER + 3;
        for i in 0..MAX_LATER {
            writes.write_later(state_of(i, i as u32));
        }
        // A full group is committed while the run goes on.
        let group: Vec<Option<u32>> = (0..MAX_LATER).map(|i| Some(i as u32)).collect();
        for _ in 0..500 {
            if states_of(&store, MAX_LATER).await == group {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(states_of(&store, MAX_LATER).await, group);
        for i in MAX_LATER..zones {
            writes.write_later(state_of(i, i as u32));
        }
        tokio::task::yield_now().await;
        assert_eq!(
            states_of(&store, zones).await[MAX_LATER..],
            [None, None, None]
        );
        drop(writes);
        writer.finished().await;
        let expected: Vec<Option<u32>> = (0..zones).map(|i| Some(i as u32)).collect();
        assert_eq!(states_of(&store, zones).await, expected);
    }
}
