//! Group commit of credit operations' writes: one task takes the writes waiting in its queue
//! (many checkouts' operations and completions at once) and commits them in one transaction,
//! so that one disk flush serves them all; each writer hears its own outcome only once it is
//! committed. Without it every credit operation cost two durable commits of its own, each
//! holding SQLite's single write lock for a flush.

use super::{CreditWrite, OperationWritten};
use crate::database::Database;
use crate::error::StoreError;
use tokio::sync::{mpsc, oneshot};

/// Most writes committed in one transaction.
pub const BATCH_SIZE_MAX: usize = 256;

/// Most writes waiting in the queue; further writers wait for room (back-pressure).
pub const QUEUE_LENGTH_MAX: usize = 4096;

struct Job {
    write: CreditWrite,
    reply: oneshot::Sender<Result<OperationWritten, StoreError>>,
}

/// Handle to the writer task. Cheap to clone; the task stops when every handle is dropped.
#[derive(Clone, Debug)]
pub struct CreditWriter {
    database: Database,
    sender: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Job")
            .field("key", &self.write.key())
            .finish()
    }
}

impl CreditWriter {
    /// Starts the writer as a task of the current runtime.
    pub fn start(database: Database) -> CreditWriter {
        let (sender, receiver) = mpsc::channel(QUEUE_LENGTH_MAX);
        tokio::spawn(run(database.clone(), receiver));
        CreditWriter { database, sender }
    }

    /// Writes `write` with whatever else is waiting, in one transaction, and returns once it
    /// is committed, with what [`Database::write_credit_operation`] would have answered.
    /// When the task is gone (its runtime stopped), the write is made alone: one the task
    /// may have committed before it went is then refused by its version check or its key.
    pub async fn write(&self, write: CreditWrite) -> Result<OperationWritten, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { write, reply };
        let job = match self.sender.send(job).await {
            Ok(()) => match answer.await {
                Ok(result) => return result,
                Err(_) => None,
            },
            Err(mpsc::error::SendError(job)) => Some(job),
        };
        match job {
            Some(job) => alone(&self.database, &job.write).await,
            // Whether the batch was committed is unknown: the operation fails, and its retry
            // finds what was written.
            None => Err(StoreError::Database(sqlx::Error::WorkerCrashed)),
        }
    }
}

async fn alone(database: &Database, write: &CreditWrite) -> Result<OperationWritten, StoreError> {
    let mut written = database.write_credit_batch(&[write]).await?;
    written
        .pop()
        .ok_or_else(|| StoreError::Corrupt("a credit write without an outcome".into()))
}

async fn run(database: Database, mut receiver: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH_SIZE_MAX);
    while receiver.recv_many(&mut batch, BATCH_SIZE_MAX).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let writes: Vec<&CreditWrite> = jobs.iter().map(|job| &job.write).collect();
        match database.write_credit_batch(&writes).await {
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
                    let result = alone(&database, &job.write).await;
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}
