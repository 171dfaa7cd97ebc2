//! Header and trailer lines of bank files: their control totals (record count, amount sum, fee sum) read and checked against the rows.
//!
//! Banks frame a settlement file with lines that are not transactions: a header (file name,
//! date, sometimes the totals) and one or more trailers holding control totals. Such a line
//! is never a bad row. Its totals are checked against what was read, and a difference is a
//! control exception, a class of its own in the summary: it says the file itself is
//! incomplete or altered, which no row-by-row comparison with the ledger can say.
//!
//! Trailer lines are told from rows by the bytes they start with (`trailer.prefix`), on each
//! line of every block as it is parsed, so they may be anywhere and blocks stay independent;
//! a row after the last trailer is then an exception of its own. Header lines are the first
//! `header.lines` lines, read before the blocks.
//!
//! What a total is compared with: a count covering the whole file (no currency on its line)
//! counts every data line, read or bad, because the bank counted every record it wrote; a
//! count for one currency counts that currency's rows read (a bad row's currency is not
//! known). Sums are of the rows read: when rows were bad, the exception says so.

use crate::amount::{explain, parse_amount, AmountFormat};
use crate::layout::{Encoding, FileFormat, Layout};
use crate::record::trim_ascii;
use crate::text::split_csv_line;
use serde::Serialize;

/// Where a control field is in its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlPosition {
    /// 0-based CSV column.
    Column(usize),
    /// 0-based first byte and width in bytes.
    Range { start: usize, width: usize },
}

/// The control fields a header or trailer line carries; each is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControlFields {
    pub count: Option<ControlPosition>,
    pub sum: Option<(ControlPosition, AmountFormat)>,
    pub fee_sum: Option<(ControlPosition, AmountFormat)>,
    /// The currency the totals are for; without it (or when empty) they cover the whole file.
    pub currency: Option<ControlPosition>,
}

/// `[header]` of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLines {
    /// Lines at the top of the file, before the column names of a CSV file with `csv.header`.
    pub lines: usize,
    /// When set, the first header line must start with it (else `header_missing`).
    pub prefix: Option<String>,
    /// 1-based header line holding the control fields.
    pub totals_line: usize,
    pub fields: ControlFields,
}

/// `[trailer]` of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailerLines {
    /// A line that starts with these characters is a trailer line, not a row.
    pub prefix: String,
    /// A file without any trailer line is a `trailer_missing` exception.
    pub required: bool,
    pub fields: ControlFields,
}

impl ControlFields {
    fn is_empty(&self) -> bool {
        self.count.is_none() && self.sum.is_none() && self.fee_sum.is_none()
    }
}

impl Layout {
    /// Whether rows must be totalled per currency (some header or trailer declares totals).
    pub fn has_control_totals(&self) -> bool {
        self.header
            .as_ref()
            .is_some_and(|header| !header.fields.is_empty())
            || self
                .trailer
                .as_ref()
                .is_some_and(|trailer| !trailer.fields.is_empty())
    }

    /// The trailer prefix as the bytes it has in a line handed to the row parser: UTF-8 for
    /// CSV (blocks are decoded first), the file's own encoding for fixed width (fields are
    /// decoded one by one, positions being bytes).
    pub fn trailer_prefix_bytes(&self) -> Option<Vec<u8>> {
        let trailer = self.trailer.as_ref()?;
        Some(match (self.format, self.encoding) {
            (FileFormat::FixedWidth, Encoding::Gbk) => {
                encoding_rs::GBK.encode(&trailer.prefix).0.into_owned()
            }
            _ => trailer.prefix.as_bytes().to_vec(),
        })
    }
}

/// Which kind of line declared a total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlOrigin {
    Header,
    Trailer,
}

impl ControlOrigin {
    pub fn name(self) -> &'static str {
        match self {
            ControlOrigin::Header => "header",
            ControlOrigin::Trailer => "trailer",
        }
    }
}

/// The totals one header or trailer line declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub origin: ControlOrigin,
    /// 1-based line in the file.
    pub line: u64,
    pub count: Option<u64>,
    pub sum: Option<i64>,
    pub fee_sum: Option<i64>,
    pub currency: Option<[u8; 3]>,
}

/// Rows read of one currency, totalled while they are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyTotal {
    pub currency: [u8; 3],
    pub rows: u64,
    pub amount: i128,
    pub fee: i128,
}

