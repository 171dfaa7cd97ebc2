//! `HttpChannel`: the [`Channel`] over the channel's HTTP API (the simulator's, see
//! [`crate::simulator`]), with a per-request timeout and the shared secret as a bearer token.

use crate::channel::{
    Authorization, AuthorizeRequest, Capture, CaptureRequest, CardDetails, Channel, ChannelFuture,
    ChannelRefund, Operation, OperationStatus, Payout, PayoutRequest, RefundRequest, Void,
    VoidRequest,
};
use crate::error::ChannelError;
use crate::identifiers::{CardToken, Reference};
use crate::wire::{
    AmountBody, AuthorizeBody, CardBody, ErrorBody, OperationBody, PayoutBody, VoidBody,
};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use tally_core::{Amount, Secret};

/// Largest answer read from the channel, in bytes; a longer one is a protocol error.
pub const ANSWER_SIZE_MAX: usize = 1 << 20;

/// The refusal code of `GET /v1/operations/{reference}` for a reference the bank never
/// acted on.
pub const OPERATION_NOT_FOUND: &str = "operation_not_found";

/// How to reach the channel.
#[derive(Debug, Clone)]
pub struct HttpChannelConfig {
    /// `http://127.0.0.1:7070/`; a path prefix is kept.
    pub base_url: String,
    /// The whole of one request, connection to last byte of the answer. Past it the call
    /// fails with [`ChannelError::Timeout`] and the outcome is unknown.
    pub timeout: Duration,
    /// Sent as `Authorization: Bearer <secret>`; also the key of the notifications'
    /// signatures.
    pub secret: Secret<String>,
}

/// The channel over HTTP. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct HttpChannel {
    client: reqwest::Client,
    base_url: Url,
    secret: Secret<String>,
}

impl HttpChannel {
    pub fn new(config: HttpChannelConfig) -> Result<Self, ChannelError> {
        let base_url = Url::parse(&config.base_url)
            .map_err(|error| ChannelError::Protocol(format!("base URL: {error}")))?;
        if base_url.cannot_be_a_base() {
            return Err(ChannelError::Protocol(format!(
                "base URL {base_url} cannot hold a path"
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|error| ChannelError::Protocol(format!("HTTP client: {error}")))?;
        Ok(HttpChannel {
            client,
            base_url,
            secret: config.secret,
        })
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ChannelError> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| ChannelError::Protocol("base URL cannot hold a path".into()))?
            .pop_if_empty()
            // Each segment is percent-encoded: a reference may hold `/`, `?` or `%`.
            .extend(segments);
        Ok(url)
    }

    /// Sends one request and reads its answer: `Ok(Ok(T))` for a 2xx, `Ok(Err(body))` for a
    /// refusal the bank explained.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<Result<T, ErrorBody>, ChannelError> {
        let mut request = self
            .client
            .request(method, self.url(segments)?)
            .bearer_auth(self.secret.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        let mut response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if answer.len() + chunk.len() > ANSWER_SIZE_MAX {
                return Err(ChannelError::Protocol(format!(
                    "answer longer than {ANSWER_SIZE_MAX} bytes"
                )));
            }
            answer.extend_from_slice(&chunk);
        }
        let unreadable = |error: serde_json::Error| {
            ChannelError::Protocol(format!("unreadable {status} answer: {error}"))
        };
        if status.is_success() {
            return serde_json::from_slice(&answer).map(Ok).map_err(unreadable);
        }
        if status.is_server_error() {
            // The bank may have acted before failing: the outcome is unknown.
            let detail = serde_json::from_slice::<ErrorBody>(&answer)
                .map(|body| format!("{}: {}", body.error.code, body.error.message))
                .unwrap_or_else(|_| String::from_utf8_lossy(&answer).into_owned());
            return Err(ChannelError::Unavailable(format!("{status} {detail}")));
        }
        if status.is_client_error() {
            return serde_json::from_slice(&answer).map(Err).map_err(unreadable);
        }
        Err(ChannelError::Protocol(format!(
            "unexpected status {status}"
        )))
    }

    /// A mutating call: its answer is an operation, which must be the one asked for.
    async fn operate(
        &self,
        segments: &[&str],
        reference: &Reference,
        body: &(impl Serialize + Sync),
    ) -> Result<Operation, ChannelError> {
        let answer: OperationBody = self
            .call(Method::POST, segments, Some(body))
            .await?
            .map_err(refusal)?;
        let status = OperationStatus::try_from(answer).map_err(ChannelError::Protocol)?;
        if &status.reference != reference {
            return Err(ChannelError::Protocol(format!(
                "asked for {reference}, the answer is for {}",
                status.reference
            )));
        }
        Ok(status.operation)
    }
}

fn transport_error(error: reqwest::Error) -> ChannelError {
    if error.is_timeout() {
        ChannelError::Timeout(error.to_string())
    } else {
        ChannelError::Unavailable(error.to_string())
    }
}

fn refusal(body: ErrorBody) -> ChannelError {
    ChannelError::Refused {
        code: body.error.code,
        message: body.error.message,
    }
}

fn amount_body(reference: &Reference, amount: &Amount) -> AmountBody {
    AmountBody {
        reference: reference.clone(),
        amount: amount.to_decimal_string(),
        currency: amount.currency().code().to_string(),
    }
}

fn unexpected(asked: &str, operation: &Operation) -> ChannelError {
    ChannelError::Protocol(format!("asked for {asked}, the answer is {operation:?}"))
}

impl Channel for HttpChannel {
    fn card<'a>(&'a self, token: &'a CardToken) -> ChannelFuture<'a, CardDetails> {
        Box::pin(async move {
            let body: CardBody = self
                .call(Method::GET, &["v1", "cards", token.as_str()], None::<&()>)
                .await?
                .map_err(refusal)?;
            Ok(body.into())
        })
    }

