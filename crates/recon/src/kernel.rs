//! Phase two, the matching kernel: classify the ledger and channel records of one partition with a hash table on the key.

use crate::hash::{hash_key, HashedKey, PrecomputedState};
use crate::record::{
    decode_at, RecordReader, RecordView, StatusTable, FEE_ABSENT, RECORD_HEADER_BYTES,
};
use crate::rules::Rules;
use crate::timestamp::TIMESTAMP_ABSENT;
use hashbrown::HashTable;
use std::collections::HashMap;

/// The class of a reconciled record (or of a batch, in batch matching).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Matched,
    MissingInChannel,
    MissingInLedger,
    AmountMismatch,
    StatusMismatch,
    CurrencyMismatch,
    FeeMismatch,
    DuplicateInLedger,
    DuplicateInChannel,
    Timing,
}

impl Class {
    /// Every class, in report order.
    pub const ALL: [Class; 10] = [
        Class::Matched,
        Class::MissingInChannel,
        Class::MissingInLedger,
        Class::AmountMismatch,
        Class::StatusMismatch,
        Class::CurrencyMismatch,
        Class::FeeMismatch,
        Class::DuplicateInLedger,
        Class::DuplicateInChannel,
        Class::Timing,
    ];

    /// The stable name of the class, used in every output.
    pub fn name(self) -> &'static str {
        match self {
            Class::Matched => "matched",
            Class::MissingInChannel => "missing_in_channel",
            Class::MissingInLedger => "missing_in_ledger",
            Class::AmountMismatch => "amount_mismatch",
            Class::StatusMismatch => "status_mismatch",
            Class::CurrencyMismatch => "currency_mismatch",
            Class::FeeMismatch => "fee_mismatch",
            Class::DuplicateInLedger => "duplicate_in_ledger",
            Class::DuplicateInChannel => "duplicate_in_channel",
            Class::Timing => "timing",
        }
    }

    /// The class of a name.
    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|class| class.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Count and sums of one class in one currency.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub count: u64,
    pub ledger_amount: i128,
    pub channel_amount: i128,
}

/// Totals per class, then per currency.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClassTotals {
    pub by_class: [Vec<([u8; 3], Totals)>; 10],
}

impl ClassTotals {
    fn add(&mut self, class: Class, currency: [u8; 3], ledger: i128, channel: i128) {
        let list = &mut self.by_class[class.index()];
        let totals = match list.iter_mut().position(|(code, _)| *code == currency) {
            Some(position) => &mut list[position].1,
            None => {
                list.push((currency, Totals::default()));
                let last = list.len() - 1;
                &mut list[last].1
            }
        };
        totals.count += 1;
        totals.ledger_amount += ledger;
        totals.channel_amount += channel;
    }

    /// Adds another partition's totals.
    pub fn merge(&mut self, other: &ClassTotals) {
        for class in Class::ALL {
            for (currency, totals) in &other.by_class[class.index()] {
                let list = &mut self.by_class[class.index()];
                match list.iter_mut().find(|(code, _)| code == currency) {
                    Some((_, existing)) => {
                        existing.count += totals.count;
                        existing.ledger_amount += totals.ledger_amount;
                        existing.channel_amount += totals.channel_amount;
                    }
                    None => list.push((*currency, *totals)),
                }
            }
        }
        for list in &mut self.by_class {
            list.sort_unstable_by_key(|(currency, _)| *currency);
        }
    }

    /// Count of a class over all currencies.
    pub fn count(&self, class: Class) -> u64 {
        self.by_class[class.index()]
            .iter()
            .map(|(_, totals)| totals.count)
            .sum()
    }
}

/// One side of an exception, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionSide {
    pub block: u32,
    pub line: u32,
    pub amount: i128,
    pub fee: Option<i128>,
    pub timestamp: Option<i64>,
    pub currency: [u8; 3],
    pub status: u8,
    pub batch: Vec<u8>,
    /// Rows summed into this side (more than one only for a batch in batch matching).
    pub rows: u32,
}

impl ExceptionSide {
    fn from_view(view: &RecordView<'_>) -> ExceptionSide {
        ExceptionSide {
            block: view.block,
            line: view.line,
            amount: i128::from(view.amount),
            fee: (view.fee != FEE_ABSENT).then_some(i128::from(view.fee)),
            timestamp: (view.timestamp != TIMESTAMP_ABSENT).then_some(view.timestamp),
            currency: view.currency,
            status: view.status,
            batch: view.batch.to_vec(),
            rows: 1,
        }
    }
}

/// A record (or batch) that did not match, with both sides' fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub class: Class,
    pub key: Vec<u8>,
    pub ledger: Option<ExceptionSide>,
    pub channel: Option<ExceptionSide>,
}

/// What matching one partition produced.
#[derive(Debug, Default)]
pub struct PartitionOutcome {
    pub totals: ClassTotals,
    pub exceptions: Vec<Exception>,
}

