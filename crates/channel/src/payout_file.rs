//! The bank's batch payout file and its return file: what Tally sends to pay many bank
//! accounts at once, and what the bank answers for each row (paid, failed, returned).
//!
//! Both are CSV (RFC 4180 quoting, `\n` line ends), UTF-8 by default or GBK for banks that
//! still read it, one record per line, the first field its type:
//!
//! ```text
//! payout file                                        return file
//! H,batch,value_date,currency,record_count,amount_sum H,batch,value_date,currency,record_count
//! D,sequence,reference,account_number,account_name,amount
//!                                                    D,sequence,reference,amount,status,reason
//! ```
//!
//! Amounts are decimal strings in the currency's minor digits (`1234.50`); `status` is
//! `PAID`, `FAILED` (the bank did not send it: `reason` says why) or `RETURNED` (sent, and
//! the receiving bank sent it back). The header's count and sum are control totals: a file
//! whose rows do not add up to them is refused whole, as banks refuse it. The reference is
//! the bank's idempotency key: a row under a reference the bank has already answered is
//! answered the same again and paid once.

use encoding_rs::GBK;
use jiff::civil::Date;
use tally_core::{Amount, Currency};

/// How a file's text is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileEncoding {
    #[default]
    Utf8,
    Gbk,
}

impl FileEncoding {
    /// `utf-8` (or `utf8`) and `gbk`, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(FileEncoding::Utf8),
            "gbk" => Some(FileEncoding::Gbk),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            FileEncoding::Utf8 => "utf-8",
            FileEncoding::Gbk => "gbk",
        }
    }

    /// The text in this encoding; refused when a character has no GBK form (encoding_rs
    /// would write it as an HTML escape, which a bank would pay to a wrong name).
    pub fn encode(&self, text: &str) -> Result<Vec<u8>, PayoutFileError> {
        match self {
            FileEncoding::Utf8 => Ok(text.as_bytes().to_vec()),
            FileEncoding::Gbk => {
                let (bytes, _, unmappable) = GBK.encode(text);
                if unmappable {
                    return Err(PayoutFileError::new(
                        "a character has no GBK form; send the file as UTF-8",
                    ));
                }
                Ok(bytes.into_owned())
            }
        }
    }

    /// The bytes as text; refused when they are not valid in this encoding.
    pub fn decode(&self, bytes: &[u8]) -> Result<String, PayoutFileError> {
        match self {
            FileEncoding::Utf8 => String::from_utf8(bytes.to_vec())
                .map_err(|error| PayoutFileError::new(format!("not UTF-8: {error}"))),
            FileEncoding::Gbk => GBK
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|text| text.into_owned())
                .ok_or_else(|| PayoutFileError::new("not GBK: a byte sequence has no character")),
        }
    }
}

/// Why a file was refused: the line (1-based, when one is to blame) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|line| format!("line {line}: ")).unwrap_or_default())]
pub struct PayoutFileError {
    pub line: Option<u64>,
    pub message: String,
}

impl PayoutFileError {
    fn new(message: impl Into<String>) -> Self {
        PayoutFileError {
            line: None,
            message: message.into(),
        }
    }

    fn at(line: u64, message: impl Into<String>) -> Self {
        PayoutFileError {
            line: Some(line),
            message: message.into(),
        }
    }
}

/// One payment the bank is asked to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutFileRow {
    /// 1, 2, … in the file.
    pub sequence: u64,
    /// Tally's payout id: the bank pays a reference once.
    pub reference: String,
    pub account_number: String,
    pub account_name: String,
    pub amount: Amount,
}

/// A batch payout file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutFile {
    pub batch: String,
    pub value_date: Date,
    pub currency: Currency,
    pub rows: Vec<PayoutFileRow>,
}

/// What the bank did with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnStatus {
    Paid,
    /// Not sent (`reason`: `invalid_account`, `insufficient_funds`, …).
    Failed {
        reason: String,
    },
    /// Sent, and sent back by the receiving bank (`account_closed`, …).
    Returned {
        reason: String,
    },
}

impl ReturnStatus {
    fn fields(&self) -> (&'static str, &str) {
        match self {
            ReturnStatus::Paid => ("PAID", ""),
            ReturnStatus::Failed { reason } => ("FAILED", reason),
            ReturnStatus::Returned { reason } => ("RETURNED", reason),
        }
    }
}