/// Adds one row to per-currency totals (a file has few currencies: a short list beats a map).
#[inline]
pub fn add_to_totals(totals: &mut Vec<CurrencyTotal>, currency: [u8; 3], amount: i64, fee: i64) {
    let fee = i128::from(fee);
    match totals.iter_mut().find(|total| total.currency == currency) {
        Some(total) => {
            total.rows += 1;
            total.amount += i128::from(amount);
            total.fee += fee;
        }
        None => totals.push(CurrencyTotal {
            currency,
            rows: 1,
            amount: i128::from(amount),
            fee,
        }),
    }
}

/// Merges the totals of one block into the totals of its file.
pub fn merge_totals(into: &mut Vec<CurrencyTotal>, from: &[CurrencyTotal]) {
    for part in from {
        match into
            .iter_mut()
            .find(|total| total.currency == part.currency)
        {
            Some(total) => {
                total.rows += part.rows;
                total.amount += part.amount;
                total.fee += part.fee;
            }
            None => into.push(*part),
        }
    }
}

/// Reads the control fields of one header or trailer line. `line` is as the row parser sees
/// it: UTF-8 for CSV, the file's bytes for fixed width. `section` (`header`, `trailer`)
/// names the layout keys in messages.
pub fn read_control_line(
    line: &[u8],
    layout: &Layout,
    fields: &ControlFields,
    origin: ControlOrigin,
    line_number: u64,
) -> Result<Declared, String> {
    let section = origin.name();
    let columns = match layout.format {
        FileFormat::Csv => split_csv_line(line, &layout.csv),
        _ => Vec::new(),
    };
    let text = |position: ControlPosition, name: &str| -> Result<String, String> {
        let raw: &[u8] = match position {
            ControlPosition::Column(column) => {
                columns.get(column).map(Vec::as_slice).ok_or_else(|| {
                    format!(
                        "{section}.{name}: the line has {} fields, the layout reads field {}",
                        columns.len(),
                        column + 1
                    )
                })?
            }
            ControlPosition::Range { start, width } => {
                line.get(start..start + width).ok_or_else(|| {
                    format!(
                        "{section}.{name}: the line has {} bytes, the field takes bytes {} to {}",
                        line.len(),
                        start + 1,
                        start + width
                    )
                })?
            }
        };
        let decoded = match (layout.format, layout.encoding) {
            (FileFormat::FixedWidth, Encoding::Gbk) => {
                let (value, had_errors) = encoding_rs::GBK.decode_without_bom_handling(raw);
                if had_errors {
                    return Err(format!("{section}.{name}: invalid GBK byte sequence"));
                }
                value.into_owned()
            }
            _ => String::from_utf8_lossy(raw).into_owned(),
        };
        Ok(String::from_utf8_lossy(trim_ascii(decoded.as_bytes())).into_owned())
    };
    let amount = |spec: &Option<(ControlPosition, AmountFormat)>,
                  name: &str|
     -> Result<Option<i64>, String> {
        let Some((position, format)) = spec else {
            return Ok(None);
        };
        let value = text(*position, name)?;
        if value.is_empty() {
            return Ok(None);
        }
        parse_amount(value.as_bytes(), format)
            .map(Some)
            .map_err(|reason| {
                let key = format!("{section}.{name}");
                format!("{key}: {}", explain(value.as_bytes(), format, reason, &key))
            })
    };
    let count = match fields.count {
        Some(position) => {
            let value = text(position, "count")?;
            if value.is_empty() {
                None
            } else {
                Some(value.parse::<u64>().map_err(|_| {
                    format!("{section}.count: {value:?} is not a whole number of records")
                })?)
            }
        }
        None => None,
    };
    let currency = match fields.currency {
        Some(position) => {
            let value = text(position, "currency")?;
            match value.as_bytes() {
                [] => None,
                [first, second, third] if value.bytes().all(|byte| byte.is_ascii_alphabetic()) => {
                    Some([
                        first.to_ascii_uppercase(),
                        second.to_ascii_uppercase(),
                        third.to_ascii_uppercase(),
                    ])
                }
                _ => {
                    return Err(format!(
                        "{section}.currency: {value:?} is not a three-letter code"
                    ))
                }
            }
        }
        None => None,
    };
    Ok(Declared {
        origin,
        line: line_number,
        count,
        sum: amount(&fields.sum, "sum")?,
        fee_sum: amount(&fields.fee_sum, "fee_sum")?,
        currency,
    })
}