/// Everything the kernel needs besides the records.
#[derive(Debug, Clone)]
pub struct KernelSettings<'a> {
    pub rules: &'a Rules,
    pub statuses: &'a StatusTable,
    /// Ledger-only records at or after this instant are timing differences.
    pub timing_from: Option<i64>,
}

const NONE: u32 = u32::MAX;

/// The hash the ledger table uses for a key's low 32 hash bits, spread over 64 bits so that
/// both the bucket (low bits) and the tag (top bits) vary.
#[inline]
fn table_hash(short_hash: u32) -> u64 {
    u64::from(short_hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Sums and consistency of the rows of one batch (batch matching only).
#[derive(Debug, Clone, Copy)]
struct BatchAggregate {
    amount_sum: i128,
    fee_sum: Option<i128>,
    rows: u32,
    mixed_currency: bool,
    mixed_status: bool,
}

/// The ledger primary of a key as the comparison sees it: its record, or the sums of its batch.
struct LedgerPrimary<'a> {
    view: RecordView<'a>,
    amount_sum: i128,
    fee_sum: Option<i128>,
    rows: u32,
    mixed_currency: bool,
    mixed_status: bool,
}

impl<'a> LedgerPrimary<'a> {
    fn new(view: RecordView<'a>, aggregate: Option<&BatchAggregate>) -> LedgerPrimary<'a> {
        match aggregate {
            Some(aggregate) => LedgerPrimary {
                view,
                amount_sum: aggregate.amount_sum,
                fee_sum: aggregate.fee_sum,
                rows: aggregate.rows,
                mixed_currency: aggregate.mixed_currency,
                mixed_status: aggregate.mixed_status,
            },
            None => LedgerPrimary {
                view,
                amount_sum: i128::from(view.amount),
                fee_sum: (view.fee != FEE_ABSENT).then_some(i128::from(view.fee)),
                rows: 1,
                mixed_currency: false,
                mixed_status: false,
            },
        }
    }
}

fn records<'a>(segments: &'a [Vec<u8>]) -> impl Iterator<Item = RecordView<'a>> + 'a {
    segments
        .iter()
        .flat_map(|segment| RecordReader::new(segment))
}

/// Every record of a list of segments with where it is: (segment, offset, record).
fn located_records<'a>(
    segments: &'a [Vec<u8>],
) -> impl Iterator<Item = (u32, u32, RecordView<'a>)> + 'a {
    segments
        .iter()
        .enumerate()
        .flat_map(|(segment_index, segment)| {
            let mut offset = 0usize;
            std::iter::from_fn(move || {
                let (view, next) = decode_at(segment, offset)?;
                let here = offset as u32;
                offset = next;
                Some((segment_index as u32, here, view))
            })
        })
}

/// Matches the ledger and channel records of one partition.
pub fn reconcile_partition(
    ledger: &[Vec<u8>],
    channel: &[Vec<u8>],
    settings: &KernelSettings<'_>,
) -> PartitionOutcome {
    let rules = settings.rules;
    let mut outcome = PartitionOutcome::default();
    let ledger_bytes: usize = ledger.iter().map(Vec::len).sum();
    let estimate = ledger_bytes / (RECORD_HEADER_BYTES + 16);
    // Ledger primaries: where each record is, whether a channel row matched it.
    let mut primaries: Vec<(u32, u32)> = Vec::with_capacity(estimate);
    let mut matched: Vec<bool> = Vec::with_capacity(estimate);
    let mut aggregates: Vec<BatchAggregate> = Vec::new();
    // The table holds (primary index, low 32 bits of the key hash): 8 bytes a key, so that a
    // partition's table stays in the core's cache; keys are compared in the ledger buffer.
    let mut table: HashTable<(u32, u32)> = HashTable::with_capacity(estimate);
    for (segment, offset, view) in located_records(ledger) {
        let short_hash = hash_key(view.key) as u32;
        let key_at = |index: u32| -> &[u8] {
            let (segment, offset) = primaries[index as usize];
            decode_at(&ledger[segment as usize], offset as usize)
                .map_or(&[], |(found, _)| found.key)
        };
        let entry = table.entry(
            table_hash(short_hash),
            |&(index, hash)| hash == short_hash && key_at(index) == view.key,
            |&(_, hash)| table_hash(hash),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(occupied) => {
                if rules.batch_enabled {
                    let index = occupied.get().0 as usize;
                    let (first_segment, first_offset) = primaries[index];
                    let first_view =
                        decode_at(&ledger[first_segment as usize], first_offset as usize)
                            .map(|(view, _)| view);
                    let aggregate = &mut aggregates[index];
                    aggregate.amount_sum += i128::from(view.amount);
                    aggregate.fee_sum = match (aggregate.fee_sum, view.fee) {
                        (Some(sum), fee) if fee != FEE_ABSENT => Some(sum + i128::from(fee)),
                        _ => None,
                    };
                    aggregate.rows += 1;
                    if let Some(first) = first_view {
                        aggregate.mixed_currency |= first.currency != view.currency;
                        aggregate.mixed_status |=
                            !settings.statuses.equivalent(first.status, view.status);
                    }
                } else {
                    outcome.totals.add(
                        Class::DuplicateInLedger,
                        view.currency,
                        i128::from(view.amount),
                        0,
                    );
                    outcome.exceptions.push(Exception {
                        class: Class::DuplicateInLedger,
                        key: view.key.to_vec(),
                        ledger: Some(ExceptionSide::from_view(&view)),
                        channel: None,
                    });
                }
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert((primaries.len() as u32, short_hash));
                primaries.push((segment, offset));
                matched.push(false);
                if rules.batch_enabled {
                    aggregates.push(BatchAggregate {
                        amount_sum: i128::from(view.amount),
                        fee_sum: (view.fee != FEE_ABSENT).then_some(i128::from(view.fee)),
                        rows: 1,
                        mixed_currency: false,
                        mixed_status: false,
                    });
                }
            }
        }
    }
    let primary = |index: usize| -> Option<LedgerPrimary<'_>> {
        let (segment, offset) = primaries[index];
        let (view, _) = decode_at(&ledger[segment as usize], offset as usize)?;
        Some(LedgerPrimary::new(view, aggregates.get(index)))
    };
    let mut channel_only: HashMap<HashedKey<'_>, (), PrecomputedState> = HashMap::default();
    for view in records(channel) {
        let key = HashedKey {
            hash: hash_key(view.key),
            bytes: view.key,
        };
        let short_hash = key.hash as u32;
        let index = table
            .find(table_hash(short_hash), |&(index, hash)| {
                hash == short_hash && {
                    let (segment, offset) = primaries[index as usize];
                    decode_at(&ledger[segment as usize], offset as usize)
                        .is_some_and(|(found, _)| found.key == view.key)
                }
            })
            .map_or(NONE, |&(index, _)| index);
        if index == NONE {
            let class = if channel_only.insert(key, ()).is_none() {
                Class::MissingInLedger
            } else {
                Class::DuplicateInChannel
            };
            outcome
                .totals
                .add(class, view.currency, 0, i128::from(view.amount));
            outcome.exceptions.push(Exception {
                class,
                key: view.key.to_vec(),
                ledger: None,
                channel: Some(ExceptionSide::from_view(&view)),
            });
            continue;
        }
        let index = index as usize;
        let Some(entry) = primary(index) else {
            continue;
        };
        if matched[index] {
            outcome.totals.add(
                Class::DuplicateInChannel,
                view.currency,
                0,
                i128::from(view.amount),
            );
            outcome.exceptions.push(Exception {
                class: Class::DuplicateInChannel,
                key: view.key.to_vec(),
                ledger: None,
                channel: Some(ExceptionSide::from_view(&view)),
            });
            continue;
        }
        matched[index] = true;
        let class = classify(&entry, &view, settings);
        outcome.totals.add(
            class,
            entry.view.currency,
            entry.amount_sum,
            i128::from(view.amount),
        );
        if class != Class::Matched {
            outcome.exceptions.push(Exception {
                class,
                key: view.key.to_vec(),
                ledger: Some(ledger_side(&entry)),
                channel: Some(ExceptionSide::from_view(&view)),
            });
        }
    }
    for index in (0..primaries.len()).filter(|index| !matched[*index]) {
        let Some(entry) = primary(index) else {
            continue;
        };
        let timestamp = entry.view.timestamp;
        let class = match settings.timing_from {
            Some(from) if timestamp != TIMESTAMP_ABSENT && timestamp >= from => Class::Timing,
            _ => Class::MissingInChannel,
        };
        outcome
            .totals
            .add(class, entry.view.currency, entry.amount_sum, 0);
        outcome.exceptions.push(Exception {
            class,
            key: entry.view.key.to_vec(),
            ledger: Some(ledger_side(&entry)),
            channel: None,
        });
    }
    outcome
}

