//! Group records of IGMPv3 and MLDv2 reports.
//!
//! RFC 9776 §4.2.4 and RFC 9777 §5.2.4 define the same record layout, differing only in the
//! address length, so both protocols share this code:
//!
//! ```text
//! | Record Type (1) | Aux Data Len (1, in 32-bit words) | Number of Sources (2) |
//! | Multicast Address (A) | Source Address [N] (A each) | Auxiliary Data (4 * Aux Data Len) |
//! ```

use alloc::vec::Vec;
use core::marker::PhantomData;

use super::{Error, GroupRecord, RecordAddress, RecordType, Result};

/// Offsets inside one group record.
pub(crate) mod field {
    pub const RECORD_TYPE: usize = 0;
    pub const AUX_DATA_LEN: usize = 1;
    pub const NUM_SOURCES: core::ops::Range<usize> = 2..4;
    pub const GROUP: usize = 4;
}

/// A validated, zero-copy view of one group record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRecordView<'a, A> {
    /// Exactly the record's bytes: header, sources and auxiliary data.
    bytes: &'a [u8],
    address: PhantomData<A>,
}

impl<'a, A: RecordAddress> GroupRecordView<'a, A> {
    fn header_len() -> usize {
        field::GROUP + A::LEN
    }

    /// Checks that a whole record starts `bytes` and returns it and the bytes after it.
    fn split(bytes: &'a [u8]) -> Result<(Self, &'a [u8])> {
        if bytes.len() < Self::header_len() {
            return Err(Error::BadCount);
        }
        let num_sources = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        let aux_len = usize::from(bytes[field::AUX_DATA_LEN]) * 4;
        let len = Self::header_len() + num_sources * A::LEN + aux_len;
        if bytes.len() < len {
            return Err(Error::BadCount);
        }
        let (record, rest) = bytes.split_at(len);
        let view = GroupRecordView {
            bytes: record,
            address: PhantomData,
        };
        Ok((view, rest))
    }

    /// Record Type (RFC 9776 §4.2.12, RFC 9777 §5.2.12).
    pub fn kind(&self) -> RecordType {
        RecordType::from(self.bytes[field::RECORD_TYPE])
    }

    /// Auxiliary data length in 32-bit words, as on the wire.
    pub fn aux_data_len(&self) -> u8 {
        self.bytes[field::AUX_DATA_LEN]
    }

    /// Number of Sources, big-endian on the wire.
    pub fn num_sources(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }

    /// Multicast Address the record is about.
    pub fn group(&self) -> A {
        A::read(&self.bytes[field::GROUP..])
    }

    /// Source Addresses in wire order.
    pub fn sources(&self) -> impl ExactSizeIterator<Item = A> + 'a {
        let start = Self::header_len();
        let end = start + usize::from(self.num_sources()) * A::LEN;
        self.bytes[start..end].chunks_exact(A::LEN).map(A::read)
    }

    /// Auxiliary Data: the `4 * aux_data_len()` bytes after the sources.
    pub fn aux_data(&self) -> &'a [u8] {
        let start = Self::header_len() + usize::from(self.num_sources()) * A::LEN;
        &self.bytes[start..]
    }

    /// The record's length on the wire.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: a record has at least its header.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Copies the record into an owned [`GroupRecord`].
    pub fn to_repr(&self) -> GroupRecord<A> {
        GroupRecord {
            kind: self.kind(),
            group: self.group(),
            sources: self.sources().collect(),
            aux_data: self.aux_data().to_vec(),
        }
    }
}

/// Iterator over the group records of a report. Yields `Err(BadCount)` once (and then stops)
/// if a record runs past the end of the message or fewer records are present than counted.
#[derive(Debug, Clone)]
pub struct GroupRecords<'a, A> {
    rest: &'a [u8],
    remaining: u16,
    address: PhantomData<A>,
}

impl<'a, A: RecordAddress> GroupRecords<'a, A> {
    pub(crate) fn new(records: &'a [u8], count: u16) -> Self {
        GroupRecords {
            rest: records,
            remaining: count,
            address: PhantomData,
        }
    }
}

impl<'a, A: RecordAddress> Iterator for GroupRecords<'a, A> {
    type Item = Result<GroupRecordView<'a, A>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        match GroupRecordView::split(self.rest) {
            Ok((record, rest)) => {
                self.remaining -= 1;
                self.rest = rest;
                Some(Ok(record))
            }
            Err(error) => {
                self.remaining = 0;
                Some(Err(error))
            }
        }
    }
}

/// Parses `count` records from `bytes`; bytes after the last record are ignored.
pub(crate) fn parse_records<A: RecordAddress>(
    bytes: &[u8],
    count: u16,
) -> Result<Vec<GroupRecord<A>>> {
    // A hostile count must not make us reserve memory the message cannot fill.
    let most = bytes.len() / GroupRecordView::<A>::header_len();
    let mut records = Vec::with_capacity(usize::from(count).min(most));
    for record in GroupRecords::<A>::new(bytes, count) {
        records.push(record?.to_repr());
    }
    Ok(records)
}

impl<A: RecordAddress> GroupRecord<A> {
    /// Length of this record on the wire.
    pub fn buffer_len(&self) -> usize {
        field::GROUP + A::LEN * (1 + self.sources.len()) + self.aux_data.len()
    }

    /// Writes the record into the first `buffer_len()` bytes of `buf`.
    ///
    /// Panics if `buf` is too short, if there are more than 65535 sources, or if the
    /// auxiliary data is not a multiple of 4 bytes or longer than 255 words: none of these
    /// can be put on the wire.
    pub(crate) fn emit(&self, buf: &mut [u8]) {
        let num_sources =
            u16::try_from(self.sources.len()).expect("group record with more than 65535 sources");
        assert!(
            self.aux_data.len().is_multiple_of(4),
            "group record auxiliary data must be a multiple of 4 bytes"
        );
        let aux_words = u8::try_from(self.aux_data.len() / 4)
            .expect("group record auxiliary data longer than 255 words");
        buf[field::RECORD_TYPE] = u8::from(self.kind);
        buf[field::AUX_DATA_LEN] = aux_words;
        buf[field::NUM_SOURCES].copy_from_slice(&num_sources.to_be_bytes());
        self.group.write(&mut buf[field::GROUP..]);
        let mut at = field::GROUP + A::LEN;
        for source in &self.sources {
            source.write(&mut buf[at..]);
            at += A::LEN;
        }
        buf[at..at + self.aux_data.len()].copy_from_slice(&self.aux_data);
    }
}
