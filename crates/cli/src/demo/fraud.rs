//! Fraud: attacks the risk engine decides with the shipped rule pack (card testing, mules
//! shipping to one drop address, a credit bust-out, account takeovers), a false alarm (a
//! dormitory whose students share an address), the cases they open worked by an analyst
//! (attacks rejected, the false alarm approved, one case left open for the newcomer), and
//! each takeover ending as a confirmed stolen-account claim whose purchase is written off.

use super::figures::GroundTruth;
use super::lending::{charge, Lending};
use super::world::{phone, Behaviour, Size};
use super::Services;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde_json::json;
use std::collections::BTreeMap;
use tally_core::{Amount, Clock, Currency, SplitMix64};
use tally_risk::{Event, EventKind, ProfileField};
use tally_service::credit::commands::CreditCommand;
use tally_service::credit::operations::{request_hash, OperationError};
use tally_service::risk::{case_priority, RiskRequestError, RiskService};
use tally_service::stolen_accounts::{NewClaim, StolenAccountClaims};

/// What the thief buys on a taken-over account: at least the 2,000 CNY of the rule
/// `takeover_high_value_new_address`.
pub const THEFT_AMOUNT: i64 = 260_000;

/// Review cases of attacks the analyst leaves open for the newcomer.
const OPEN_REVIEWS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Story {
    CardTesting,
    DropAddress,
    BustOut,
    Takeover,
    /// Not an attack: students of one dormitory, which the analyst approves.
    Dormitory,
}

#[derive(Debug, Clone)]
struct Planned {
    story: Story,
    number: usize,
}

/// A takeover waiting for its claim: the victim, its plan bought by the thief.
#[derive(Debug, Clone)]
struct Claim {
    victim: usize,
    customer: String,
    account: i64,
    plan: u32,
    day: Date,
}

/// A fraudster the lender confirmed, to share on the consortium log.
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub phone: String,
    pub evidence: String,
}

/// An attack injected, with the ids of its events (caught when the engine did not approve
/// one of them).
#[derive(Debug, Clone)]
pub struct Attack {
    pub kind: &'static str,
    pub event_ids: Vec<String>,
}

pub struct Fraud {
    planned: BTreeMap<Date, Vec<Planned>>,
    claims: Vec<Claim>,
    pub attacks: Vec<Attack>,
    pub confirmed: Vec<Confirmed>,
    /// Cases opened by the stories, in order, with whether the analyst rejects them.
    cases: Vec<(String, bool)>,
    random: SplitMix64,
}

/// A refusal of the risk service, with its stable code.
fn risk_refused(error: RiskRequestError) -> anyhow::Error {
    anyhow::anyhow!("{}: {error}", error.code())
}

/// A refusal of the credit operations, with its stable code.
fn credit_refused(error: OperationError) -> anyhow::Error {
    anyhow::anyhow!("{}: {error}", error.code())
}

impl Fraud {
    /// Spreads the stories over the business days after the first month (customers have
    /// some history by then).
    pub fn plan(size: &Size, seed: u64, first: Date, last: Date) -> anyhow::Result<Fraud> {
        let mut random = SplitMix64::new(seed ^ 0xF4A0_D0C5);
        let earliest = first.checked_add(32.days())?.min(last);
        let span = (last - earliest).get_days().max(1);
        let mut planned: BTreeMap<Date, Vec<Planned>> = BTreeMap::new();
        let stories = [
            (Story::CardTesting, size.attacks_per_kind),
            (Story::DropAddress, size.attacks_per_kind),
            (Story::BustOut, size.attacks_per_kind),
            (Story::Dormitory, size.attacks_per_kind),
            (Story::Takeover, size.takeovers),
        ];
        for (story, count) in stories {
            for number in 0..count {
                // A takeover's claim comes the next day, still within the simulation.
                let latest = if story == Story::Takeover {
                    span - 1
                } else {
                    span
                };
                let day = earliest.checked_add(random.range(0, i64::from(latest.max(0))).days())?;
                planned
                    .entry(day)
                    .or_default()
                    .push(Planned { story, number });
            }
        }
        Ok(Fraud {
            planned,
            claims: Vec::new(),
            attacks: Vec::new(),
            confirmed: Vec::new(),
            cases: Vec::new(),
            random,
        })
    }

