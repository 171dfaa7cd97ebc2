//! Merchants' requests and their stored answers: a request's key answers what it answered
//! the first time (the payment, or its decline), another request under the same key is
//! refused, and a refusal that changed nothing is not stored, so it may succeed later.

use super::{encode, Loaded, PaymentService};
use crate::intent::request_fingerprint;
use crate::payments::error::PaymentServiceError;
use crate::payments::views::{payment_view, PaymentView};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tally_store::payments::PaymentAnswer;
use tally_store::StoreError;

/// The kind of answer stored for a request.
pub(super) const ANSWER_CREATED: i32 = 201;

const ANSWER_DONE: i32 = 200;

const ANSWER_DECLINED: i32 = 402;

/// A stored answer to a request: the payment, or the decline with the payment.
#[derive(Serialize, Deserialize)]
struct DeclinedAnswer {
    code: String,
    message: String,
    payment: PaymentView,
}

/// The fingerprint of a merchant's request: its kind, a zero byte, and its JSON.
pub(super) fn hash_request(kind: &str, request: &serde_json::Value) -> String {
    request_fingerprint(&[kind.as_bytes(), &[0], request.to_string().as_bytes()])
}

impl PaymentService {
    pub(super) async fn replayed(
        &self,
        key: &str,
        kind: &str,
        hash: &str,
    ) -> Result<Option<Result<PaymentView, PaymentServiceError>>, PaymentServiceError> {
        let Some(stored) = self.database.payment_request(key).await? else {
            return Ok(None);
        };
        if stored.kind != kind || stored.request_hash != hash {
            return Err(PaymentServiceError::KeyReused(key.to_string()));
        }
        let corrupt =
            |error: serde_json::Error| StoreError::Corrupt(format!("answer of {key}: {error}"));
        Ok(Some(if stored.answer_code == ANSWER_DECLINED {
            let answer: DeclinedAnswer = serde_json::from_str(&stored.answer).map_err(corrupt)?;
            Err(PaymentServiceError::Declined {
                code: answer.code,
                message: answer.message,
                payment: Box::new(answer.payment),
            })
        } else {
            Ok(serde_json::from_str(&stored.answer).map_err(corrupt)?)
        }))
    }

    /// The answer to store for a request: a success, or a decline (the payment changed: it
    /// failed). Other refusals changed nothing and are not stored: the same request may
    /// succeed later.
    pub(super) fn answer_to_store(
        key: &str,
        kind: &str,
        hash: &str,
        result: &Result<PaymentView, PaymentServiceError>,
    ) -> Result<Option<PaymentAnswer>, PaymentServiceError> {
        let (code, answer) = match result {
            Ok(view) => (ANSWER_DONE, encode(view, "answer")?),
            Err(PaymentServiceError::Declined {
                code,
                message,
                payment,
            }) => (
                ANSWER_DECLINED,
                encode(
                    &DeclinedAnswer {
                        code: code.clone(),
                        message: message.clone(),
                        payment: (**payment).clone(),
                    },
                    "answer",
                )?,
            ),
            Err(_) => return Ok(None),
        };
        Ok(Some(PaymentAnswer {
            key: key.to_string(),
            kind: kind.to_string(),
            request_hash: hash.to_string(),
            answer_code: code,
            answer,
        }))
    }

    /// Replays a stored answer, or runs `work` on the payment under its lock, then stores
    /// the answer.
    pub(super) async fn run<'a, F>(
        &'a self,
        key: &str,
        kind: &str,
        hash: &str,
        id: &str,
        now: Timestamp,
        work: F,
    ) -> Result<PaymentView, PaymentServiceError>
    where
        F: for<'b> Fn(
            &'b PaymentService,
            &'b mut Loaded,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), PaymentServiceError>> + Send + 'b>,
        >,
    {
        if let Some(replay) = self.replayed(key, kind, hash).await? {
            return replay;
        }
        let _guard = self.stripe(id).lock().await;
        if let Some(replay) = self.replayed(key, kind, hash).await? {
            return replay;
        }
        let mut loaded = self.load(id).await?;
        let result = match self.settle(&mut loaded, now).await {
            Ok(()) => work(self, &mut loaded).await,
            Err(error) => Err(error),
        };
        let result = result.map(|()| payment_view(&loaded.record));
        // The answer lands with the payment's last change, in one transaction.
        let answer = Self::answer_to_store(key, kind, hash, &result)?;
        self.flush(&mut loaded, now, answer).await?;
        result
    }
}