/// The kinds of control exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    /// A declared record count differs from the rows.
    CountMismatch,
    /// A declared amount sum differs from the sum of the rows read.
    SumMismatch,
    /// A declared fee sum differs from the sum of the rows' fees.
    FeeSumMismatch,
    /// The layout requires a trailer and the file has none, or a currency of the rows has
    /// no trailer while others have theirs.
    TrailerMissing,
    /// Two trailers (or two header totals) for the same currency, or both for the whole file.
    TrailerRepeated,
    /// Rows follow the last trailer line: the trailer does not close the file.
    RowsAfterTrailer,
    /// The file is shorter than its header, or the header does not start with its prefix.
    HeaderMissing,
    /// A header or trailer line whose control fields cannot be read.
    ControlUnreadable,
}

impl ControlKind {
    pub fn name(self) -> &'static str {
        match self {
            ControlKind::CountMismatch => "count_mismatch",
            ControlKind::SumMismatch => "sum_mismatch",
            ControlKind::FeeSumMismatch => "fee_sum_mismatch",
            ControlKind::TrailerMissing => "trailer_missing",
            ControlKind::TrailerRepeated => "trailer_repeated",
            ControlKind::RowsAfterTrailer => "rows_after_trailer",
            ControlKind::HeaderMissing => "header_missing",
            ControlKind::ControlUnreadable => "control_unreadable",
        }
    }
}

/// One failed control: the file's own totals or framing do not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlException {
    pub kind: ControlKind,
    pub file: String,
    /// The header or trailer line, when there is one.
    pub line: Option<u64>,
    /// The currency of the totals; none when they cover the whole file.
    pub currency: Option<String>,
    /// What the line declares (a count, or minor units).
    pub declared: Option<i128>,
    /// What the rows give.
    pub found: Option<i128>,
    pub detail: String,
}

/// What the scan of one file saw of its header and trailer lines.
#[derive(Debug, Default)]
pub struct ControlScan {
    pub declared: Vec<Declared>,
    /// Exceptions found while reading (unreadable lines, a missing header).
    pub exceptions: Vec<ControlException>,
    /// 1-based lines of the trailer lines, readable or not.
    pub trailer_lines: Vec<u64>,
    /// 1-based line of the last data line (row or bad row); 0 when there is none.
    pub last_row_line: u64,
    pub totals: Vec<CurrencyTotal>,
}

/// The outcome of checking one file's controls.
#[derive(Debug, Default)]
pub struct ControlOutcome {
    /// Totals compared (each count, sum and fee sum of each line).
    pub checked: u64,
    pub exceptions: Vec<ControlException>,
}

