//! Publishing confirmed fraud: the outbox's rows signed, stored, sent, and found again in
//! the log when an answer was lost.

use super::*;

impl MemberClient {
    /// The normalised identifier a publication names: a device as it is, a card, address or
    /// phone opened from its sealed row (by the fingerprint the publication holds).
    pub(super) async fn publication_identifier(
        &self,
        store: &RiskStore,
        kind: IdentifierKind,
        row: &PublicationRow,
    ) -> Result<Result<NormalisedIdentifier, String>, MemberError> {
        if kind == IdentifierKind::Device {
            return Ok(normalise(kind, &row.identifier, None).map_err(|error| error.to_string()));
        }
        let Some(privacy) = &self.privacy else {
            return Ok(Err("no privacy keys to open the identifier".into()));
        };
        let kept = store
            .consortium_identifier(kind.name(), &row.identifier)
            .await
            .map_err(|error| MemberError::Unreachable(format!("storage: {error}")))?;
        let Some(kept) = kept else {
            return Ok(Err("the identifier is no longer kept".into()));
        };
        let opened = match privacy
            .cipher
            .decrypt(&sealed_field(kind.name()), &kept.sealed)
        {
            Ok(opened) => opened,
            Err(error) => return Ok(Err(format!("the kept identifier does not open: {error}"))),
        };
        Ok(normalise(kind, opened.expose(), None).map_err(|error| error.to_string()))
    }

    /// Sends the pending publications (at most `limit`); how many were published now.
    pub async fn publish_pending(
        &self,
        store: &RiskStore,
        limit: i64,
    ) -> Result<usize, MemberError> {
        let pending = store
            .pending_publications(limit)
            .await
            .map_err(|error| MemberError::Unreachable(format!("storage: {error}")))?;
        let mut published = 0;
        for row in pending {
            match self.publish_one(store, &row).await {
                Ok(true) => published += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, publication = row.id, "a consortium publication failed; retried");
                    let _ = store
                        .publication_attempt_failed(&row.id, &error.to_string())
                        .await;
                }
            }
        }
        Ok(published)
    }

    /// Publishes one row: signs it (stored before sending) unless it is signed already,
    /// sends it, and marks it published (or refused) with its case's trail line.
    pub(super) async fn publish_one(
        &self,
        store: &RiskStore,
        row: &PublicationRow,
    ) -> Result<bool, MemberError> {
        let storage =
            |error: tally_store::StoreError| MemberError::Unreachable(format!("storage: {error}"));
        let kind = IdentifierKind::from_name(&row.kind)
            .map_err(|error| MemberError::Unreadable(error.to_string()))?;
        let identifier = match self.publication_identifier(store, kind, row).await? {
            Ok(identifier) => identifier,
            Err(error) => {
                return self
                    .finish(store, row, None, Some(&error))
                    .await
                    .map_err(storage);
            }
        };
        let mut last = self.sequence.lock().await;
        // The stored request, or a new one stored before it is sent.
        let (request, salt) = match (&row.request, &row.salt) {
            (Some(request), Some(salt)) => (decode_request(request)?, decode_salt(salt)?),
            _ => {
                let salt = random_salt();
                let opening = IdentifierOpening::new(identifier.clone(), salt);
                let search_from = self.log_size().await?;
                let sequence = self.next_sequence(&mut last).await?;
                let request = self.sign(sequence, publish_action(row, &opening));
                let encoded = base64::engine::general_purpose::STANDARD.encode(request.to_bytes());
                let search_from = i64::try_from(search_from).unwrap_or(i64::MAX);
                if !store
                    .sign_publication(
                        &row.id,
                        Some(&encoded),
                        Some(&hex::encode(salt)),
                        Some(search_from),
                        None,
                    )
                    .await
                    .map_err(storage)?
                {
                    return Ok(false);
                }
                (request, salt)
            }
        };
        let opening = IdentifierOpening::new(identifier, salt);
        match self
            .post("records", &request_body(&request, Some(&opening)))
            .await
        {
            Ok(answer) => {
                let index = answer["index"]
                    .as_i64()
                    .ok_or_else(|| MemberError::Unreadable("no index".into()))?;
                self.finish(store, row, Some(index), None)
                    .await
                    .map_err(storage)
            }
            Err(error) if error.code() == Some("replayed_request") => {
                *last = None;
                let from = u64::try_from(row.search_from.unwrap_or(0)).unwrap_or(0);
                match self.find_request(&request, from).await? {
                    Some(index) => self
                        .finish(store, row, Some(index), None)
                        .await
                        .map_err(storage),
                    None => {
                        // Overtaken by a later request before it reached the log: signed
                        // again with a new number at the next pass.
                        store
                            .sign_publication(&row.id, None, None, None, row.request.as_deref())
                            .await
                            .map_err(storage)?;
                        Err(error)
                    }
                }
            }
            Err(error @ MemberError::Refused { status, .. }) if status != 503 && status != 429 => {
                let message = error.to_string();
                self.finish(store, row, None, Some(&message))
                    .await
                    .map_err(storage)
            }
            Err(error) => Err(error),
        }
    }

    pub(super) async fn finish(
        &self,
        store: &RiskStore,
        row: &PublicationRow,
        index: Option<i64>,
        error: Option<&str>,
    ) -> Result<bool, tally_store::StoreError> {
        let now = self.clock.now();
        let (action, note) = match index {
            Some(index) => (
                "consortium_published",
                format!(
                    "{} published to the consortium log as record {index} ({}, severity {})",
                    row.kind, row.risk_type, row.severity
                ),
            ),
            None => (
                "consortium_refused",
                format!("{} not published: {}", row.kind, error.unwrap_or("refused")),
            ),
        };
        let log =
            crate::risk::RiskService::log_line(&row.case_id, now, self.member(), action, &note);
        store
            .finish_publication(&row.id, index, crate::risk::micros(now), error, &log)
            .await
    }

    /// The log index of `request` among the entries from `from` on, if the log holds it.
    pub(super) async fn find_request(
        &self,
        request: &SignedRequest,
        from: u64,
    ) -> Result<Option<i64>, MemberError> {
        let mut start = from;
        loop {
            let response = self
                .http
                .get(format!(
                    "{}/entries?start={start}&count={ENTRIES_PER_READ}",
                    self.root()
                ))
                .send()
                .await
                .map_err(|error| MemberError::Unreachable(error.to_string()))?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !response.status().is_success() {
                return Err(refusal(response).await);
            }
            let body = response
                .bytes()
                .await
                .map_err(|error| MemberError::Unreachable(error.to_string()))?;
            let entries = decode_entry_range(&body)
                .map_err(|error| MemberError::Unreadable(error.to_string()))?;
            if entries.is_empty() {
                return Ok(None);
            }
            for (offset, bytes) in entries.iter().enumerate() {
                let entry = Entry::decode(bytes)
                    .map_err(|error| MemberError::Unreadable(error.to_string()))?;
                if entry.body.request().is_some_and(|logged| {
                    logged.member == request.member
                        && logged.sequence == request.sequence
                        && logged.signature == request.signature
                }) {
                    let index = start + offset as u64;
                    return Ok(Some(i64::try_from(index).unwrap_or(i64::MAX)));
                }
            }
            start += entries.len() as u64;
        }
    }
}