    /// The claims of yesterday's takeovers, then today's stories, one after the other (the
    /// engine's features see them in this order).
    pub async fn run_day(
        &mut self,
        services: &Services,
        lending: &mut Lending,
        day: Date,
        truth: &mut GroundTruth,
    ) -> anyhow::Result<()> {
        let due: Vec<Claim> = self
            .claims
            .iter()
            .filter(|claim| claim.day < day)
            .cloned()
            .collect();
        self.claims.retain(|claim| claim.day >= day);
        for claim in due {
            services.set_time(day, 9)?;
            self.confirm_claim(services, lending, &claim, day, truth)
                .await?;
        }
        let Some(stories) = self.planned.remove(&day) else {
            return Ok(());
        };
        for planned in stories {
            services.set_time(day, 12)?;
            match planned.story {
                Story::CardTesting => self.card_testing(services, day, planned.number).await?,
                Story::DropAddress => {
                    self.shared_address(services, day, planned.number, false)
                        .await?
                }
                Story::Dormitory => {
                    self.shared_address(services, day, planned.number, true)
                        .await?
                }
                Story::BustOut => self.bust_out(services, day, planned.number).await?,
                Story::Takeover => {
                    self.takeover(services, lending, day, planned.number, truth)
                        .await?
                }
            }
        }
        Ok(())
    }

