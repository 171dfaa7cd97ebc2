//! The layout of one input file (format, encoding, dialect, which columns hold which field), read from TOML and validated.

use crate::amount::{AmountFormat, SCALE_MAX};
use crate::control::{ControlFields, ControlPosition, HeaderLines, TrailerLines};
use crate::error::ReconError;
use crate::timestamp::TimestampFormat;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Most columns one layout may read (key parts plus the other fields).
pub const SLOTS_MAX: usize = 16;

/// The container format of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Csv,
    FixedWidth,
    Parquet,
}

/// The character encoding of a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Encoding {
    #[default]
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    #[serde(rename = "gbk", alias = "GBK", alias = "gb2312", alias = "gb18030")]
    Gbk,
}

/// The TOML of a layout, as written by a user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutToml {
    format: FileFormat,
    #[serde(default)]
    encoding: Encoding,
    #[serde(default)]
    csv: CsvToml,
    #[serde(default = "default_true")]
    trim: bool,
    header: Option<HeaderToml>,
    trailer: Option<TrailerToml>,
    fields: FieldsToml,
}

/// `[header]`: the bank's own lines at the top of the file, before the column names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderToml {
    lines: usize,
    prefix: Option<String>,
    totals_line: Option<usize>,
    count: Option<FieldToml>,
    sum: Option<FieldToml>,
    fee_sum: Option<FieldToml>,
    currency: Option<FieldToml>,
}

/// `[trailer]`: control-total lines, told from rows by the bytes they start with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrailerToml {
    prefix: String,
    #[serde(default = "default_true")]
    required: bool,
    count: Option<FieldToml>,
    sum: Option<FieldToml>,
    fee_sum: Option<FieldToml>,
    currency: Option<FieldToml>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvToml {
    #[serde(default = "default_delimiter")]
    delimiter: String,
    #[serde(default = "default_quote")]
    quote: String,
    #[serde(default = "default_true")]
    header: bool,
}

impl Default for CsvToml {
    fn default() -> Self {
        CsvToml {
            delimiter: default_delimiter(),
            quote: default_quote(),
            header: true,
        }
    }
}

fn default_delimiter() -> String {
    ",".to_owned()
}

fn default_quote() -> String {
    "\"".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Box<FieldToml>),
    Many(Vec<FieldToml>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldsToml {
    key: OneOrMany,
    amount: FieldToml,
    currency: FieldToml,
    status: Option<FieldToml>,
    timestamp: Option<FieldToml>,
    fee: Option<FieldToml>,
    batch: Option<FieldToml>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldToml {
    /// Column name: a CSV header name or a Parquet column.
    column: Option<String>,
    /// 1-based column number in a CSV file.
    index: Option<usize>,
    /// 1-based first byte and width in bytes, in a fixed-width file.
    start: Option<usize>,
    width: Option<usize>,
    /// A constant instead of a column (for example the currency of a single-currency file).
    value: Option<String>,
    /// Amounts: "minor" (integer minor units) or "major" (decimal, `scale` places).
    unit: Option<String>,
    scale: Option<u32>,
    decimal_point: Option<String>,
    thousands_separator: Option<String>,
    /// Status and currency: raw value → value used by the engine.
    map: Option<BTreeMap<String, String>>,
    /// Status: value used when the raw value is not in `map` (otherwise such a row is bad).
    default: Option<String>,
    /// Timestamps.
    format: Option<String>,
    time_zone: Option<String>,
}

/// Where the text of one slot comes from, before the file's header or schema is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotSource {
    /// A column named in a CSV header or a Parquet schema.
    Name(String),
    /// 0-based CSV column.
    Index(usize),
    /// 0-based first byte and width of a fixed-width field.
    Range { start: usize, width: usize },
}

/// Where the value of one field comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    Slot(usize),
    Constant(Vec<u8>),
}

/// The CSV dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvDialect {
    pub delimiter: u8,
    pub quote: Option<u8>,
    pub header: bool,
}

