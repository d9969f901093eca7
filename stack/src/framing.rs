//! What the device carries: bare IP packets (TUN) or Ethernet frames (TAP).
//!
//! On a TAP the daemon is a host with its own MAC address: it takes frames addressed to it, to
//! broadcast or to a multicast MAC, strips the Ethernet II header, and sends IP packets in
//! frames to the multicast MAC of their destination (RFC 1112 §6.4: 01:00:5e + the low 23
//! bits of the group; RFC 2464 §7: 33:33 + the low 32 bits of the IPv6 group).

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use etherparse::{EtherType, Ethernet2Header};

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// The multicast MAC an IP multicast destination maps to.
    pub fn for_multicast(dst: IpAddr) -> Mac {
        match dst {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                Mac([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
            }
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Mac([0x33, 0x33, o[12], o[13], o[14], o[15]])
            }
        }
    }
}

impl std::str::FromStr for Mac {
    type Err = String;

    fn from_str(s: &str) -> Result<Mac, String> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(format!(
                "{s}: expected a MAC address like 02:00:0a:63:00:02"
            ));
        }
        let mut mac = [0u8; 6];
        for (byte, part) in mac.iter_mut().zip(&parts) {
            *byte = u8::from_str_radix(part, 16)
                .ok()
                .filter(|_| part.len() == 2)
                .ok_or_else(|| format!("{s}: {part:?} is not a hex byte"))?;
        }
        let mac = Mac(mac);
        if mac.is_multicast() {
            return Err(format!(
                "{s}: a host's own MAC cannot be a multicast address"
            ));
        }
        Ok(mac)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Why a frame was not handed to the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDrop {
    /// Shorter than an Ethernet II header.
    Truncated,
    /// Unicast to another MAC: a host's NIC filters these.
    NotForUs,
    /// Not IPv4 or IPv6 (ARP, VLAN tags, ...).
    OtherEtherType,
}

/// The destination MAC of an Ethernet II frame, and its IP packet (or why there is none): the
/// part of [`Framing::decap`] a link with many hosts does before choosing the host by the MAC.
#[allow(clippy::type_complexity)]
pub fn ethernet_payload(frame: &[u8]) -> Result<(Mac, Result<&[u8], FrameDrop>), FrameDrop> {
    let (header, payload) = Ethernet2Header::from_slice(frame).map_err(|_| FrameDrop::Truncated)?;
    let packet = match header.ether_type {
        EtherType::IPV4 | EtherType::IPV6 => Ok(payload),
        _ => Err(FrameDrop::OtherEtherType),
    };
    Ok((Mac(header.destination), packet))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// TUN without packet information: every read and write is one IP packet.
    Ip,
    /// TAP: Ethernet II frames; `mac` is this host's own address.
    Ethernet { mac: Mac },
}

impl Framing {
    /// The IP packet inside what the device gave us (one host's view; a link with many hosts
    /// uses [`ethernet_payload`]).
    pub fn decap<'a>(&self, frame: &'a [u8]) -> Result<&'a [u8], FrameDrop> {
        let Framing::Ethernet { mac } = self else {
            return Ok(frame);
        };
        let (dst, payload) = ethernet_payload(frame)?;
        if dst != *mac && !dst.is_multicast() {
            return Err(FrameDrop::NotForUs);
        }
        payload
    }

    /// What to write to the device for an IP `packet` sent to `dst` (always multicast here):
    /// the packet itself on a TUN, no copy; a frame around it on a TAP.
    pub fn encap<'p>(&self, packet: &'p [u8], dst: IpAddr) -> Cow<'p, [u8]> {
        let Framing::Ethernet { mac } = self else {
            return Cow::Borrowed(packet);
        };
        let header = Ethernet2Header {
            destination: Mac::for_multicast(dst).0,
            source: mac.0,
            ether_type: if dst.is_ipv4() {
                EtherType::IPV4
            } else {
                EtherType::IPV6
            },
        };
        let mut frame = Vec::with_capacity(Ethernet2Header::LEN + packet.len());
        frame.extend_from_slice(&header.to_bytes());
        frame.extend_from_slice(packet);
        Cow::Owned(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Mac = Mac([0x02, 0, 0x0a, 0x63, 0, 0x02]);

    #[test]
    fn multicast_macs() {
        let cases = [
            ("224.0.0.22", "01:00:5e:00:00:16"),
            ("239.129.2.3", "01:00:5e:01:02:03"),
            ("ff02::16", "33:33:00:00:00:16"),
            ("ff12::1:ff00:1234", "33:33:ff:00:12:34"),
        ];
        for (ip, mac) in cases {
            assert_eq!(Mac::for_multicast(ip.parse().unwrap()).to_string(), mac);
        }
    }

    #[test]
    fn frames_round_trip_and_filter() {
        let eth = Framing::Ethernet { mac: ME };
        let packet = vec![0x45, 0, 0, 20];
        let frame = eth
            .encap(&packet, "224.0.0.22".parse().unwrap())
            .into_owned();
        assert_eq!(&frame[..6], &[0x01, 0x00, 0x5e, 0, 0, 0x16]);
        assert_eq!(&frame[6..12], &ME.0);
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        assert_eq!(eth.decap(&frame), Ok(&packet[..]));

        let mut to_us = frame.clone();
        to_us[..6].copy_from_slice(&ME.0);
        assert_eq!(eth.decap(&to_us), Ok(&packet[..]));
        let mut to_other = frame.clone();
        to_other[..6].copy_from_slice(&[0x02, 1, 2, 3, 4, 5]);
        assert_eq!(eth.decap(&to_other), Err(FrameDrop::NotForUs));
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(eth.decap(&arp), Err(FrameDrop::OtherEtherType));
        assert_eq!(eth.decap(&frame[..10]), Err(FrameDrop::Truncated));
        assert_eq!(Framing::Ip.decap(&packet), Ok(&packet[..]));
    }

    #[test]
    fn mac_parsing() {
        assert_eq!("02:00:0a:63:00:02".parse::<Mac>(), Ok(ME));
        for bad in [
            "02:00:0a:63:00",
            "01:00:5e:00:00:01",
            "zz:00:0a:63:00:02",
            "2:0:a:63:0:2",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }
}
