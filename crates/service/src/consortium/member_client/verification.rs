//! Checking the log's answers: each checkpoint opened with the operator's key and proven to
//! extend the last one verified, each answer's entries proven included in it.

use super::*;

impl MemberClient {
    /// The latest checkpoint the operator signed that extends the last one verified: the
    /// log's current one when it verifies, the last one verified when the log shows an older
    /// one. A bad signature or another history is [`MemberError::Unverified`].
    pub(super) async fn verified_checkpoint(&self) -> Result<Checkpoint, MemberError> {
        let mut follower = self.follower.lock().await;
        let text = self
            .get("checkpoint")
            .await?
            .text()
            .await
            .map_err(|error| MemberError::Unreachable(error.to_string()))?;
        let new = open_checkpoint(&text, &self.settings.log_key, &[])
            .map_err(|error| MemberError::Unverified(format!("checkpoint: {error}")))?
            .checkpoint;
        let known = follower.latest().map(|known| known.size);
        let proof = match known {
            Some(old) if old > 0 && new.size > old => {
                let body: Value = self
                    .get(&format!("proofs/consistency?old={old}&new={}", new.size))
                    .await?
                    .json()
                    .await
                    .map_err(|error| MemberError::Unreadable(error.to_string()))?;
                hashes_of(&body["hashes"])?
            }
            _ => Vec::new(),
        };
        let observed = follower
            .observe(&text, &proof)
            .map_err(|error| match error {
                Ok(fork) => MemberError::Unverified(format!("the log forked: {}", fork.reason)),
                Err(error) => MemberError::Unverified(format!("checkpoint: {error}")),
            })?;
        if let (Some(store), Observation::First { .. } | Observation::Advanced { .. }) =
            (&self.checkpoints, &observed)
        {
            // Stored under the follower's lock, so stored checkpoints only ever grow. A
            // failure leaves it verified in memory (this process still refuses older ones)
            // and is logged: only a restart before the next one stored would forget it.
            if let Err(error) = store
                .save_verified_checkpoint(
                    &self.settings.log_key.to_string(),
                    &text,
                    new.size,
                    self.now(),
                )
                .await
            {
                tracing::error!(%error, "storing the verified consortium checkpoint failed");
            }
        }
        follower
            .latest()
            .cloned()
            .ok_or_else(|| MemberError::Unverified("no checkpoint verified".into()))
    }

    /// The entry at `index` of the tree `checkpoint` signed, checked by its inclusion proof.
    pub(super) async fn verified_entry(
        &self,
        index: u64,
        checkpoint: &Checkpoint,
    ) -> Result<Entry, MemberError> {
        if index >= checkpoint.size {
            return Err(MemberError::Unverified(format!(
                "entry {index} is not in the signed tree of {} entries",
                checkpoint.size
            )));
        }
        let bytes = self
            .get(&format!("entries/{index}"))
            .await?
            .bytes()
            .await
            .map_err(|error| MemberError::Unreachable(error.to_string()))?;
        let body: Value = self
            .get(&format!(
                "proofs/inclusion?index={index}&size={}",
                checkpoint.size
            ))
            .await?
            .json()
            .await
            .map_err(|error| MemberError::Unreadable(error.to_string()))?;
        let proof = hashes_of(&body["hashes"])?;
        verify_inclusion(
            index,
            checkpoint.size,
            &leaf_hash(&bytes),
            &proof,
            &checkpoint.root,
        )
        .map_err(|error| MemberError::Unverified(format!("entry {index}: {error}")))?;
        Entry::decode(&bytes)
            .map_err(|error| MemberError::Unverified(format!("entry {index}: {error}")))
    }

    /// Checks an answer: the query's entry holds `request` and the count of `records`, and
    /// each record is a publication of the same blinded identifier saying what the answer
    /// says, all in a signed tree that extends the last one verified.
    pub(super) async fn verify_answer(
        &self,
        request: &SignedRequest,
        index: u64,
        records: &[RecordSeen],
    ) -> Result<(), MemberError> {
        let checkpoint = self.verified_checkpoint().await?;
        let unverified = |message: String| Err(MemberError::Unverified(message));
        let queried = match self.verified_entry(index, &checkpoint).await?.body {
            EntryBody::QueryRecord {
                request: logged,
                identifier,
                result_count,
            } => {
                if logged.member != request.member
                    || logged.sequence != request.sequence
                    || logged.signature != request.signature
                {
                    return unverified(format!("entry {index} is not this member's query"));
                }
                if usize::try_from(result_count).ok() != Some(records.len()) {
                    return unverified(format!(
                        "the log logged {result_count} records for the query and answered {}",
                        records.len()
                    ));
                }
                identifier
            }
            _ => return unverified(format!("entry {index} is not a query")),
        };
        for record in records {
            let entry = self.verified_entry(record.record, &checkpoint).await?;
            let EntryBody::Publication {
                request: published,
                identifier,
            } = entry.body
            else {
                return unverified(format!("record {} is not a publication", record.record));
            };
            let Action::PublishRecord {
                risk_type,
                severity,
                expires_at,
                ..
            } = published.action
            else {
                return unverified(format!("record {} publishes nothing", record.record));
            };
            if identifier != queried
                || published.member != record.publisher
                || risk_type.name() != record.risk_type
                || severity != record.severity
                || expires_at != record.expires_at
            {
                return unverified(format!(
                    "record {} is not what the log's entry says",
                    record.record
                ));
            }
        }
        Ok(())
    }
}

/// Proof hashes from their base64 in an answer.
pub(super) fn hashes_of(value: &Value) -> Result<Vec<Hash>, MemberError> {
    value
        .as_array()
        .ok_or_else(|| MemberError::Unreadable("a proof without hashes".into()))?
        .iter()
        .map(|hash| {
            hash.as_str()
                .and_then(|text| Hash::from_base64(text).ok())
                .ok_or_else(|| MemberError::Unreadable("a proof hash that is not base64".into()))
        })
        .collect()
}