    fn authorize<'a>(&'a self, request: &'a AuthorizeRequest) -> ChannelFuture<'a, Authorization> {
        Box::pin(async move {
            let body = AuthorizeBody {
                reference: request.reference.clone(),
                token: request.token.clone(),
                amount: request.amount.to_decimal_string(),
                currency: request.amount.currency().code().to_string(),
            };
            match self
                .operate(&["v1", "authorizations"], &request.reference, &body)
                .await?
            {
                Operation::Authorization(authorization) => Ok(authorization),
                other => Err(unexpected("an authorization", &other)),
            }
        })
    }

    fn capture<'a>(&'a self, request: &'a CaptureRequest) -> ChannelFuture<'a, Capture> {
        Box::pin(async move {
            let segments = [
                "v1",
                "authorizations",
                request.channel_id.as_str(),
                "capture",
            ];
            let body = amount_body(&request.reference, &request.amount);
            match self.operate(&segments, &request.reference, &body).await? {
                Operation::Capture(capture) => Ok(capture),
                other => Err(unexpected("a capture", &other)),
            }
        })
    }

    fn void<'a>(&'a self, request: &'a VoidRequest) -> ChannelFuture<'a, Void> {
        Box::pin(async move {
            let segments = ["v1", "authorizations", request.channel_id.as_str(), "void"];
            let body = VoidBody {
                reference: request.reference.clone(),
            };
            match self.operate(&segments, &request.reference, &body).await? {
                Operation::Void(void) => Ok(void),
                other => Err(unexpected("a void", &other)),
            }
        })
    }

    fn refund<'a>(&'a self, request: &'a RefundRequest) -> ChannelFuture<'a, ChannelRefund> {
        Box::pin(async move {
            let segments = [
                "v1",
                "authorizations",
                request.channel_id.as_str(),
                "refunds",
            ];
            let body = amount_body(&request.reference, &request.amount);
            match self.operate(&segments, &request.reference, &body).await? {
                Operation::Refund(refund) => Ok(refund),
                other => Err(unexpected("a refund", &other)),
            }
        })
    }

    fn payout<'a>(&'a self, request: &'a PayoutRequest) -> ChannelFuture<'a, Payout> {
        Box::pin(async move {
            let body = PayoutBody {
                reference: request.reference.clone(),
                token: request.token.clone(),
                amount: request.amount.to_decimal_string(),
                currency: request.amount.currency().code().to_string(),
            };
            match self
                .operate(&["v1", "payouts"], &request.reference, &body)
                .await?
            {
                Operation::Payout(payout) => Ok(payout),
                other => Err(unexpected("a payout", &other)),
            }
        })
    }

    fn status<'a>(
        &'a self,
        reference: &'a Reference,
    ) -> ChannelFuture<'a, Option<OperationStatus>> {
        Box::pin(async move {
            let segments = ["v1", "operations", reference.as_str()];
            match self
                .call::<OperationBody>(Method::GET, &segments, None::<&()>)
                .await?
            {
                Ok(body) => {
                    let status = OperationStatus::try_from(body).map_err(ChannelError::Protocol)?;
                    if &status.reference != reference {
                        return Err(ChannelError::Protocol(format!(
                            "asked for {reference}, the answer is for {}",
                            status.reference
                        )));
                    }
                    Ok(Some(status))
                }
                Err(body) if body.error.code == OPERATION_NOT_FOUND => Ok(None),
                Err(body) => Err(refusal(body)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(base_url: &str) -> HttpChannel {
        HttpChannel::new(HttpChannelConfig {
            base_url: base_url.into(),
            timeout: Duration::from_secs(1),
            secret: Secret::new("secret".into()),
        })
        .expect("a valid configuration")
    }

    #[test]
    fn references_are_percent_encoded_into_one_path_segment() {
        let url = channel("http://127.0.0.1:7070/bank/")
            .url(&["v1", "operations", "a/b?c#d%e"])
            .expect("a url");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:7070/bank/v1/operations/a%2Fb%3Fc%23d%25e"
        );
    }

    #[test]
    fn a_base_url_that_cannot_hold_a_path_is_refused() {
        let error = HttpChannel::new(HttpChannelConfig {
            base_url: "mailto:bank@example.invalid".into(),
            timeout: Duration::from_secs(1),
            secret: Secret::new("secret".into()),
        })
        .expect_err("refused");
        assert_eq!(error.code(), "channel_protocol_error");
    }
}