/// A validated layout.
#[derive(Debug, Clone)]
pub struct Layout {
    pub origin: String,
    pub format: FileFormat,
    pub encoding: Encoding,
    pub csv: CsvDialect,
    pub trim: bool,
    pub slots: Vec<SlotSource>,
    pub key: Vec<FieldSource>,
    pub amount: (FieldSource, AmountFormat),
    pub currency: (FieldSource, BTreeMap<String, String>),
    pub status: Option<StatusField>,
    pub timestamp: Option<(FieldSource, TimestampFormat)>,
    pub fee: Option<(FieldSource, AmountFormat)>,
    pub batch: Option<FieldSource>,
    /// The bank's header lines, skipped as rows and possibly carrying control totals.
    pub header: Option<HeaderLines>,
    /// Trailer lines with control totals, checked against the rows.
    pub trailer: Option<TrailerLines>,
}

/// The status field of a layout: raw value → canonical status.
#[derive(Debug, Clone)]
pub struct StatusField {
    pub source: FieldSource,
    pub map: BTreeMap<String, String>,
    pub default: Option<String>,
}

impl Layout {
    /// Reads and validates a layout file.
    pub fn from_file(path: &Path) -> Result<Layout, ReconError> {
        let text = std::fs::read_to_string(path).map_err(|error| ReconError::io(path, error))?;
        Layout::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates layout TOML; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Layout, ReconError> {
        let invalid = |reason: String| ReconError::Layout {
            origin: origin.to_owned(),
            reason,
        };
        let raw: LayoutToml = toml::from_str(text).map_err(|error| invalid(error.to_string()))?;
        let csv = CsvDialect {
            delimiter: single_byte(&raw.csv.delimiter, "csv.delimiter").map_err(invalid)?,
            quote: if raw.csv.quote.is_empty() {
                None
            } else {
                Some(single_byte(&raw.csv.quote, "csv.quote").map_err(invalid)?)
            },
            header: raw.csv.header,
        };
        let mut builder = SlotBuilder {
            format: raw.format,
            slots: Vec::new(),
        };
        let fields = &raw.fields;
        let key_specs = match &fields.key {
            OneOrMany::One(field) => vec![(**field).clone()],
            OneOrMany::Many(fields) => fields.clone(),
        };
        if key_specs.is_empty() || key_specs.len() > 8 {
            return Err(invalid("fields.key needs one to eight columns".to_owned()));
        }
        let mut key = Vec::new();
        for (index, spec) in key_specs.iter().enumerate() {
            key.push(
                builder
                    .source(spec, &format!("fields.key[{index}]"))
                    .map_err(invalid)?,
            );
        }
        let amount = (
            builder
                .source(&fields.amount, "fields.amount")
                .map_err(invalid)?,
            amount_format(&fields.amount, "fields.amount").map_err(invalid)?,
        );
        let currency = (
            builder
                .source(&fields.currency, "fields.currency")
                .map_err(invalid)?,
            fields.currency.map.clone().unwrap_or_default(),
        );
        let status = match &fields.status {
            Some(spec) => Some(StatusField {
                source: builder.source(spec, "fields.status").map_err(invalid)?,
                map: spec.map.clone().unwrap_or_default(),
                default: spec.default.clone(),
            }),
            None => None,
        };
        let timestamp = match &fields.timestamp {
            Some(spec) => {
                let source = builder.source(spec, "fields.timestamp").map_err(invalid)?;
                let format = spec
                    .format
                    .as_deref()
                    .ok_or_else(|| invalid("fields.timestamp needs a format".to_owned()))?;
                let zone = spec.time_zone.as_deref().unwrap_or("UTC");
                Some((
                    source,
                    TimestampFormat::new(format, zone)
                        .map_err(|reason| invalid(format!("fields.timestamp: {reason}")))?,
                ))
            }
            None => None,
        };
        let fee = match &fields.fee {
            Some(spec) => Some((
                builder.source(spec, "fields.fee").map_err(invalid)?,
                amount_format(spec, "fields.fee").map_err(invalid)?,
            )),
            None => None,
        };
        let batch = match &fields.batch {
            Some(spec) => Some(builder.source(spec, "fields.batch").map_err(invalid)?),
            None => None,
        };
        if builder.slots.len() > SLOTS_MAX {
            return Err(invalid(format!(
                "a layout may read at most {SLOTS_MAX} columns"
            )));
        }
        if raw.format == FileFormat::Csv
            && !csv.header
            && builder
                .slots
                .iter()
                .any(|slot| matches!(slot, SlotSource::Name(_)))
        {
            return Err(invalid(
                "columns are named but csv.header is false: use index = N".to_owned(),
            ));
        }
        let header = match &raw.header {
            Some(spec) => {
                if spec.lines == 0 {
                    return Err(invalid("header.lines must be at least 1".to_owned()));
                }
                let totals_line = spec.totals_line.unwrap_or(1);
                if !(1..=spec.lines).contains(&totals_line) {
                    return Err(invalid(format!(
                        "header.totals_line must be between 1 and header.lines ({})",
                        spec.lines
                    )));
                }
                Some(HeaderLines {
                    lines: spec.lines,
                    prefix: spec.prefix.clone().filter(|prefix| !prefix.is_empty()),
                    totals_line,
                    fields: control_fields(
                        raw.format,
                        "header",
                        [&spec.count, &spec.sum, &spec.fee_sum, &spec.currency],
                    )
                    .map_err(invalid)?,
                })
            }
            None => None,
        };
        let trailer = match &raw.trailer {
            Some(spec) => {
                if spec.prefix.is_empty() {
                    return Err(invalid(
                        "trailer.prefix must not be empty: it tells trailer lines from rows"
                            .to_owned(),
                    ));
                }
                Some(TrailerLines {
                    prefix: spec.prefix.clone(),
                    required: spec.required,
                    fields: control_fields(
                        raw.format,
                        "trailer",
                        [&spec.count, &spec.sum, &spec.fee_sum, &spec.currency],
                    )
                    .map_err(invalid)?,
                })
            }
            None => None,
        };
        if raw.format == FileFormat::Parquet && (header.is_some() || trailer.is_some()) {
            return Err(invalid(
                "a Parquet file has no header or trailer lines".to_owned(),
            ));
        }
        Ok(Layout {
            origin: origin.to_owned(),
            format: raw.format,
            encoding: raw.encoding,
            csv,
            trim: raw.trim,
            slots: builder.slots,
            key,
            amount,
            currency,
            status,
            timestamp,
            fee,
            batch,
            header,
            trailer,
        })
    }
}

/// The control fields of a header or trailer line: count, sum, fee sum and currency, each
/// a position in that line (`index` in CSV, `start` and `width` in fixed width).
fn control_fields(
    format: FileFormat,
    section: &str,
    [count, sum, fee_sum, currency]: [&Option<FieldToml>; 4],
) -> Result<ControlFields, String> {
    let position = |spec: &FieldToml, name: &str| -> Result<ControlPosition, String> {
        let name = format!("{section}.{name}");
        if spec.column.is_some()
            || spec.value.is_some()
            || spec.map.is_some()
            || spec.default.is_some()
            || spec.format.is_some()
            || spec.time_zone.is_some()
        {
            return Err(format!(
                "{name}: a control field is a position in the line only (and, for sums, the amount keys)"
            ));
        }
        match (format, spec.index, spec.start, spec.width) {
            (FileFormat::Csv, Some(index), None, None) if index >= 1 => {
                Ok(ControlPosition::Column(index - 1))
            }
            (FileFormat::FixedWidth, None, Some(start), Some(width))
                if start >= 1 && width >= 1 =>
            {
                Ok(ControlPosition::Range {
                    start: start - 1,
                    width,
                })
            }
            (FileFormat::FixedWidth, ..) => Err(format!(
                "{name}: a fixed-width control field needs start = N (1-based) and width = N"
            )),
            _ => Err(format!(
                "{name}: a CSV control field needs index = N (1-based)"
            )),
        }
    };
    let whole = |spec: &FieldToml, name: &str| -> Result<(), String> {
        if spec.unit.is_some()
            || spec.scale.is_some()
            || spec.decimal_point.is_some()
            || spec.thousands_separator.is_some()
        {
            return Err(format!(
                "{section}.{name}: only sums take unit, scale, decimal_point and thousands_separator"
            ));
        }
        Ok(())
    };
    let count = match count {
        Some(spec) => {
            whole(spec, "count")?;
            Some(position(spec, "count")?)
        }
        None => None,
    };
    let currency = match currency {
        Some(spec) => {
            whole(spec, "currency")?;
            Some(position(spec, "currency")?)
        }
        None => None,
    };
    let amount = |spec: &Option<FieldToml>, name: &str| -> Result<_, String> {
        match spec {
            Some(spec) => Ok(Some((
                position(spec, name)?,
                amount_format(spec, &format!("{section}.{name}"))?,
            ))),
            None => Ok(None),
        }
    };
    Ok(ControlFields {
        count,
        sum: amount(sum, "sum")?,
        fee_sum: amount(fee_sum, "fee_sum")?,
        currency,
    })
}

impl Layout {
    /// The field names that read each slot (`key`, `key[1]`, `amount`, …; several joined with
    /// `/` when they share a column), for messages about a slot.
    pub fn slot_names(&self) -> Vec<String> {
        let mut names = vec![String::new(); self.slots.len()];
        let mut name = |source: &FieldSource, field: String| {
            if let FieldSource::Slot(slot) = source {
                if !names[*slot].is_empty() {
                    names[*slot].push('/');
                }
                names[*slot].push_str(&field);
            }
        };
        for (index, part) in self.key.iter().enumerate() {
            if self.key.len() == 1 {
                name(part, "key".to_owned());
            } else {
                name(part, format!("key[{index}]"));
            }
        }
        name(&self.amount.0, "amount".to_owned());
        name(&self.currency.0, "currency".to_owned());
        if let Some(status) = &self.status {
            name(&status.source, "status".to_owned());
        }
        if let Some((source, _)) = &self.timestamp {
            name(source, "timestamp".to_owned());
        }
        if let Some((source, _)) = &self.fee {
            name(source, "fee".to_owned());
        }
        if let Some(source) = &self.batch {
            name(source, "batch".to_owned());
        }
        names
    }
}

struct SlotBuilder {
    format: FileFormat,
    slots: Vec<SlotSource>,
}

impl SlotBuilder {
    fn source(&mut self, spec: &FieldToml, name: &str) -> Result<FieldSource, String> {
        if let Some(value) = &spec.value {
            if spec.column.is_some() || spec.index.is_some() || spec.start.is_some() {
                return Err(format!("{name}: value excludes column, index and start"));
            }
            return Ok(FieldSource::Constant(value.as_bytes().to_vec()));
        }
        let slot = match (
            self.format,
            &spec.column,
            spec.index,
            spec.start,
            spec.width,
        ) {
            (FileFormat::Csv | FileFormat::Parquet, Some(column), None, None, None) => {
                SlotSource::Name(column.clone())
            }
            (FileFormat::Csv, None, Some(index), None, None) if index >= 1 => {
                SlotSource::Index(index - 1)
            }
            (FileFormat::FixedWidth, None, None, Some(start), Some(width))
                if start >= 1 && width >= 1 =>
            {
                SlotSource::Range {
                    start: start - 1,
                    width,
                }
            }
            (FileFormat::Csv, ..) => {
                return Err(format!(
                    "{name}: a CSV field needs column = \"name\" or index = N (1-based)"
                ))
            }
            (FileFormat::FixedWidth, ..) => {
                return Err(format!(
                    "{name}: a fixed-width field needs start = N (1-based) and width = N"
                ))
            }
            (FileFormat::Parquet, ..) => {
                return Err(format!("{name}: a Parquet field needs column = \"name\""))
            }
        };
        let position = match self.slots.iter().position(|existing| *existing == slot) {
            Some(position) => position,
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        Ok(FieldSource::Slot(position))
    }
}

fn single_byte(text: &str, name: &str) -> Result<u8, String> {
    let unescaped = match text {
        "\\t" | "tab" => "\t",
        other => other,
    };
    match unescaped.as_bytes() {
        [byte] if byte.is_ascii() && *byte != b'\n' && *byte != b'\r' => Ok(*byte),
        _ => Err(format!("{name} must be one ASCII character, got {text:?}")),
    }
}

fn amount_format(spec: &FieldToml, name: &str) -> Result<AmountFormat, String> {
    let scale = match (spec.unit.as_deref(), spec.scale) {
        (None | Some("minor"), None) => 0,
        (Some("minor"), Some(_)) => return Err(format!("{name}: unit = \"minor\" takes no scale")),
        (Some("major"), scale) => scale.unwrap_or(2),
        (None, Some(scale)) => scale,
        (Some(other), _) => {
            return Err(format!(
                "{name}: unit must be \"minor\" or \"major\", got {other:?}"
            ))
        }
    };
    if scale > SCALE_MAX {
        return Err(format!("{name}: scale {scale} is above {SCALE_MAX}"));
    }
    let decimal_point = match &spec.decimal_point {
        Some(text) => single_byte(text, &format!("{name}.decimal_point"))?,
        None => b'.',
    };
    let thousands_separator = match &spec.thousands_separator {
        Some(text) => Some(single_byte(text, &format!("{name}.thousands_separator"))?),
        None => None,
    };
    if Some(decimal_point) == thousands_separator || decimal_point.is_ascii_digit() {
        return Err(format!(
            "{name}: invalid decimal point or thousands separator"
        ));
    }
    Ok(AmountFormat {
        scale,
        decimal_point,
        thousands_separator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_csv_layout() {
        let layout = Layout::from_toml(
            r#"
            format = "csv"
            encoding = "gbk"
            csv = { delimiter = "|", header = false }
            [fields]
            key = [{ index = 2 }, { index = 3 }]
            amount = { index = 4, unit = "major", scale = 2 }
            currency = { value = "CNY" }
            status = { index = 5, map = { "00" = "success", "05" = "failed" } }
            timestamp = { index = 6, format = "%Y%m%d%H%M%S", time_zone = "+08:00" }
            "#,
            "test",
        )
        .expect("valid layout");
        assert_eq!(layout.encoding, Encoding::Gbk);
        assert_eq!(layout.csv.delimiter, b'|');
        assert_eq!(layout.slots.len(), 5);
        assert_eq!(layout.amount.1, AmountFormat::major(2));
        assert_eq!(layout.currency.0, FieldSource::Constant(b"CNY".to_vec()));
    }

    #[test]
    fn rejects_bad_layouts() {
        let bad = [
            "format = \"csv\"\n[fields]\nkey = { start = 1, width = 3 }\namount = { index = 1 }\ncurrency = { value = \"CNY\" }",
            "format = \"fixed_width\"\n[fields]\nkey = { index = 1 }\namount = { start = 1, width = 2 }\ncurrency = { value = \"CNY\" }",
            "format = \"csv\"\n[fields]\nkey = { index = 1 }\namount = { index = 2, unit = \"cents\" }\ncurrency = { value = \"CNY\" }",
            "format = \"csv\"\ncsv = { delimiter = \",,\" }\n[fields]\nkey = { index = 1 }\namount = { index = 2 }\ncurrency = { value = \"CNY\" }",
            "format = \"csv\"\ncsv = { header = false }\n[fields]\nkey = { column = \"id\" }\namount = { index = 2 }\ncurrency = { value = \"CNY\" }",
            "format = \"csv\"\n[fields]\nkey = { index = 1 }\namount = { index = 2 }\ncurrency = { value = \"CNY\" }\ntimestamp = { index = 3 }",
            "format = \"xml\"",
        ];
        for text in bad {
            assert!(Layout::from_toml(text, "test").is_err(), "{text}");
        }
    }
}
