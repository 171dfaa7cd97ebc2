//! Framing of a range of log entries in one body: each entry as a 4-byte big-endian length and its canonical bytes, back to back.
//!
//! The log serves ranges this way (`GET /v1/consortium/entries?start=S&count=N`) so that
//! a mirror fetches a thousand entries per request rather than one. The framing says
//! nothing of what an entry is: each one is still checked by [`crate::Entry::decode`]
//! and against its leaf hash. Decoding refuses a body cut inside a length or an entry,
//! so a truncated response is never read as a shorter range.

use crate::Error;

/// Bytes of the length in front of each entry.
pub const ENTRY_LENGTH_SIZE: usize = 4;

/// Appends one entry to a range body: its length (u32, big endian), then its bytes.
/// Refused (`out_of_range`) for an entry longer than `u32::MAX` bytes.
pub fn push_entry(body: &mut Vec<u8>, entry: &[u8]) -> Result<(), Error> {
    let length = u32::try_from(entry.len()).map_err(|_| {
        Error::OutOfRange(format!(
            "an entry of {} bytes is too long for a range",
            entry.len()
        ))
    })?;
    body.extend_from_slice(&length.to_be_bytes());
    body.extend_from_slice(entry);
    Ok(())
}

/// The range body of `entries`, in order.
pub fn encode_entry_range<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, Error> {
    let total = entries
        .iter()
        .map(|entry| ENTRY_LENGTH_SIZE + entry.as_ref().len())
        .sum();
    let mut body = Vec::with_capacity(total);
    for entry in entries {
        push_entry(&mut body, entry.as_ref())?;
    }
    Ok(body)
}

/// The entries of a range body, in order; an empty body holds none. Refused
/// (`malformed_entry`) when the body ends inside a length or inside an entry.
pub fn decode_entry_range(mut body: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut entries = Vec::new();
    while !body.is_empty() {
        let (length, rest) = body
            .split_first_chunk::<ENTRY_LENGTH_SIZE>()
            .ok_or_else(|| Error::MalformedEntry("a truncated entry length in a range".into()))?;
        let length = u32::from_be_bytes(*length) as usize;
        if rest.len() < length {
            return Err(Error::MalformedEntry("a truncated entry in a range".into()));
        }
        let (entry, rest) = rest.split_at(length);
        entries.push(entry.to_vec());
        body = rest;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_bytes_on_the_wire_are_a_big_endian_length_then_the_entry() -> Result<(), Error> {
        let body = encode_entry_range(&[b"ab".as_slice(), b"", b"xyz"])?;
        assert_eq!(
            body,
            [
                &[0, 0, 0, 2][..],
                b"ab",
                &[0, 0, 0, 0],
                &[0, 0, 0, 3],
                b"xyz"
            ]
            .concat()
        );
        assert_eq!(
            decode_entry_range(&body)?,
            vec![b"ab".to_vec(), Vec::new(), b"xyz".to_vec()]
        );
        assert_eq!(decode_entry_range(&[])?, Vec::<Vec<u8>>::new());
        // A length announcing more than the body holds (by one byte, by many), and a cut
        // length.
        for cut in [
            &[0, 0, 0, 2, 7][..],
            &[0, 0, 1, 0, 7],
            &[0, 0, 0],
            &[0, 0, 0, 1, 9, 0],
        ] {
            assert_eq!(
                decode_entry_range(cut).map_err(|error| error.code()),
                Err("malformed_entry"),
                "{cut:?}"
            );
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn ranges_round_trip_and_every_cut_is_refused(
            entries in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..40),
                0..12,
            ),
        ) {
            let body = encode_entry_range(&entries)?;
            prop_assert_eq!(&decode_entry_range(&body)?, &entries);
            // Cut anywhere but at an entry boundary, the body is refused; at a boundary it
            // is the entries before the cut.
            let mut boundaries = vec![0];
            let mut end = 0;
            for entry in &entries {
                end += ENTRY_LENGTH_SIZE + entry.len();
                boundaries.push(end);
            }
            for cut in 0..body.len() {
                let decoded = decode_entry_range(&body[..cut]);
                match boundaries.iter().position(|boundary| *boundary == cut) {
                    Some(count) => prop_assert_eq!(&decoded?, &entries[..count]),
                    None => prop_assert!(decoded.is_err(), "cut at {}", cut),
                }
            }
        }

        #[test]
        fn arbitrary_bytes_decode_or_are_refused_without_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            if let Ok(entries) = decode_entry_range(&bytes) {
                // What decodes encodes back to the same bytes: the framing is canonical.
                prop_assert_eq!(encode_entry_range(&entries)?, bytes);
            }
        }
    }
}