/// Sends pending publications every `interval` until the process stops: `tally serve`'s
/// worker, which also deletes the kept identifiers whose retention ended. A failure is
/// logged and the rows stay pending for the next pass.
pub async fn publish_continuously(client: Arc<MemberClient>, store: RiskStore, interval: Duration) {
    loop {
        match store
            .delete_expired_consortium_identifiers(client.now())
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(
                deleted,
                "kept consortium identifiers past their retention deleted"
            ),
            Err(error) => {
                tracing::warn!(%error, "kept consortium identifiers could not be pruned; retried")
            }
        }
        match client.publish_pending(&store, 100).await {
            Ok(0) => {}
            Ok(published) => {
                tracing::info!(published, "confirmed fraud published to the consortium log")
            }
            Err(error) => {
                tracing::warn!(%error, "consortium publications could not be read; retried")
            }
        }
        tokio::time::sleep(interval).await;
    }
}

pub(super) fn publish_action(row: &PublicationRow, opening: &IdentifierOpening) -> Action {
    let risk_type = [
        RiskType::Fraud,
        RiskType::StolenAccount,
        RiskType::MoneyMule,
        RiskType::IdentityTheft,
        RiskType::SyntheticIdentity,
        RiskType::Other,
    ]
    .into_iter()
    .find(|risk_type| risk_type.name() == row.risk_type)
    .unwrap_or(RiskType::Fraud);
    Action::PublishRecord {
        identifier: opening.commitment(),
        risk_type,
        severity: u8::try_from(row.severity).unwrap_or(5),
        expires_at: u64::try_from(row.expires_at).unwrap_or(0),
        evidence_reference: format!("case {}", row.case_id),
    }
}

pub(super) fn decode_request(text: &str) -> Result<SignedRequest, MemberError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| MemberError::Unreadable(error.to_string()))?;
    SignedRequest::from_bytes(&bytes).map_err(|error| MemberError::Unreadable(error.to_string()))
}

pub(super) fn decode_salt(text: &str) -> Result<[u8; 16], MemberError> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| MemberError::Unreadable("a stored salt that is not 16 bytes".into()))
}

/// The error an unsuccessful answer carries.
pub(super) async fn refusal(response: reqwest::Response) -> MemberError {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    MemberError::Refused {
        status,
        code: body["error"]["code"]
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
        message: body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}
