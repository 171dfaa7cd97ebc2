//! Customer identifiers normalised before they are blind-indexed, and masked for display.
//!
//! A blind index only finds a value written exactly as it was indexed, so every input form
//! of one phone number or national id must normalise to one text: phones to E.164
//! (`+8613800138000`), PRC resident identity numbers to 18 upper-case characters whose
//! ISO 7064 MOD 11-2 check character and birth date are valid.

/// Why an identifier was refused; each variant has a stable code for the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("phone number {0}")]
    Phone(&'static str),
    #[error("national id {0}")]
    NationalId(&'static str),
    #[error("national id check character is wrong (ISO 7064 MOD 11-2)")]
    NationalIdChecksum,
    #[error("name {0}")]
    Name(&'static str),
}

impl IdentityError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::Phone(_) => "invalid_phone",
            IdentityError::NationalId(_) => "invalid_national_id",
            IdentityError::NationalIdChecksum => "national_id_checksum_invalid",
            IdentityError::Name(_) => "invalid_name",
        }
    }
}

/// The country calling code of mainland China, assumed for numbers written without one.
pub const CHINA_CALLING_CODE: &str = "86";

/// Longest raw input looked at, so that a huge string is refused before any work.
const RAW_LENGTH_MAX: usize = 64;

/// Normalises a phone number to E.164: separators (space, `-`, `.`, parentheses) dropped,
/// `+` or `00` before a country code, and a number without one read as Chinese (`86`).
/// Chinese numbers must be 11-digit mobiles (`1` then 10 digits); others 8 to 15 digits.
pub fn normalise_phone(raw: &str) -> Result<String, IdentityError> {
    if raw.len() > RAW_LENGTH_MAX {
        return Err(IdentityError::Phone("is too long"));
    }
    let compact: String = raw
        .trim()
        .chars()
        .filter(|character| !matches!(character, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let international = compact
        .strip_prefix('+')
        .or_else(|| compact.strip_prefix("00"));
    if !international
        .unwrap_or(&compact)
        .chars()
        .all(|character| character.is_ascii_digit())
    {
        return Err(IdentityError::Phone(
            "may contain only digits, spaces, '-', '.', parentheses and a leading '+'",
        ));
    }
    let digits = match international {
        Some(digits) => digits.to_string(),
        // A national Chinese mobile, or one written with 86 but without '+'.
        None if compact.len() == 11 => format!("{CHINA_CALLING_CODE}{compact}"),
        None if compact.len() == 13 && compact.starts_with(CHINA_CALLING_CODE) => compact,
        None => {
            return Err(IdentityError::Phone(
                "without a '+' country code must be an 11-digit Chinese mobile number",
            ))
        }
    };
    if let Some(national) = digits.strip_prefix(CHINA_CALLING_CODE) {
        if national.len() != 11 || !national.starts_with('1') {
            return Err(IdentityError::Phone(
                "in China (+86) must be an 11-digit mobile number starting with 1",
            ));
        }
    } else if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err(IdentityError::Phone(
            "must be a country code and number of 8 to 15 digits",
        ));
    }
    Ok(format!("+{digits}"))
}

/// Weights of the 17 leading digits of a PRC identity number (2^(17 - i) mod 11).
const NATIONAL_ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each value of the weighted sum mod 11.
const NATIONAL_ID_CHECK_CHARACTERS: [char; 11] =
    ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// A PRC resident identity number, normalised and checked, with the birth date it encodes.
#[derive(Clone, PartialEq, Eq)]
pub struct NationalId {
    value: String,
    birth_date: (i16, i8, i8),
}

impl std::fmt::Debug for NationalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NationalId(***)")
    }
}

impl NationalId {
    /// The 18 normalised characters (personal data).
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The birth date (year, month, day) in characters 7 to 14.
    pub fn birth_date(&self) -> (i16, i8, i8) {
        self.birth_date
    }
}

