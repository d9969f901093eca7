//! The packet accessors IGMP and MLD share. Their messages lay out the group, the v3 query's
//! `Resv | S | QRV`, QQIC, Number of Sources and sources, and the v3 report's Reserved,
//! Number of Records and records alike, at offsets of their own (each protocol's `field`
//! module) and with addresses of their own length: one macro writes the accessors for both
//! [`IgmpPacket`](super::igmp::IgmpPacket) and [`MldPacket`](super::mld::MldPacket).

/// The shared accessors of `$packet`, a packet of `$addr` addresses whose field offsets are
/// in the `field` module in scope where it is invoked; `$v3` names its v3 version in the docs.
macro_rules! shared_accessors {
    ($packet:ident, $addr:ty, $v3:literal) => {
        impl<T: AsRef<[u8]>> $packet<T> {
            fn bytes(&self) -> &[u8] {
                self.buffer.as_ref()
            }

            fn read_u16(&self, range: core::ops::Range<usize>) -> u16 {
                let bytes = &self.bytes()[range];
                u16::from_be_bytes([bytes[0], bytes[1]])
            }

            /// Group address of queries, v1/v2 reports and leaves (dones). In a v3 report
            /// these bytes are Reserved and Number of Records instead. Panics if the message
            /// is shorter than its fixed header.
            pub fn group(&self) -> $addr {
                <$addr as super::RecordAddress>::read(&self.bytes()[field::GROUP])
            }

            #[doc = concat!(
                        "S flag of an ",
                        $v3,
                        " query. Panics if the message is shorter than the query's fixed header.",
                    )]
            pub fn suppress_router(&self) -> bool {
                super::v3_query::suppress_router_of(self.bytes()[field::FLAGS])
            }

            #[doc = concat!(
                        "QRV of an ",
                        $v3,
                        " query. Panics if the message is shorter than the query's fixed header.",
                    )]
            pub fn qrv(&self) -> u8 {
                super::v3_query::qrv_of(self.bytes()[field::FLAGS])
            }

            #[doc = concat!(
                        "QQIC of an ",
                        $v3,
                        " query. Panics if the message is shorter than the query's fixed header.",
                    )]
            pub fn qqic(&self) -> u8 {
                self.bytes()[field::QQIC]
            }

            #[doc = concat!(
                        "Number of Sources of an ",
                        $v3,
                        " query. Panics if the message is shorter than the query's fixed header.",
                    )]
            pub fn num_sources(&self) -> u16 {
                self.read_u16(field::NUM_SOURCES)
            }

            #[doc = concat!(
                        "Source `index` of an ",
                        $v3,
                        " query. Panics if it lies outside the message.",
                    )]
            pub fn source(&self, index: usize) -> $addr {
                let len = <$addr as super::RecordAddress>::LEN;
                let at = field::SOURCES + index * len;
                <$addr as super::RecordAddress>::read(&self.bytes()[at..at + len])
            }

            #[doc = concat!(
                        "Sources of an ",
                        $v3,
                        " query. Panics unless [`check_len`](Self::check_len) passed.",
                    )]
            pub fn sources(&self) -> impl ExactSizeIterator<Item = $addr> + '_ {
                let len = <$addr as super::RecordAddress>::LEN;
                let end = field::SOURCES + usize::from(self.num_sources()) * len;
                self.bytes()[field::SOURCES..end]
                    .chunks_exact(len)
                    .map(<$addr as super::RecordAddress>::read)
            }

            #[doc = concat!("Number of (group) records of an ", $v3, " report.")]
            pub fn num_records(&self) -> u16 {
                self.read_u16(field::NUM_RECORDS)
            }

            #[doc = concat!(
                        "Records of an ",
                        $v3,
                        " report, each checked against the end of the message.",
                    )]
            pub fn records(&self) -> super::GroupRecords<'_, $addr> {
                super::GroupRecords::new(&self.bytes()[field::RECORDS..], self.num_records())
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $packet<T> {
            fn bytes_mut(&mut self) -> &mut [u8] {
                self.buffer.as_mut()
            }

            fn write_u16(&mut self, range: core::ops::Range<usize>, value: u16) {
                self.bytes_mut()[range].copy_from_slice(&value.to_be_bytes());
            }

            /// Writes the Checksum field big-endian; [`fill_checksum`](Self::fill_checksum)
            /// computes it.
            pub fn set_checksum(&mut self, checksum: u16) {
                self.write_u16(field::CHECKSUM, checksum);
            }

            /// Writes the group address.
            pub fn set_group(&mut self, group: $addr) {
                super::RecordAddress::write(&group, &mut self.bytes_mut()[field::GROUP]);
            }

            #[doc = concat!(
                        "Writes `Resv(4) = 0 | S | QRV` of an ",
                        $v3,
                        " query; QRV above 7 is truncated to 3 bits.",
                    )]
            pub fn set_flags(&mut self, suppress_router: bool, qrv: u8) {
                self.bytes_mut()[field::FLAGS] = super::v3_query::flags_byte(suppress_router, qrv);
            }

            #[doc = concat!("Writes the QQIC of an ", $v3, " query.")]
            pub fn set_qqic(&mut self, qqic: u8) {
                self.bytes_mut()[field::QQIC] = qqic;
            }

            #[doc = concat!("Writes the Number of Sources of an ", $v3, " query (big-endian).")]
            pub fn set_num_sources(&mut self, count: u16) {
                self.write_u16(field::NUM_SOURCES, count);
            }

            #[doc = concat!(
                        "Writes Source Address `index` of an ",
                        $v3,
                        " query. Panics if it lies outside the buffer.",
                    )]
            pub fn set_source(&mut self, index: usize, source: $addr) {
                let len = <$addr as super::RecordAddress>::LEN;
                let at = field::SOURCES + index * len;
                super::RecordAddress::write(&source, &mut self.bytes_mut()[at..at + len]);
            }

            #[doc = concat!(
                        "Sets Reserved (0) and Number of (group) records of an ",
                        $v3,
                        " report.",
                    )]
            pub fn set_num_records(&mut self, count: u16) {
                self.write_u16(field::REPORT_RESERVED, 0);
                self.write_u16(field::NUM_RECORDS, count);
            }

            #[doc = concat!(
                        "Mutable access to the bytes after the fixed header (records of an ",
                        $v3,
                        " report).",
                    )]
            pub fn records_mut(&mut self) -> &mut [u8] {
                &mut self.bytes_mut()[field::RECORDS..]
            }

            /// Writes what a v3 query adds to an older one: flags, QQIC, Number of Sources,
            /// sources. Panics past 65535 sources.
            fn emit_v3_query_fields(
                &mut self,
                suppress_router: bool,
                qrv: u8,
                qqic: u8,
                sources: &[$addr],
            ) {
                let count =
                    u16::try_from(sources.len()).expect(concat!($v3, " query with >65535 sources"));
                self.set_flags(suppress_router, qrv);
                self.set_qqic(qqic);
                self.set_num_sources(count);
                for (index, source) in sources.iter().enumerate() {
                    self.set_source(index, *source);
                }
            }

            /// Writes a v3 report's Reserved, Number of Records and records. Panics past
            /// 65535 records.
            fn emit_v3_records(&mut self, records: &[super::GroupRecord<$addr>]) {
                let count = u16::try_from(records.len())
                    .expect(concat!($v3, " report with >65535 records"));
                self.set_num_records(count);
                let mut rest = self.records_mut();
                for record in records {
                    let (this, after) = rest.split_at_mut(record.buffer_len());
                    record.emit(this);
                    rest = after;
                }
            }
        }
    };
}
