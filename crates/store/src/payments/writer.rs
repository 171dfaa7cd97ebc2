//! Group commit of payments' writes: one task takes the changes waiting in its queue (many
//! checkouts' at once) and writes them in one transaction, so that one disk flush serves
//! them all; each writer hears of its own changes only once they are committed.

use super::PaymentChanges;
use crate::database::Database;
use crate::error::StoreError;
use tokio::sync::{mpsc, oneshot};

/// Most changes written in one transaction.
pub const BATCH_SIZE_MAX: usize = 256;

/// Most changes waiting in the queue; further writers wait for room (back-pressure).
pub const QUEUE_LENGTH_MAX: usize = 4096;

struct Job {
    changes: PaymentChanges,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// Handle to the writer task. Cheap to clone; the task stops when every handle is dropped.
#[derive(Clone, Debug)]
pub struct PaymentWriter {
    database: Database,
    sender: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Job")
            .field("payment_id", &self.changes.payment_id)
            .finish()
    }
}

impl PaymentWriter {
    /// Starts the writer as a task of the current runtime.
    pub fn start(database: Database) -> PaymentWriter {
        let (sender, receiver) = mpsc::channel(QUEUE_LENGTH_MAX);
        tokio::spawn(run(database.clone(), receiver));
        PaymentWriter { database, sender }
    }

    /// Writes `changes` with whatever else is waiting, in one transaction; returns once it
    /// is committed: false when the payment's version check failed (nothing of it written).
    /// When the task is gone (its runtime stopped), the changes are written alone: a batch
    /// the task may have committed before it went is then refused by its version check, or
    /// is found written already (steps and answers are kept as stored).
    pub async fn write(&self, changes: PaymentChanges) -> Result<bool, StoreError> {
        if changes.is_empty() {
            return Ok(true);
        }
        let (reply, answer) = oneshot::channel();
        let job = Job { changes, reply };
        let job = match self.sender.send(job).await {
            Ok(()) => match answer.await {
                Ok(result) => return result,
                Err(_) => None,
            },
            Err(mpsc::error::SendError(job)) => Some(job),
        };
        match job {
            Some(job) => self.database.write_payment_changes(&job.changes).await,
            // Whether the batch was committed is unknown: the request fails, and its retry or
            // recovery finds what was written.
            None => Err(StoreError::Database(sqlx::Error::WorkerCrashed)),
        }
    }
}

async fn run(database: Database, mut receiver: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH_SIZE_MAX);
    while receiver.recv_many(&mut batch, BATCH_SIZE_MAX).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let changes: Vec<&PaymentChanges> = jobs.iter().map(|job| &job.changes).collect();
        match database.write_payment_changes_batch(&changes).await {
            Ok(written) => {
                for (job, written) in jobs.into_iter().zip(written) {
                    let _ = job.reply.send(Ok(written));
                }
            }
            Err(error) if jobs.len() == 1 => {
                if let Some(job) = jobs.into_iter().next() {
                    let _ = job.reply.send(Err(error));
                }
            }
            // One write's failure must not fail the others: each is written alone.
            Err(_) => {
                for job in jobs {
                    let result = database.write_payment_changes(&job.changes).await;
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}