/// One row of a return file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRow {
    pub sequence: u64,
    pub reference: String,
    pub amount: Amount,
    pub status: ReturnStatus,
}

/// The bank's answer to a payout file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnFile {
    pub batch: String,
    pub value_date: Date,
    pub currency: Currency,
    pub rows: Vec<ReturnRow>,
}

fn write_lines(
    lines: Vec<Vec<String>>,
    encoding: FileEncoding,
) -> Result<Vec<u8>, PayoutFileError> {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for line in lines {
        writer
            .write_record(&line)
            .map_err(|error| PayoutFileError::new(error.to_string()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|error| PayoutFileError::new(error.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|error| PayoutFileError::new(error.to_string()))?;
    encoding.encode(&text)
}

/// The file's records, each with its line number, every one of `width` fields.
fn read_lines(
    bytes: &[u8],
    encoding: FileEncoding,
    header_width: usize,
    row_width: usize,
) -> Result<Vec<(u64, Vec<String>)>, PayoutFileError> {
    let text = encoding.decode(bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut lines = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index as u64 + 1;
        let record = record.map_err(|error| PayoutFileError::at(line, error.to_string()))?;
        let fields: Vec<String> = record.iter().map(str::to_string).collect();
        let expected = match fields.first().map(String::as_str) {
            Some("H") if line == 1 => header_width,
            Some("H") => return Err(PayoutFileError::at(line, "a second header record")),
            Some("D") if line > 1 => row_width,
            Some("D") => {
                return Err(PayoutFileError::at(
                    line,
                    "the file must start with its H record",
                ))
            }
            other => {
                return Err(PayoutFileError::at(
                    line,
                    format!("record type {other:?} is neither H nor D"),
                ))
            }
        };
        if fields.len() != expected {
            return Err(PayoutFileError::at(
                line,
                format!("{} fields, expected {expected}", fields.len()),
            ));
        }
        lines.push((line, fields));
    }
    if lines.is_empty() {
        return Err(PayoutFileError::new("the file is empty: no H record"));
    }
    Ok(lines)
}

fn date(line: u64, text: &str) -> Result<Date, PayoutFileError> {
    text.parse()
        .map_err(|_| PayoutFileError::at(line, format!("value date {text:?} is not YYYY-MM-DD")))
}

fn currency(line: u64, text: &str) -> Result<Currency, PayoutFileError> {
    Currency::from_code(text).map_err(|error| PayoutFileError::at(line, error.to_string()))
}

fn amount(line: u64, text: &str, currency: Currency) -> Result<Amount, PayoutFileError> {
    Amount::parse(text, currency)
        .map_err(|error| PayoutFileError::at(line, format!("amount {text:?}: {error}")))
}

fn count(line: u64, text: &str) -> Result<u64, PayoutFileError> {
    text.parse()
        .map_err(|_| PayoutFileError::at(line, format!("{text:?} is not a count")))
}

/// Checks the rows are numbered 1, 2, … and their references unique.
fn check_sequence<'a>(
    rows: impl Iterator<Item = (u64, u64, &'a str)>,
) -> Result<(), PayoutFileError> {
    let mut seen = std::collections::HashSet::new();
    for (expected, (line, sequence, reference)) in (1_u64..).zip(rows) {
        if sequence != expected {
            return Err(PayoutFileError::at(
                line,
                format!("sequence {sequence}, expected {expected}"),
            ));
        }
        if !seen.insert(reference.to_string()) {
            return Err(PayoutFileError::at(
                line,
                format!("reference {reference} appears twice"),
            ));
        }
    }
    Ok(())
}

impl PayoutFile {
    /// The rows' sum (zero for no rows).
    pub fn sum(&self) -> Result<Amount, PayoutFileError> {
        self.rows
            .iter()
            .try_fold(Amount::zero(self.currency), |sum, row| {
                sum.checked_add(row.amount)
                    .map_err(|error| PayoutFileError::new(error.to_string()))
            })
    }

    pub fn to_bytes(&self, encoding: FileEncoding) -> Result<Vec<u8>, PayoutFileError> {
        let mut lines = vec![vec![
            "H".to_string(),
            self.batch.clone(),
            self.value_date.to_string(),
            self.currency.code().to_string(),
            self.rows.len().to_string(),
            self.sum()?.to_decimal_string(),
        ]];
        for row in &self.rows {
            lines.push(vec![
                "D".to_string(),
                row.sequence.to_string(),
                row.reference.clone(),
                row.account_number.clone(),
                row.account_name.clone(),
                row.amount.to_decimal_string(),
            ]);
        }
        write_lines(lines, encoding)
    }

    /// Reads a payout file, checking its control totals and sequence.
    pub fn parse(bytes: &[u8], encoding: FileEncoding) -> Result<Self, PayoutFileError> {
        let lines = read_lines(bytes, encoding, 6, 6)?;
        let (_, header) = &lines[0];
        let currency = currency(1, &header[3])?;
        let mut file = PayoutFile {
            batch: header[1].clone(),
            value_date: date(1, &header[2])?,
            currency,
            rows: Vec::new(),
        };
        for (line, fields) in &lines[1..] {
            let row = PayoutFileRow {
                sequence: count(*line, &fields[1])?,
                reference: fields[2].clone(),
                account_number: fields[3].clone(),
                account_name: fields[4].clone(),
                amount: amount(*line, &fields[5], currency)?,
            };
            if !row.amount.is_positive() {
                return Err(PayoutFileError::at(*line, "an amount that is not positive"));
            }
            file.rows.push(row);
        }
        check_sequence(
            lines[1..]
                .iter()
                .zip(&file.rows)
                .map(|((line, _), row)| (*line, row.sequence, row.reference.as_str())),
        )?;
        let record_count = count(1, &header[4])?;
        let amount_sum = amount(1, &header[5], currency)?;
        if record_count != file.rows.len() as u64 || amount_sum != file.sum()? {
            return Err(PayoutFileError::at(
                1,
                format!(
                    "control totals {record_count} rows, {amount_sum}, but the file has {} rows, {}",
                    file.rows.len(),
                    file.sum()?
                ),
            ));
        }
        Ok(file)
    }
}

impl ReturnFile {
    pub fn to_bytes(&self, encoding: FileEncoding) -> Result<Vec<u8>, PayoutFileError> {
        let mut lines = vec![vec![
            "H".to_string(),
            self.batch.clone(),
            self.value_date.to_string(),
            self.currency.code().to_string(),
            self.rows.len().to_string(),
        ]];
        for row in &self.rows {
            let (status, reason) = row.status.fields();
            lines.push(vec![
                "D".to_string(),
                row.sequence.to_string(),
                row.reference.clone(),
                row.amount.to_decimal_string(),
                status.to_string(),
                reason.to_string(),
            ]);
        }
        write_lines(lines, encoding)
    }

    /// Reads a return file, checking its record count and sequence.
    pub fn parse(bytes: &[u8], encoding: FileEncoding) -> Result<Self, PayoutFileError> {
        let lines = read_lines(bytes, encoding, 5, 6)?;
        let (_, header) = &lines[0];
        let currency = currency(1, &header[3])?;
        let mut file = ReturnFile {
            batch: header[1].clone(),
            value_date: date(1, &header[2])?,
            currency,
            rows: Vec::new(),
        };
        for (line, fields) in &lines[1..] {
            let reason = fields[5].clone();
            let status = match fields[4].as_str() {
                "PAID" => ReturnStatus::Paid,
                "FAILED" | "RETURNED" if reason.trim().is_empty() => {
                    return Err(PayoutFileError::at(
                        *line,
                        format!("a {} row without a reason", fields[4]),
                    ))
                }
                "FAILED" => ReturnStatus::Failed { reason },
                "RETURNED" => ReturnStatus::Returned { reason },
                other => {
                    return Err(PayoutFileError::at(
                        *line,
                        format!("status {other:?} is not PAID, FAILED or RETURNED"),
                    ))
                }
            };
            file.rows.push(ReturnRow {
                sequence: count(*line, &fields[1])?,
                reference: fields[2].clone(),
                amount: amount(*line, &fields[3], currency)?,
                status,
            });
        }
        check_sequence(
            lines[1..]
                .iter()
                .zip(&file.rows)
                .map(|((line, _), row)| (*line, row.sequence, row.reference.as_str())),
        )?;
        let record_count = count(1, &header[4])?;
        if record_count != file.rows.len() as u64 {
            return Err(PayoutFileError::at(
                1,
                format!(
                    "control total {record_count} rows, but the file has {}",
                    file.rows.len()
                ),
            ));
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> PayoutFile {
        PayoutFile {
            batch: "pob_1".into(),
            value_date: "2026-05-05".parse().unwrap_or_default(),
            currency: Currency::CNY,
            rows: vec![
                PayoutFileRow {
                    sequence: 1,
                    reference: "po_a".into(),
                    account_number: "6222021234567890".into(),
                    account_name: "上海示例贸易有限公司".into(),
                    amount: Amount::new(12_345, Currency::CNY),
                },
                PayoutFileRow {
                    sequence: 2,
                    reference: "po_b".into(),
                    account_number: "6222".into(),
                    account_name: "Acme, \"Trading\"".into(),
                    amount: Amount::new(5, Currency::CNY),
                },
            ],
        }
    }

    #[test]
    fn a_payout_file_reads_back_in_both_encodings() -> Result<(), PayoutFileError> {
        for encoding in [FileEncoding::Utf8, FileEncoding::Gbk] {
            let bytes = file().to_bytes(encoding)?;
            assert_eq!(PayoutFile::parse(&bytes, encoding)?, file());
        }
        let text = String::from_utf8(file().to_bytes(FileEncoding::Utf8)?).unwrap_or_default();
        assert!(text.starts_with("H,pob_1,2026-05-05,CNY,2,123.50\nD,1,po_a,6222021234567890,上海示例贸易有限公司,123.45\n"), "{text}");
        // GBK bytes are not UTF-8, and a name GBK cannot write is refused.
        assert!(
            PayoutFile::parse(&file().to_bytes(FileEncoding::Gbk)?, FileEncoding::Utf8).is_err()
        );
        let mut emoji = file();
        emoji.rows[0].account_name = "Shop 🙂".into();
        assert!(emoji.to_bytes(FileEncoding::Gbk).is_err());
        Ok(())
    }

    #[test]
    fn control_totals_and_sequence_are_checked() -> Result<(), PayoutFileError> {
        let text = String::from_utf8(file().to_bytes(FileEncoding::Utf8)?).unwrap_or_default();
        let wrong_sum = text.replace(",2,123.50\n", ",2,123.51\n");
        let error = PayoutFile::parse(wrong_sum.as_bytes(), FileEncoding::Utf8).unwrap_err();
        assert_eq!(error.line, Some(1), "{error}");
        let wrong_sequence = text.replace("D,2,", "D,3,");
        let error = PayoutFile::parse(wrong_sequence.as_bytes(), FileEncoding::Utf8).unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
        assert!(PayoutFile::parse(b"", FileEncoding::Utf8).is_err());
        Ok(())
    }

    #[test]
    fn a_return_file_reads_back() -> Result<(), PayoutFileError> {
        let answer = ReturnFile {
            batch: "pob_1".into(),
            value_date: "2026-05-05".parse().unwrap_or_default(),
            currency: Currency::CNY,
            rows: vec![
                ReturnRow {
                    sequence: 1,
                    reference: "po_a".into(),
                    amount: Amount::new(12_345, Currency::CNY),
                    status: ReturnStatus::Paid,
                },
                ReturnRow {
                    sequence: 2,
                    reference: "po_b".into(),
                    amount: Amount::new(5, Currency::CNY),
                    status: ReturnStatus::Returned {
                        reason: "account_closed".into(),
                    },
                },
            ],
        };
        for encoding in [FileEncoding::Utf8, FileEncoding::Gbk] {
            assert_eq!(
                ReturnFile::parse(&answer.to_bytes(encoding)?, encoding)?,
                answer
            );
        }
        let no_reason = "H,pob_1,2026-05-05,CNY,1\nD,1,po_a,1.00,FAILED,\n";
        let error = ReturnFile::parse(no_reason.as_bytes(), FileEncoding::Utf8).unwrap_err();
        assert_eq!(error.line, Some(2), "{error}");
        Ok(())
    }
}