/// Checks a file's declared totals and framing against what was read: `rows` and
/// `bad_rows` are the file's counts.
pub fn check(
    layout: &Layout,
    file: &str,
    scan: &ControlScan,
    rows: u64,
    bad_rows: u64,
) -> ControlOutcome {
    let mut outcome = ControlOutcome {
        checked: 0,
        exceptions: scan.exceptions.clone(),
    };
    let exception = |kind: ControlKind,
                     line: Option<u64>,
                     currency: Option<[u8; 3]>,
                     declared: Option<i128>,
                     found: Option<i128>,
                     detail: String| ControlException {
        kind,
        file: file.to_owned(),
        line,
        currency: currency.map(|code| String::from_utf8_lossy(&code).into_owned()),
        declared,
        found,
        detail,
    };
    if let Some(trailer) = &layout.trailer {
        if trailer.required && scan.trailer_lines.is_empty() {
            outcome.exceptions.push(exception(
                ControlKind::TrailerMissing,
                None,
                None,
                None,
                None,
                format!(
                    "no line starts with the trailer prefix {:?}: the file may be cut short",
                    trailer.prefix
                ),
            ));
        }
        if let Some(&last_trailer) = scan.trailer_lines.iter().max() {
            if scan.last_row_line > last_trailer {
                outcome.exceptions.push(exception(
                    ControlKind::RowsAfterTrailer,
                    Some(last_trailer),
                    None,
                    None,
                    None,
                    format!(
                        "data lines follow the last trailer line, up to line {}",
                        scan.last_row_line
                    ),
                ));
            }
        }
    }
    let bad_note = if bad_rows > 0 {
        format!("; {bad_rows} bad rows of this file are not in the sums")
    } else {
        String::new()
    };
    let mut seen: Vec<(ControlOrigin, Option<[u8; 3]>)> = Vec::new();
    for declared in &scan.declared {
        let scope = (declared.origin, declared.currency);
        if seen.contains(&scope) {
            outcome.exceptions.push(exception(
                ControlKind::TrailerRepeated,
                Some(declared.line),
                declared.currency,
                None,
                None,
                format!(
                    "a second {} line with totals for {}: each is checked on its own",
                    declared.origin.name(),
                    scope_name(declared.currency)
                ),
            ));
        }
        seen.push(scope);
        let (found_rows, found_amount, found_fee) = match declared.currency {
            Some(currency) => scan
                .totals
                .iter()
                .find(|total| total.currency == currency)
                .map_or((0, 0, 0), |total| (total.rows, total.amount, total.fee)),
            None => scan.totals.iter().fold(
                (rows + bad_rows, 0i128, 0i128),
                |(count, amount, fee), total| (count, amount + total.amount, fee + total.fee),
            ),
        };
        let line = Some(declared.line);
        let origin = declared.origin.name();
        if let Some(count) = declared.count {
            outcome.checked += 1;
            if u128::from(count) != u128::from(found_rows) {
                let counted = if declared.currency.is_some() {
                    format!(
                        "rows read in {}{}",
                        scope_name(declared.currency),
                        if bad_rows > 0 {
                            format!(
                                " ({bad_rows} bad rows of this file are not counted by currency)"
                            )
                        } else {
                            String::new()
                        }
                    )
                } else {
                    "data lines, read or bad".to_owned()
                };
                outcome.exceptions.push(exception(
                    ControlKind::CountMismatch,
                    line,
                    declared.currency,
                    Some(i128::from(count)),
                    Some(i128::from(found_rows)),
                    format!("the {origin} declares {count} records, the file has {found_rows} {counted}"),
                ));
            }
        }
        if let Some(sum) = declared.sum {
            outcome.checked += 1;
            if i128::from(sum) != found_amount {
                outcome.exceptions.push(exception(
                    ControlKind::SumMismatch,
                    line,
                    declared.currency,
                    Some(i128::from(sum)),
                    Some(found_amount),
                    format!(
                        "the {origin} declares an amount sum of {sum}, the rows of {} sum to {found_amount} (minor units){bad_note}",
                        scope_name(declared.currency)
                    ),
                ));
            }
        }
        if let Some(fee_sum) = declared.fee_sum {
            outcome.checked += 1;
            if i128::from(fee_sum) != found_fee {
                outcome.exceptions.push(exception(
                    ControlKind::FeeSumMismatch,
                    line,
                    declared.currency,
                    Some(i128::from(fee_sum)),
                    Some(found_fee),
                    format!(
                        "the {origin} declares a fee sum of {fee_sum}, the rows of {} sum to {found_fee} (minor units){bad_note}",
                        scope_name(declared.currency)
                    ),
                ));
            }
        }
    }
    // Trailers per currency: a currency of the rows without one is not controlled at all.
    let trailers: Vec<&Declared> = scan
        .declared
        .iter()
        .filter(|declared| declared.origin == ControlOrigin::Trailer)
        .collect();
    let whole_file = trailers.iter().any(|declared| declared.currency.is_none());
    if !whole_file && trailers.iter().any(|declared| declared.currency.is_some()) {
        for total in &scan.totals {
            if !trailers
                .iter()
                .any(|declared| declared.currency == Some(total.currency))
            {
                outcome.exceptions.push(exception(
                    ControlKind::TrailerMissing,
                    None,
                    Some(total.currency),
                    None,
                    Some(i128::from(total.rows)),
                    format!(
                        "{} rows in {} and no trailer line for that currency",
                        total.rows,
                        scope_name(Some(total.currency))
                    ),
                ));
            }
        }
    }
    outcome
        .exceptions
        .sort_by_key(|exception| (exception.line.unwrap_or(u64::MAX), exception.kind));
    outcome
}

fn scope_name(currency: Option<[u8; 3]>) -> String {
    match currency {
        Some(code) => String::from_utf8_lossy(&code).into_owned(),
        None => "the whole file".to_owned(),
    }
}
