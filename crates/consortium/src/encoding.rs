//! Canonical binary encoding: one byte string per value, big-endian integers, length-prefixed fields.
//!
//! Every log entry and every signed member request is encoded with these rules, so that
//! the same value always gives the same bytes (and so the same leaf hash and signature),
//! and any other bytes — truncated, with trailing data, a bad tag, a non-0/1 boolean,
//! invalid UTF-8 — are refused on decoding.

use crate::Error;

/// Longest string or byte field accepted in an entry.
pub const FIELD_SIZE_MAX: usize = 4096;
/// Most items in a list field.
pub const LIST_LENGTH_MAX: usize = 1024;

/// Builds canonical bytes.
#[derive(Debug, Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// One byte.
    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    /// Four bytes, big endian.
    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Eight bytes, big endian.
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Fixed-size bytes, without a length.
    pub fn fixed(&mut self, value: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(value);
        self
    }

    /// A length (u32) then the bytes.
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        // Lengths above u32::MAX cannot be produced by the types that use this writer.
        self.u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
        self.bytes.extend_from_slice(value);
        self
    }

    /// A UTF-8 string as length-prefixed bytes.
    pub fn string(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads canonical bytes, refusing anything else.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

fn malformed(detail: &str) -> Error {
    Error::MalformedEntry(detail.to_owned())
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], Error> {
        if self.bytes.len() < count {
            return Err(malformed("truncated"));
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Ok(head)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    /// A boolean: exactly 0 or 1.
    pub fn bool(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(malformed("boolean is not 0 or 1")),
        }
    }

    /// Four bytes, big endian.
    pub fn u32(&mut self) -> Result<u32, Error> {
        let mut array = [0u8; 4];
        array.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(array))
    }

    /// Eight bytes, big endian.
    pub fn u64(&mut self) -> Result<u64, Error> {
        let mut array = [0u8; 8];
        array.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(array))
    }

    /// Fixed-size bytes.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let length = self.u32()? as usize;
        if length > FIELD_SIZE_MAX {
            return Err(malformed("field longer than the maximum"));
        }
        self.take(length)
    }

    /// A length-prefixed UTF-8 string.
    pub fn string(&mut self) -> Result<String, Error> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| malformed("string is not UTF-8"))
    }

    /// Checks that every byte was read.
    pub fn finish(self) -> Result<(), Error> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(malformed("trailing bytes"))
        }
    }
}
