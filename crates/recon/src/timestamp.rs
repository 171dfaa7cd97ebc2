//! Timestamps of input rows: a compiled strftime-style format and a time zone, parsed to Unix seconds without allocation.

use jiff::tz::TimeZone;

/// Marks a record without a timestamp.
pub const TIMESTAMP_ABSENT: i64 = i64::MIN;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// `%f`: one to nine digits of a fraction of a second (ignored: the engine works in seconds).
    Fraction,
    /// `%z`: `+0800`, `+08:00` or `Z`, overriding the layout's time zone.
    Offset,
    Literal(u8),
}

#[derive(Debug, Clone)]
enum Zone {
    Fixed(i64),
    Named(TimeZone),
}

#[derive(Debug, Clone)]
enum Kind {
    Pattern(Vec<Item>),
    UnixSeconds,
    UnixMilliseconds,
}

/// A parsed `format` + `time_zone` pair of a layout.
#[derive(Debug, Clone)]
pub struct TimestampFormat {
    kind: Kind,
    zone: Zone,
}

/// Civil hours remembered per thread by [`ZoneMemo`] (direct-mapped by hour).
const ZONE_MEMO_HOURS: usize = 64;

/// Per-thread memo of the UTC offset of a named time zone, per civil hour: a row's offset is
/// looked up in the zone database only the first time its hour is seen.
#[derive(Debug, Clone, Copy)]
pub struct ZoneMemo {
    hours: [(i64, i64); ZONE_MEMO_HOURS],
}

impl Default for ZoneMemo {
    fn default() -> Self {
        ZoneMemo {
            hours: [(i64::MIN, 0); ZONE_MEMO_HOURS],
        }
    }
}

impl TimestampFormat {
    /// Compiles `format` (`%Y %m %d %H %M %S %f %z %%` and literal bytes, or `unix` /
    /// `unix_ms`) with `time_zone` (`UTC`, `+08:00`, `-0530` or an IANA name such as
    /// `Asia/Shanghai`).
    pub fn new(format: &str, time_zone: &str) -> Result<TimestampFormat, String> {
        let kind = match format {
            "unix" => Kind::UnixSeconds,
            "unix_ms" => Kind::UnixMilliseconds,
            _ => Kind::Pattern(compile(format)?),
        };
        let zone = parse_zone(time_zone)?;
        Ok(TimestampFormat { kind, zone })
    }

    /// Parses trimmed `text` to Unix seconds.
    pub fn parse(&self, text: &[u8], memo: &mut ZoneMemo) -> Result<i64, &'static str> {
        match &self.kind {
            Kind::UnixSeconds => parse_integer(text),
            Kind::UnixMilliseconds => parse_integer(text).map(|value| value.div_euclid(1000)),
            Kind::Pattern(items) => self.parse_pattern(items, text, memo),
        }
    }

    fn parse_pattern(
        &self,
        items: &[Item],
        text: &[u8],
        memo: &mut ZoneMemo,
    ) -> Result<i64, &'static str> {
        let mut position = 0usize;
        let (mut year, mut month, mut day) = (1970i64, 1i64, 1i64);
        let (mut hour, mut minute, mut second) = (0i64, 0i64, 0i64);
        let mut explicit_offset: Option<i64> = None;
        for item in items {
            match item {
                Item::Year => year = digits(text, &mut position, 4)?,
                Item::Month => month = digits(text, &mut position, 2)?,
                Item::Day => day = digits(text, &mut position, 2)?,
                Item::Hour => hour = digits(text, &mut position, 2)?,
                Item::Minute => minute = digits(text, &mut position, 2)?,
                Item::Second => second = digits(text, &mut position, 2)?,
                Item::Fraction => {
                    let start = position;
                    while position < text.len()
                        && text[position].is_ascii_digit()
                        && position - start < 9
                    {
                        position += 1;
                    }
                    if position == start {
                        return Err("timestamp fraction has no digits");
                    }
                }
                Item::Offset => explicit_offset = Some(parse_offset_at(text, &mut position)?),
                Item::Literal(byte) => {
                    if text.get(position) != Some(byte) {
                        return Err("timestamp does not match the layout's format");
                    }
                    position += 1;
                }
            }
        }
        if position != text.len() {
            return Err("timestamp has trailing characters");
        }
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err("timestamp is not a valid date and time");
        }
        let civil = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
        let offset = match explicit_offset {
            Some(offset) => offset,
            None => match &self.zone {
                Zone::Fixed(offset) => *offset,
                Zone::Named(zone) => named_offset(zone, civil, memo)?,
            },
        };
        Ok(civil - offset)
    }
}