    async fn decide(
        &mut self,
        services: &Services,
        event: &Event,
        rejected_if_case: bool,
    ) -> anyhow::Result<String> {
        let decided = services.risk.decide(event).await.map_err(risk_refused)?;
        if let Some(case) = decided.case_id {
            self.cases.push((case, rejected_if_case));
        }
        Ok(decided.decision["action"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    fn at(services: &Services, day: Date, hour: i8, seconds: i64) -> anyhow::Result<Timestamp> {
        Ok(services
            .at(day, hour, 0)?
            .checked_add(SignedDuration::from_secs(seconds))?)
    }

    /// Six small payments on one stolen card within three minutes.
    async fn card_testing(
        &mut self,
        services: &Services,
        day: Date,
        number: usize,
    ) -> anyhow::Result<()> {
        let mut attack = Attack {
            kind: "card_testing",
            event_ids: Vec::new(),
        };
        for attempt in 0..6 {
            let id = format!("demo-card-testing-{number}-{attempt}");
            let mut event = Event::new(
                id.clone(),
                EventKind::Transaction,
                Fraud::at(services, day, 11, attempt * 30)?,
                format!("card-tester-{number}"),
            );
            event.device = Some(format!("card-tester-device-{number}"));
            event.card = Some(format!("stolen-card-{number}"));
            event.amount = Some(Amount::new(self.random.range(1, 19) * 100, Currency::CNY));
            event.merchant = Some("merchant-digital-goods".into());
            self.decide(services, &event, true).await?;
            attack.event_ids.push(id);
        }
        self.attacks.push(attack);
        Ok(())
    }

    /// Five customers ordering to one address within the hour: mules (an attack, rejected)
    /// or students of one dormitory (a false alarm, approved).
    async fn shared_address(
        &mut self,
        services: &Services,
        day: Date,
        number: usize,
        dormitory: bool,
    ) -> anyhow::Result<()> {
        let who = if dormitory { "student" } else { "mule" };
        let mut attack = Attack {
            kind: "drop_address",
            event_ids: Vec::new(),
        };
        for person in 0..5 {
            let id = format!("demo-{who}-{number}-{person}");
            let mut event = Event::new(
                id.clone(),
                EventKind::Transaction,
                Fraud::at(services, day, 11, 600 + i64::from(person) * 60)?,
                format!("{who}-{number}-{person}"),
            );
            event.device = Some(format!("{who}-device-{number}-{person}"));
            event.card = Some(format!("{who}-card-{number}-{person}"));
            event.address = Some(format!("{who}-address-{number}"));
            event.amount = Some(Amount::new(
                self.random.range(200, 900) * 100,
                Currency::CNY,
            ));
            self.decide(services, &event, !dormitory).await?;
            attack.event_ids.push(id);
        }
        if dormitory {
            return Ok(());
        }
        self.confirmed.push(Confirmed {
            phone: phone(7, number * 10),
            evidence: format!("drop address {number}: five accounts, one address"),
        });
        self.attacks.push(attack);
        Ok(())
    }

    /// A new credit line maxed out within hours of its activation.
    async fn bust_out(
        &mut self,
        services: &Services,
        day: Date,
        number: usize,
    ) -> anyhow::Result<()> {
        let customer = format!("bust-out-{number}");
        let mut attack = Attack {
            kind: "bust_out",
            event_ids: Vec::new(),
        };
        let mut activation = Event::new(
            format!("demo-bust-out-{number}-activation"),
            EventKind::CreditActivation,
            Fraud::at(services, day, 9, 0)?,
            customer.clone(),
        );
        activation.device = Some(format!("bust-out-device-{number}"));
        self.decide(services, &activation, true).await?;
        for order in 0..6 {
            let id = format!("demo-bust-out-{number}-{order}");
            let mut event = Event::new(
                id.clone(),
                EventKind::Transaction,
                Fraud::at(services, day, 10, order * 600)?,
                customer.clone(),
            );
            event.device = Some(format!("bust-out-device-{number}"));
            event.card = Some(format!("bust-out-card-{number}"));
            event.address = Some(format!("bust-out-address-{number}"));
            event.merchant = Some("merchant-electronics".into());
            event.amount = Some(Amount::new(260_000, Currency::CNY));
            self.decide(services, &event, true).await?;
            attack.event_ids.push(id);
        }
        self.confirmed.push(Confirmed {
            phone: phone(6, number),
            evidence: format!("bust-out {number}: credit line emptied on its first day"),
        });
        self.attacks.push(attack);
        Ok(())
    }

    /// A thief changes a good customer's password from a new device and buys on its credit
    /// line to a new address: the engine holds the delivery, the money is charged, and the
    /// customer's claim comes the next day.
    async fn takeover(
        &mut self,
        services: &Services,
        lending: &mut Lending,
        day: Date,
        number: usize,
        truth: &mut GroundTruth,
    ) -> anyhow::Result<()> {
        // The victim: the customer with the most credit, paying in full, not taken over yet.
        let Some(victim) = lending
            .borrowers
            .iter()
            .filter(|borrower| {
                borrower.behaviour == Behaviour::PaysInFull
                    && !borrower.blocked
                    && borrower.opened_on < day
                    && !self
                        .claims
                        .iter()
                        .any(|claim| claim.victim == borrower.index)
            })
            .max_by_key(|borrower| (borrower.limit, std::cmp::Reverse(borrower.index)))
            .cloned()
        else {
            return Ok(());
        };
        let mut attack = Attack {
            kind: "account_takeover",
            event_ids: Vec::new(),
        };
        let id = format!("demo-takeover-{number}-password");
        let mut change = Event::new(
            id.clone(),
            EventKind::ProfileChange,
            Fraud::at(services, day, 8, 0)?,
            victim.customer_id.clone(),
        );
        change.device = Some(format!("thief-device-{number}"));
        change.profile_field = Some(ProfileField::Password);
        self.decide(services, &change, true).await?;
        attack.event_ids.push(id);
        let reference = format!("demo-takeover-{number}-order");
        let mut order = Event::new(
            reference.clone(),
            EventKind::Transaction,
            Fraud::at(services, day, 8, 600)?,
            victim.customer_id.clone(),
        );
        order.device = Some(format!("thief-device-{number}"));
        order.card = Some(format!("card-{}", victim.index));
        order.address = Some(format!("thief-address-{number}"));
        order.merchant = Some("merchant-electronics".into());
        order.amount = Some(Amount::new(THEFT_AMOUNT, Currency::CNY));
        self.decide(services, &order, true).await?;
        attack.event_ids.push(reference.clone());
        self.attacks.push(attack);
        // The delivery is held, but the purchase was charged to the victim's credit line.
        let plan = charge(
            services,
            victim.account,
            &reference,
            Amount::new(THEFT_AMOUNT, Currency::CNY),
            1,
            day,
        )
        .await?;
        if let Some(plan) = plan {
            truth.stolen_purchases += 1;
            self.claims.push(Claim {
                victim: victim.index,
                customer: victim.customer_id.clone(),
                account: victim.account,
                plan,
                day,
            });
        }
        Ok(())
    }

    /// The victim's claim: opened, claimed and approved by the analyst (the customer is
    /// blocked), and the thief's purchase written off on its evidence.
    async fn confirm_claim(
        &mut self,
        services: &Services,
        lending: &mut Lending,
        claim: &Claim,
        day: Date,
        truth: &mut GroundTruth,
    ) -> anyhow::Result<()> {
        let risk = &services.risk;
        // The claim as `POST /v1/risk/claims` opens it: a stolen-account case at the top of
        // the queue, the claim first in its trail.
        let now = services.clock.now();
        let case = RiskService::new_case(
            "stolen_account",
            case_priority("stolen_account"),
            &claim.customer,
            None,
            "the customer did not change the password nor place the order of yesterday".into(),
            now,
        );
        let log = RiskService::log_line(
            &case.id,
            now,
            &services.caller.name,
            "opened",
            "stolen-account claim",
        );
        risk.store.insert_case(&case, &log).await?;
        for action in ["claim", "approve"] {
            risk.move_case(
                &case.id,
                action,
                "called the customer back on the number on file",
                &services.caller,
            )
            .await
            .map_err(risk_refused)?;
        }
        let command = CreditCommand::WriteOffStolen {
            plan: claim.plan,
            case_id: case.id.clone(),
        };
        let key = format!("demo-write-off-{}-{}", claim.account, claim.plan);
        let hash = request_hash(
            command.kind(),
            claim.account,
            &json!({ "plan": claim.plan, "case": case.id }),
        );
        services
            .credit
            .operations
            .execute(
                &key,
                claim.account,
                &command,
                &hash,
                day,
                services.clock.now(),
            )
            .await
            .map_err(credit_refused)?;
        truth.stolen_confirmed += 1;
        truth.cases_approved += 1;
        truth.losses_written_off += THEFT_AMOUNT;
        if let Some(victim) = lending.borrower_mut(claim.victim) {
            victim.blocked = true;
        }
        Ok(())
    }

    /// The analyst works the queue: claims each case the stories opened, rejects the attacks
    /// and approves the false alarms, leaving the last attack's case open for the newcomer.
    pub async fn work_cases(
        &mut self,
        services: &Services,
        last_day: Date,
        truth: &mut GroundTruth,
    ) -> anyhow::Result<()> {
        services.set_time(last_day, 23)?;
        services.clock.set(
            services
                .clock
                .now()
                .checked_add(SignedDuration::from_mins(30))?,
        );
        let risk = &services.risk;
        // The last attack's case, and the last attacks' reviews, wait in the queue for the
        // newcomer.
        let mut left_open: Vec<usize> = self
            .cases
            .iter()
            .rposition(|(_, rejected)| *rejected)
            .into_iter()
            .collect();
        let mut reviews = 0;
        for (position, (case, rejected)) in self.cases.iter().enumerate().rev() {
            if reviews == OPEN_REVIEWS {
                break;
            }
            if *rejected && risk.case(case).await.map_err(risk_refused)?.kind == "review" {
                reviews += 1;
                if !left_open.contains(&position) {
                    left_open.push(position);
                }
            }
        }
        for (position, (case, rejected)) in self.cases.iter().enumerate() {
            if left_open.contains(&position) {
                truth.cases_open += 1;
                continue;
            }
            let (action, note) = if *rejected {
                (
                    "reject",
                    "confirmed fraud: order cancelled, goods not delivered",
                )
            } else {
                (
                    "approve",
                    "a university dormitory: genuine customers, delivery released",
                )
            };
            risk.move_case(case, "claim", "", &services.caller)
                .await
                .map_err(risk_refused)?;
            risk.move_case(case, action, note, &services.caller)
                .await
                .map_err(risk_refused)?;
            if *rejected {
                truth.cases_rejected += 1;
            } else {
                truth.cases_approved += 1;
            }
        }
        Ok(())
    }

    /// On the last evening a customer reports its phone stolen an hour ago: the claim
    /// freezes its credit lines and waits at the top of the queue for an analyst to
    /// confirm it. The customer: the borrower with the most credit who pays in full, was
    /// not robbed before and has no order held.
    pub async fn open_a_claim(
        &mut self,
        services: &Services,
        lending: &Lending,
        held: &[String],
        truth: &mut GroundTruth,
    ) -> anyhow::Result<()> {
        let Some(customer) = lending
            .borrowers
            .iter()
            .filter(|borrower| {
                borrower.behaviour == Behaviour::PaysInFull
                    && !borrower.blocked
                    && !held.contains(&borrower.customer_id)
            })
            .max_by_key(|borrower| (borrower.limit, std::cmp::Reverse(borrower.index)))
        else {
            return Ok(());
        };
        let now = services.clock.now();
        let claims = StolenAccountClaims {
            risk: &services.risk,
            credit: Some(services.credit.as_ref()),
            gate: None,
        };
        claims
            .claim(
                NewClaim {
                    customer: customer.customer_id.clone(),
                    description: "my phone was stolen on the metro this evening; I ordered \
                                  nothing since"
                        .into(),
                    compromised_at: Some(now.checked_sub(SignedDuration::from_hours(1))?),
                    police_reference: Some("SH-PD-2026-0731".into()),
                },
                &services.caller,
            )
            .await
            .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
        truth.cases_open += 1;
        Ok(())
    }

    /// How many injected attacks the engine caught: a stored decision on one of its events
    /// other than approve.
    pub async fn caught(&self, services: &Services) -> anyhow::Result<u64> {
        let mut caught = 0;
        for attack in &self.attacks {
            let mut any = false;
            for id in &attack.event_ids {
                if let Some(row) = services.risk.store.event_by_id(id).await? {
                    any |= row.action != "approve";
                }
            }
            caught += u64::from(any);
        }
        Ok(caught)
    }
}
