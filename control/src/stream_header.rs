//! The header tunmcastd's test streams carry at the start of every UDP payload, so that any
//! receiver (the daemon's own hosts, a `listen` client, another tool) can tell which stream a
//! datagram belongs to, where it is in the stream and when it was sent.
//!
//! 24 bytes, big-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"TMC1"` |
//! | 4 | 4 | stream id |
//! | 8 | 8 | sequence number, from 0 |
//! | 16 | 8 | send time, ns on the sending daemon's monotonic clock |
//!
//! The rest of the payload is a fixed pattern: byte `i` of the payload (counting from its
//! start, header included) is `i mod 256`.

/// The first four bytes of every stream payload.
pub const MAGIC: [u8; 4] = *b"TMC1";
/// The header's length: the smallest payload a stream may have.
pub const HEADER_LEN: usize = 24;
/// The largest payload a stream may have: an IPv6 packet of 1500 bytes (40 + 8 + 1452).
pub const MAX_PAYLOAD: usize = 1452;

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHeader {
    pub stream: u32,
    pub sequence: u64,
    pub sent_ns: u64,
}

/// A buffer too short for the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooShort;

impl std::fmt::Display for TooShort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a stream payload holds at least {HEADER_LEN} bytes")
    }
}

impl StreamHeader {
    /// Writes the header at the start of `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<(), TooShort> {
        let out = out.get_mut(..HEADER_LEN).ok_or(TooShort)?;
        out[..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&self.stream.to_be_bytes());
        out[8..16].copy_from_slice(&self.sequence.to_be_bytes());
        out[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
        Ok(())
    }

    /// The header at the start of `payload`; `None` when it is shorter than the header or
    /// does not start with [`MAGIC`].
    pub fn decode(payload: &[u8]) -> Option<StreamHeader> {
        let bytes = payload.get(..HEADER_LEN)?;
        if bytes[..4] != MAGIC {
            return None;
        }
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8"));
        Some(StreamHeader {
            stream: u32::from_be_bytes(bytes[4..8].try_into().expect("4")),
            sequence: u64_at(8),
            sent_ns: u64_at(16),
        })
    }
}

/// Checks a payload size: [`HEADER_LEN`] to [`MAX_PAYLOAD`] bytes.
pub fn check_size(size: usize) -> Result<(), String> {
    if size < HEADER_LEN {
        return Err(format!(
            "size {size}: a stream payload holds at least the {HEADER_LEN}-byte header"
        ));
    }
    if size > MAX_PAYLOAD {
        return Err(format!(
            "size {size}: at most {MAX_PAYLOAD} bytes (one unfragmented packet)"
        ));
    }
    Ok(())
}

/// A payload of `size` bytes: a zeroed header, then the pattern.
pub fn payload(size: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..size).map(|i| i as u8).collect();
    bytes[..HEADER_LEN.min(size)].fill(0);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_big_endian() {
        let header = StreamHeader {
            stream: 0x0102_0304,
            sequence: 7,
            sent_ns: 0x1122_3344_5566_7788,
        };
        let mut payload = payload(64);
        header.encode(&mut payload).unwrap();
        assert_eq!(&payload[..8], b"TMC1\x01\x02\x03\x04");
        assert_eq!(&payload[8..16], &7u64.to_be_bytes());
        assert_eq!(payload[16], 0x11);
        assert_eq!(payload[24], 24, "the pattern follows the header");
        assert_eq!(payload[63], 63);
        assert_eq!(StreamHeader::decode(&payload), Some(header));
    }

    #[test]
    fn bad_magic_and_short_payloads_are_not_headers() {
        let header = StreamHeader {
            stream: 1,
            sequence: 2,
            sent_ns: 3,
        };
        let mut bytes = [0u8; 24];
        header.encode(&mut bytes).unwrap();
        assert!(StreamHeader::decode(&bytes).is_some());
        assert_eq!(StreamHeader::decode(&bytes[..23]), None);
        assert_eq!(StreamHeader::decode(&[]), None);
        bytes[3] = b'2';
        assert_eq!(StreamHeader::decode(&bytes), None);
        assert_eq!(header.encode(&mut [0u8; 23]), Err(TooShort));
    }

    #[test]
    fn sizes_below_the_header_are_refused() {
        assert!(check_size(23)
            .unwrap_err()
            .contains("at least the 24-byte header"));
        assert!(check_size(24).is_ok());
        assert!(check_size(MAX_PAYLOAD).is_ok());
        assert!(check_size(MAX_PAYLOAD + 1).is_err());
    }
}