fn compile(format: &str) -> Result<Vec<Item>, String> {
    let bytes = format.as_bytes();
    let mut items = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let directive = bytes
                .get(index + 1)
                .ok_or_else(|| format!("timestamp format {format:?} ends with %"))?;
            items.push(match directive {
                b'Y' => Item::Year,
                b'm' => Item::Month,
                b'd' => Item::Day,
                b'H' => Item::Hour,
                b'M' => Item::Minute,
                b'S' => Item::Second,
                b'f' => Item::Fraction,
                b'z' => Item::Offset,
                b'%' => Item::Literal(b'%'),
                b':' if bytes.get(index + 2) == Some(&b'z') => {
                    index += 1;
                    Item::Offset
                }
                other => {
                    return Err(format!(
                        "timestamp format {format:?}: unsupported directive %{}",
                        char::from(*other)
                    ))
                }
            });
            index += 2;
        } else {
            items.push(Item::Literal(bytes[index]));
            index += 1;
        }
    }
    if !items.contains(&Item::Year) || !items.contains(&Item::Month) || !items.contains(&Item::Day)
    {
        return Err(format!("timestamp format {format:?} needs %Y, %m and %d"));
    }
    Ok(items)
}

fn parse_zone(text: &str) -> Result<Zone, String> {
    if text.eq_ignore_ascii_case("UTC") || text == "Z" {
        return Ok(Zone::Fixed(0));
    }
    if text.starts_with('+') || text.starts_with('-') {
        let mut position = 0;
        return parse_offset_at(text.as_bytes(), &mut position)
            .ok()
            .filter(|_| position == text.len())
            .map(Zone::Fixed)
            .ok_or_else(|| format!("time zone {text:?} is not an offset like +08:00"));
    }
    TimeZone::get(text)
        .map(Zone::Named)
        .map_err(|error| format!("unknown time zone {text:?}: {error}"))
}

fn parse_offset_at(text: &[u8], position: &mut usize) -> Result<i64, &'static str> {
    let sign = match text.get(*position) {
        Some(b'Z') => {
            *position += 1;
            return Ok(0);
        }
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err("timestamp offset must start with + or -"),
    };
    *position += 1;
    let hours = digits(text, position, 2)?;
    if text.get(*position) == Some(&b':') {
        *position += 1;
    }
    let minutes = digits(text, position, 2)?;
    if hours > 23 || minutes > 59 {
        return Err("timestamp offset out of range");
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

#[inline]
fn digits(text: &[u8], position: &mut usize, count: usize) -> Result<i64, &'static str> {
    let field = text
        .get(*position..*position + count)
        .ok_or("timestamp is too short for its format")?;
    let mut value = 0i64;
    for &byte in field {
        if !byte.is_ascii_digit() {
            return Err("timestamp has a non-digit where a digit is expected");
        }
        value = value * 10 + i64::from(byte - b'0');
    }
    *position += count;
    Ok(value)
}

fn parse_integer(text: &[u8]) -> Result<i64, &'static str> {
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err("empty timestamp");
    }
    let mut value = 0i64;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return Err("timestamp is not an integer");
        }
        value = value
            .checked_mul(10)
            .and_then(|shifted| shifted.checked_add(i64::from(byte - b'0')))
            .ok_or("timestamp out of range")?;
    }
    Ok(if negative { -value } else { value })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn offset_at_civil(zone: &TimeZone, civil: i64) -> Result<i64, &'static str> {
    let days = civil.div_euclid(86_400);
    let seconds = civil.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let datetime = jiff::civil::DateTime::new(
        i16::try_from(year).map_err(|_| "timestamp year out of range")?,
        month as i8,
        day as i8,
        (seconds / 3600) as i8,
        ((seconds / 60) % 60) as i8,
        (seconds % 60) as i8,
        0,
    )
    .map_err(|_| "timestamp is not a valid date and time")?;
    let instant = zone
        .to_ambiguous_timestamp(datetime)
        .compatible()
        .map_err(|_| "timestamp does not exist in the time zone")?;
    Ok(civil - instant.as_second())
}