fn ledger_side(entry: &LedgerPrimary<'_>) -> ExceptionSide {
    ExceptionSide {
        amount: entry.amount_sum,
        fee: entry.fee_sum,
        rows: entry.rows,
        ..ExceptionSide::from_view(&entry.view)
    }
}

#[inline]
fn classify(
    entry: &LedgerPrimary<'_>,
    channel: &RecordView<'_>,
    settings: &KernelSettings<'_>,
) -> Class {
    let rules = settings.rules;
    let ledger = &entry.view;
    if entry.mixed_currency || ledger.currency != channel.currency {
        return Class::CurrencyMismatch;
    }
    let amounts_agree = match i64::try_from(entry.amount_sum) {
        Ok(sum) => rules.amounts_agree(sum, channel.amount),
        Err(_) => false,
    };
    if !amounts_agree {
        return Class::AmountMismatch;
    }
    if rules.status_check
        && (entry.mixed_status || !settings.statuses.equivalent(ledger.status, channel.status))
    {
        return Class::StatusMismatch;
    }
    if rules.fee_check && channel.fee != FEE_ABSENT {
        if let Some(fee) = entry.fee_sum {
            if (fee - i128::from(channel.fee)).abs() > i128::from(rules.fee_tolerance_minor) {
                return Class::FeeMismatch;
            }
        }
    }
    Class::Matched
}
