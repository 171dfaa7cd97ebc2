//! `tally consortium client`: a member signs requests with its key and sends them to a
//! log; and the HTTP reads that `verify --url` and the mirror share.

use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::Value;
use tally_consortium::{
    normalise, Action, Hash, IdentifierKind, IdentifierOpening, MemberKey, RiskType, SignedRequest,
    SignerKey,
};

use tally_service::consortium::member_client::{last_sequence, request_body};

use super::keys::{random_seed, verifier_key};
use super::{read_text, ClientAction, ClientArgs};

pub(super) fn base(url: &str) -> String {
    format!("{}/v1/consortium", url.trim_end_matches('/'))
}

pub(super) async fn get_text(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {text}");
    }
    Ok(text)
}

pub(super) async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&get_text(http, url).await?)?)
}

pub(super) async fn get_bytes(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<u8>> {
    let response = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let bytes = response.bytes().await?.to_vec();
    if !status.is_success() {
        bail!("GET {url}: {status}");
    }
    Ok(bytes)
}

pub(super) fn hashes(value: &Value) -> anyhow::Result<Vec<Hash>> {
    value
        .as_array()
        .context("a list of hashes")?
        .iter()
        .map(|hash| Ok(Hash::from_base64(hash.as_str().context("a hash")?)?))
        .collect()
}

fn now() -> anyhow::Result<u64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs())
}

fn risk_type(name: &str) -> anyhow::Result<RiskType> {
    [
        RiskType::Fraud,
        RiskType::StolenAccount,
        RiskType::MoneyMule,
        RiskType::IdentityTheft,
        RiskType::SyntheticIdentity,
        RiskType::Other,
    ]
    .into_iter()
    .find(|risk_type| risk_type.name() == name)
    .with_context(|| format!("unknown risk type {name:?}"))
}

fn opening(kind: &str, identifier: &str) -> anyhow::Result<IdentifierOpening> {
    let kind = IdentifierKind::from_name(kind)?;
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&random_seed()?[..16]);
    Ok(IdentifierOpening::new(
        normalise(kind, identifier, None)?,
        salt,
    ))
}

pub(super) async fn client(arguments: ClientArgs) -> anyhow::Result<ExitCode> {
    let http = reqwest::Client::new();
    let root = base(&arguments.url);
    let key = SignerKey::parse(read_text(&arguments.key)?.trim())?;
    let members = get_json(&http, &format!("{root}/members")).await?;
    // The next sequence number: one above the last the log accepted from us.
    let sequence = last_sequence(&members, key.name()) + 1;
    let time = now()?;
    let (route, action, opening) = match arguments.action {
        ClientAction::Publish {
            kind,
            identifier,
            risk_type: name,
            severity,
            expires_in_days,
            evidence,
        } => {
            let opening = opening(&kind, &identifier)?;
            let action = Action::PublishRecord {
                identifier: opening.commitment(),
                risk_type: risk_type(&name)?,
                severity,
                expires_at: time + expires_in_days * 86_400,
                evidence_reference: evidence,
            };
            ("records", action, Some((kind, opening)))
        }
        ClientAction::Query { kind, identifier } => {
            let opening = opening(&kind, &identifier)?;
            let action = Action::Query {
                identifier: opening.commitment(),
            };
            ("queries", action, Some((kind, opening)))
        }
        ClientAction::Retract { record, reason } => (
            "retractions",
            Action::RetractRecord { record, reason },
            None,
        ),
        ClientAction::ProposeAdmission { candidate } => {
            let candidate = verifier_key(&candidate)?;
            let action = Action::ProposeAdmission {
                candidate: MemberKey {
                    name: candidate.name().to_owned(),
                    public_key: candidate.public_key(),
                },
            };
            ("proposals", action, None)
        }
        ClientAction::ProposeSuspension { member, reason } => (
            "proposals",
            Action::ProposeSuspension { member, reason },
            None,
        ),
        ClientAction::ProposeQuota {
            member,
            queries_per_day,
        } => (
            "proposals",
            Action::ProposeQuota {
                member,
                queries_per_day,
            },
            None,
        ),
        ClientAction::Approve { proposal } => ("approvals", Action::Approve { proposal }, None),
        ClientAction::Members => {
            println!("{}", serde_json::to_string_pretty(&members)?);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let request = SignedRequest::sign(&arguments.consortium, &key, sequence, time, action);
    // The same body Tally's own member client sends.
    let body = request_body(&request, opening.as_ref().map(|(_, opening)| opening));
    let response = http
        .post(format!("{root}/{route}"))
        .json(&body)
        .send()
        .await
        .context("sending the request")?;
    let status = response.status();
    let answer: Value = response.json().await.context("reading the answer")?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
