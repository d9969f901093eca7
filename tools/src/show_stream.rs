//! Reading a `show` reply as it streams in: the header (interfaces, listeners) first, then one
//! group at a time, so that a client never holds a million-group reply in memory.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::protocol::{GroupInfo, ShowHeader};

/// What a `show` reply held besides its groups.
#[derive(Debug, Default)]
pub struct ShowSummary {
    pub header: ShowHeader,
    /// Groups listed.
    pub groups: u64,
    /// Groups the daemon holds (more than listed with a limit or a filter).
    pub total_groups: Option<u64>,
}

/// Why a streamed `show` reply could not be read.
#[derive(Debug)]
pub enum ShowError {
    /// `{"ok":false,"error":...}`.
    Refused(String),
    /// Not the reply the protocol promises, or the connection broke.
    Bad(String),
}

impl fmt::Display for ShowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShowError::Refused(e) | ShowError::Bad(e) => f.write_str(e),
        }
    }
}

/// Where the parts of a `show` reply go as they are read.
pub trait ShowSink {
    /// The interfaces and listeners, once, before the first group.
    fn header(&mut self, header: &ShowHeader);
    /// Each group, in the order sent.
    fn group(&mut self, group: GroupInfo);
}

/// Reads one `show` reply from `reader` into `sink`.
pub fn read_show(reader: impl Read, sink: &mut dyn ShowSink) -> Result<ShowSummary, ShowError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let seed = ReplySeed { sink };
    match seed.deserialize(&mut de) {
        Ok(Ok(summary)) => Ok(summary),
        Ok(Err(refused)) => Err(ShowError::Refused(refused)),
        Err(e) => Err(ShowError::Bad(format!("unexpected show reply: {e}"))),
    }
}

struct ReplySeed<'a> {
    sink: &'a mut dyn ShowSink,
}

impl<'de> DeserializeSeed<'de> for ReplySeed<'_> {
    type Value = Result<ShowSummary, String>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReplySeed<'_> {
    type Value = Result<ShowSummary, String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a show reply object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut summary = ShowSummary::default();
        let mut ok = None;
        let mut error = None;
        let mut header_sent = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "ok" => ok = Some(map.next_value::<bool>()?),
                "error" => error = Some(map.next_value::<String>()?),
                "interfaces" => summary.header.interfaces = map.next_value()?,
                "listeners" => summary.header.listeners = map.next_value()?,
                "total_groups" => summary.total_groups = Some(map.next_value()?),
                "groups" => {
                    if !header_sent {
                        self.sink.header(&summary.header);
                        header_sent = true;
                    }
                    summary.groups = map.next_value_seed(GroupsSeed {
                        sink: &mut *self.sink,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match ok {
            Some(true) => {
                if !header_sent {
                    self.sink.header(&summary.header);
                }
                Ok(Ok(summary))
            }
            Some(false) => {
                Ok(Err(error.unwrap_or_else(|| {
                    "request refused (no error message given)".into()
                })))
            }
            None => Err(de::Error::missing_field("ok")),
        }
    }
}

struct GroupsSeed<'a> {
    sink: &'a mut dyn ShowSink,
}

impl<'de> DeserializeSeed<'de> for GroupsSeed<'_> {
    type Value = u64;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for GroupsSeed<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of groups")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0;
        while let Some(group) = seq.next_element::<GroupInfo>()? {
            self.sink.group(group);
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Events(Vec<String>);

    impl ShowSink for Events {
        fn header(&mut self, _: &ShowHeader) {
            self.0.push("header".into());
        }
        fn group(&mut self, group: GroupInfo) {
            self.0.push(group.group.to_string());
        }
    }

    #[test]
    fn groups_arrive_one_by_one_after_the_header() {
        let reply = br#"{"ok":true,"interfaces":[],"listeners":[],"groups":[
            {"iface":"tun0","group":"239.1.1.1","family":"ipv4","users":1,"state":"idle",
             "last_reporter":false,"unsolicited_left":0,"filter_mode":"exclude","sources":[],
             "requests":[{"mode":"exclude","sources":[]}]},
            {"iface":"tun0","group":"ff12::1","family":"ipv6","users":2,"state":"idle",
             "last_reporter":false,"unsolicited_left":0,"filter_mode":"exclude","sources":[],
             "requests":[]}],"total_groups":7}
"#;
        let mut events = Events::default();
        let summary = read_show(&reply[..], &mut events).unwrap();
        assert_eq!(events.0, ["header", "239.1.1.1", "ff12::1"]);
        assert_eq!((summary.groups, summary.total_groups), (2, Some(7)));
    }

    #[test]
    fn a_refusal_and_garbage_are_errors() {
        let refused = read_show(
            &br#"{"ok":false,"error":"no such group"}"#[..],
            &mut Events::default(),
        );
        assert!(matches!(refused, Err(ShowError::Refused(e)) if e == "no such group"));
        let cut = read_show(
            &br#"{"ok":true,"groups":[{"iface":"#[..],
            &mut Events::default(),
        );
        assert!(matches!(cut, Err(ShowError::Bad(_))));
    }
}