/// Normalises a PRC resident identity number: spaces dropped, `x` upper-cased; 17 digits
/// and a check character (digit or `X`) that must match ISO 7064 MOD 11-2, and a real birth
/// date in characters 7 to 14.
pub fn normalise_national_id(raw: &str) -> Result<NationalId, IdentityError> {
    if raw.len() > RAW_LENGTH_MAX {
        return Err(IdentityError::NationalId("is too long"));
    }
    let value: String = raw
        .trim()
        .chars()
        .filter(|character| *character != ' ')
        .map(|character| character.to_ascii_uppercase())
        .collect();
    let characters: Vec<char> = value.chars().collect();
    let well_formed = characters.len() == 18
        && characters[..17]
            .iter()
            .all(|character| character.is_ascii_digit())
        && (characters[17].is_ascii_digit() || characters[17] == 'X');
    if !well_formed {
        return Err(IdentityError::NationalId(
            "must be 18 characters: 17 digits and a digit or X",
        ));
    }
    let digits: Vec<u32> = characters[..17]
        .iter()
        .filter_map(|character| character.to_digit(10))
        .collect();
    let sum: u32 = digits
        .iter()
        .zip(NATIONAL_ID_WEIGHTS)
        .map(|(digit, weight)| digit * weight)
        .sum();
    let expected = NATIONAL_ID_CHECK_CHARACTERS[(sum % 11) as usize];
    if characters[17] != expected {
        return Err(IdentityError::NationalIdChecksum);
    }
    let number = |from: usize, to: usize| {
        digits[from..to]
            .iter()
            .fold(0_u32, |total, digit| total * 10 + digit)
    };
    let (year, month, day) = (number(6, 10), number(10, 12), number(12, 14));
    if !(1900..=2099).contains(&year) || !(1..=12).contains(&month) {
        return Err(IdentityError::NationalId("has no valid birth date"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(IdentityError::NationalId("has no valid birth date"));
    }
    // The ranges checked above fit the narrower types.
    let birth_date = (year as i16, month as i8, day as i8);
    Ok(NationalId { value, birth_date })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Checks a customer's name: trimmed, 1 to 100 characters, no control characters.
pub fn normalise_name(raw: &str) -> Result<String, IdentityError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(IdentityError::Name("must not be empty"));
    }
    if name.chars().count() > 100 {
        return Err(IdentityError::Name("must be at most 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(IdentityError::Name("must not contain control characters"));
    }
    Ok(name.to_string())
}

/// Masks a name down to its first character, one star for each other character (spaces
/// dropped): `张三` → `张*`, `欧阳娜娜` → `欧***`, `John Smith` → `J********`. The first
/// character lets an agent say "Mr Zhang"; the initials of later words would narrow the
/// person down for no such use.
pub fn mask_name(name: &str) -> String {
    let mut characters = name.chars().filter(|character| !character.is_whitespace());
    match characters.next() {
        Some(first) => {
            let mut masked = first.to_string();
            masked.push_str(&"*".repeat(characters.count()));
            masked
        }
        None => String::new(),
    }
}

/// Stars standing for the hidden part of a phone number: always seven, so the mask tells
/// neither the number's length nor its country.
const PHONE_HIDDEN: &str = "*******";

/// Masks a normalised phone number to its last four digits (`+8613812345678` →
/// `*******5678`, `+447911123456` → `*******3456`).
///
/// Last four only, because that is what a call-centre agent needs ("the number ending
/// 5678?") and because every further digit shown divides the numbers that fit the mask by
/// ten: with the carrier prefix and the last four shown (`138****5678`), the 10,000
/// candidates were found by exact lookups in seconds; with the last four only, a Chinese
/// mobile leaves about 10^7 (lookups are also rate limited and audited).
pub fn mask_phone(normalised: &str) -> String {
    let digits: Vec<char> = normalised
        .chars()
        .filter(|character| character.is_ascii_digit())
        .collect();
    let last_four: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("{PHONE_HIDDEN}{last_four}")
}

/// Masks a normalised national id to its last four characters (`11010519491231002X` →
/// `**************002X`): the sequence number's last digits and the check character.
///
/// A PRC identity number is its holder's region (6 digits), birth date (8) and a sequence
/// number: showing the region's start or the birth date (or the birth year elsewhere in the
/// answer) leaves few enough candidates to find the rest by exact lookups. The last four are
/// what an agent asks a caller to confirm; region and birth date stay hidden.
pub fn mask_national_id(normalised: &str) -> String {
    let characters: Vec<char> = normalised.chars().collect();
    let last_four: String = characters[characters.len().saturating_sub(4)..]
        .iter()
        .collect();
    format!(
        "{}{last_four}",
        "*".repeat(characters.len().saturating_sub(4))
    )
}

/// The date of birth as answered masked: nothing of it (`****-**-**`), since even the year
/// narrows the national id's birth date to 365 candidates.
pub const MASKED_DATE_OF_BIRTH: &str = "****-**-**";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalise_to_one_e164_form() {
        for raw in [
            "13800138000",
            "138 0013 8000",
            "+86 138-0013-8000",
            "0086 13800138000",
            "8613800138000",
            "+86 (138) 0013.8000",
        ] {
            assert_eq!(normalise_phone(raw).unwrap(), "+8613800138000", "{raw}");
        }
        assert_eq!(normalise_phone("+44 7911 123456").unwrap(), "+447911123456");
    }

    #[test]
    fn bad_phones_are_refused() {
        for raw in [
            "",
            "12345",
            "+86 12345678",
            "+86 23800138000",
            "138001380001",
            "138-0013-800a",
            "+0123456789",
            "+1234567",
            &"1".repeat(100),
        ] {
            let error = normalise_phone(raw).unwrap_err();
            assert_eq!(error.code(), "invalid_phone", "{raw}");
        }
    }

    #[test]
    fn national_ids_are_checked_with_mod_11_2() {
        // The example of GB 11643-1999.
        let id = normalise_national_id("11010519491231002x").unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
        assert_eq!(id.birth_date(), (1949, 12, 31));
        assert_eq!(format!("{id:?}"), "NationalId(***)");
        assert_eq!(
            normalise_national_id(" 110101 19900307 7774 ")
                .unwrap()
                .expose(),
            "110101199003077774"
        );
        let error = normalise_national_id("110101199003077777").unwrap_err();
        assert_eq!(error, IdentityError::NationalIdChecksum);
        assert_eq!(error.code(), "national_id_checksum_invalid");
        assert_eq!(
            normalise_national_id("110105194912310021").unwrap_err(),
            IdentityError::NationalIdChecksum
        );
    }

    #[test]
    fn malformed_national_ids_and_impossible_dates_are_refused() {
        for raw in [
            "",
            "11010519491231002",
            "1101051949123100211",
            "1101051949123100A1",
            // 1990-02-30 and 1900-02-29 with correct check characters.
            "110101199002300014",
            "110101190002290011",
        ] {
            assert_eq!(
                normalise_national_id(raw).unwrap_err().code(),
                "invalid_national_id",
                "{raw}"
            );
        }
        // 2000-02-29 exists.
        assert!(normalise_national_id("110101200002290018").is_ok());
    }

    #[test]
    fn names_are_checked_and_masked() {
        assert_eq!(normalise_name("  张三 ").unwrap(), "张三");
        assert_eq!(normalise_name(" ").unwrap_err().code(), "invalid_name");
        assert!(normalise_name("a\u{0}b").is_err());
        assert!(normalise_name(&"名".repeat(101)).is_err());
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name("John Smith"), "J********");
        assert_eq!(mask_name("Jo  A Smith"), "J*******");
        assert_eq!(mask_name(" "), "");
    }

    #[test]
    fn phones_and_national_ids_are_masked() {
        // Last four only: no carrier prefix, country, region or birth date.
        assert_eq!(mask_phone("+8613812345678"), "*******5678");
        assert_eq!(mask_phone("+447911123456"), "*******3456");
        assert_eq!(mask_national_id("11010519491231002X"), "**************002X");
        assert_eq!(mask_national_id("440306198506123458"), "**************3458");
    }
}