fn named_offset(zone: &TimeZone, civil: i64, memo: &mut ZoneMemo) -> Result<i64, &'static str> {
    let hour = civil.div_euclid(3600);
    let slot = hour.rem_euclid(ZONE_MEMO_HOURS as i64) as usize;
    let (remembered_hour, offset) = memo.hours[slot];
    if remembered_hour == hour {
        return Ok(offset);
    }
    let at_start = offset_at_civil(zone, hour * 3600)?;
    let at_end = offset_at_civil(zone, hour * 3600 + 3599)?;
    if at_start == at_end {
        // The offset is the same all hour long: no transition inside it.
        memo.hours[slot] = (hour, at_start);
        Ok(at_start)
    } else {
        offset_at_civil(zone, civil)
    }
}

/// Year, month and day of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats Unix seconds as RFC 3339 in UTC (`2026-11-20T05:45:12Z`).
pub fn format_utc(seconds: i64) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let time = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3600,
        (time / 60) % 60,
        time % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(format: &str, zone: &str, text: &str) -> Result<i64, &'static str> {
        let compiled = TimestampFormat::new(format, zone).expect("valid format");
        compiled.parse(text.as_bytes(), &mut ZoneMemo::default())
    }

    #[test]
    fn parses_formats_and_zones() {
        // 2026-11-20T05:45:12Z
        let expected = 1_795_153_512;
        assert_eq!(
            parse("%Y-%m-%d %H:%M:%S", "UTC", "2026-11-20 05:45:12"),
            Ok(expected)
        );
        assert_eq!(
            parse("%Y%m%d%H%M%S", "+08:00", "20261120134512"),
            Ok(expected)
        );
        assert_eq!(
            parse("%Y-%m-%d %H:%M:%S", "Asia/Shanghai", "2026-11-20 13:45:12"),
            Ok(expected)
        );
        assert_eq!(
            parse(
                "%Y-%m-%dT%H:%M:%S.%f%:z",
                "UTC",
                "2026-11-20T13:45:12.123+08:00"
            ),
            Ok(expected)
        );
        assert_eq!(parse("unix", "UTC", "1795153512"), Ok(expected));
        assert_eq!(parse("unix_ms", "UTC", "1795153512999"), Ok(expected));
        assert_eq!(format_utc(expected), "2026-11-20T05:45:12Z");
    }

    #[test]
    fn named_zones_follow_daylight_saving_time() {
        // New York: EDT (-4) in July, EST (-5) in December.
        assert_eq!(
            parse(
                "%Y-%m-%d %H:%M:%S",
                "America/New_York",
                "2026-07-01 12:00:00"
            ),
            parse("%Y-%m-%d %H:%M:%S", "UTC", "2026-07-01 16:00:00")
        );
        assert_eq!(
            parse(
                "%Y-%m-%d %H:%M:%S",
                "America/New_York",
                "2026-12-01 12:00:00"
            ),
            parse("%Y-%m-%d %H:%M:%S", "UTC", "2026-12-01 17:00:00")
        );
    }

    #[test]
    fn rejects_invalid_timestamps() {
        assert!(parse("%Y-%m-%d", "UTC", "2026-02-30").is_err());
        assert!(parse("%Y-%m-%d", "UTC", "2026-13-01").is_err());
        assert!(parse("%Y-%m-%d", "UTC", "2026-1-01").is_err());
        assert!(parse("%Y-%m-%d", "UTC", "2026-01-01x").is_err());
        assert!(TimestampFormat::new("%Y-%q", "UTC").is_err());
        assert!(TimestampFormat::new("%Y-%m-%d", "Mars/Olympus").is_err());
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 20_000, 2_000_000] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }
}
