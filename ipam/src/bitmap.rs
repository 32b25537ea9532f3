//! The pool of one network: a bitmap over every host offset of the subnet,
//! plus the owner (container id + interface) of each allocated offset.
//! Pure logic, no I/O: the store reads and writes it, the CLI asks it.

use std::net::Ipv4Addr;

pub use crate::owners::Owner;
use crate::owners::Owners;

/// Smallest subnet we allocate from (/8 = 2 MiB of bitmap) and the largest
/// prefix that still leaves a usable host once network, broadcast and the
/// gateway are reserved.
pub const MIN_PREFIX: u8 = 8;
pub const MAX_PREFIX: u8 = 30;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("subnet {subnet}: prefix must be between /{MIN_PREFIX} and /{MAX_PREFIX}")]
    Prefix { subnet: String },
    #[error("no free address left in {range} of network {network}")]
    Exhausted { network: String, range: String },
    #[error("requested address {ip} is already allocated to {id}/{ifname}")]
    Taken {
        ip: Ipv4Addr,
        id: String,
        ifname: String,
    },
    #[error("requested address {ip} is outside the allocatable range {range}")]
    OutOfRange { ip: Ipv4Addr, range: String },
    #[error("requested address {ip} is reserved (network, broadcast or gateway)")]
    Reserved { ip: Ipv4Addr },
    #[error("range {range}: {why}")]
    BadRange { range: String, why: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// A subnet: `ipnetwork`'s, always held as its network address (host bits
/// zero, see [`parse_subnet`]) so that it prints as `10.22.0.0/16`.
pub type Subnet = ipnetwork::Ipv4Network;

/// Parses `A.B.C.D/N`, clearing host bits (like host-local does). A bare
/// address or a netmask (which `ipnetwork` would take) is refused.
pub fn parse_subnet(s: &str) -> Option<Subnet> {
    let (ip, len) = s.split_once('/')?;
    let prefix: u8 = len.trim().parse().ok()?;
    let net = Subnet::new(ip.trim().parse().ok()?, prefix).ok()?;
    Subnet::new(net.network(), prefix).ok()
}

/// The offset of `ip` in `subnet`, or `None` when outside it.
pub fn offset(subnet: Subnet, ip: Ipv4Addr) -> Option<u32> {
    subnet
        .contains(ip)
        .then(|| u32::from(ip) - u32::from(subnet.network()))
}

/// The address at `offset` in `subnet`; offsets come from the subnet's own
/// bitmap, so one outside it is a bug.
pub fn host(subnet: Subnet, offset: u32) -> Ipv4Addr {
    subnet.nth(offset).expect("offset within the subnet")
}

/// A subnet we allocate from: /8 to /30.
pub fn check_prefix(subnet: Subnet) -> Result<()> {
    if (MIN_PREFIX..=MAX_PREFIX).contains(&subnet.prefix()) {
        Ok(())
    } else {
        Err(Error::Prefix {
            subnet: subnet.to_string(),
        })
    }
}

/// Allocatable host offsets, inclusive, network and broadcast excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: u32,
    pub hi: u32,
}

impl Range {
    /// The range for a subnet, narrowed by optional rangeStart/rangeEnd.
    pub fn new(subnet: Subnet, start: Option<Ipv4Addr>, end: Option<Ipv4Addr>) -> Result<Range> {
        let name = || {
            format!(
                "{}-{}",
                start.map(|s| s.to_string()).unwrap_or_default(),
                end.map(|s| s.to_string()).unwrap_or_default()
            )
        };
        let mut r = Range {
            lo: 1,
            hi: subnet.size() - 2,
        };
        if let Some(s) = start {
            r.lo = offset(subnet, s).ok_or_else(|| Error::BadRange {
                range: name(),
                why: format!("rangeStart is outside {subnet}"),
            })?;
        }
        if let Some(e) = end {
            r.hi = offset(subnet, e).ok_or_else(|| Error::BadRange {
                range: name(),
                why: format!("rangeEnd is outside {subnet}"),
            })?;
        }
        if r.lo == 0 || r.hi >= subnet.size() - 1 || r.lo > r.hi {
            return Err(Error::BadRange {
                range: name(),
                why: "must lie between the network and broadcast addresses, start <= end".into(),
            });
        }
        Ok(r)
    }
    pub fn contains(&self, off: u32) -> bool {
        self.lo <= off && off <= self.hi
    }
    pub fn display(&self, subnet: Subnet) -> String {
        format!("{}-{}", host(subnet, self.lo), host(subnet, self.hi))
    }
}

/// One network's allocation state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub subnet: Subnet,
    /// Gateway offset, 0 when none (offset 0 is the network address, never a gateway).
    pub gateway: u32,
    /// Offset handed out last: the next search starts after it (next-fit).
    pub last: u32,
    pub words: Vec<u64>,
    /// Owners of the set bits.
    pub owners: Owners,
}

impl Pool {
    pub fn new(subnet: Subnet, gateway: u32) -> Result<Pool> {
        check_prefix(subnet)?;
        let words = (subnet.size() as usize).div_ceil(64);
        Ok(Pool {
            subnet,
            gateway,
            last: 0,
            words: vec![0; words],
            owners: Owners::default(),
        })
    }

    pub fn is_set(&self, off: u32) -> bool {
        self.words[(off / 64) as usize] & (1u64 << (off % 64)) != 0
    }
    fn set(&mut self, off: u32) {
        self.words[(off / 64) as usize] |= 1u64 << (off % 64);
    }
    fn clear(&mut self, off: u32) {
        self.words[(off / 64) as usize] &= !(1u64 << (off % 64));
    }

    /// The offset held by `id`/`ifname`, if any.
    pub fn find(&self, id: &str, ifname: &str) -> Option<u32> {
        self.owners.find(id, ifname)
    }

    /// First clear bit in `[from, to]` (inclusive), scanning 64 bits at a time.
    fn find_zero(&self, from: u32, to: u32) -> Option<u32> {
        let (from, to) = (from as u64, to as u64);
        let mut i = from;
        while i <= to {
            let w = i / 64;
            let mut free = !self.words[w as usize] & (u64::MAX << (i % 64));
            if w == to / 64 && to % 64 < 63 {
                free &= (1u64 << (to % 64 + 1)) - 1;
            }
            if free != 0 {
                return Some((w * 64 + free.trailing_zeros() as u64) as u32);
            }
            i = (w + 1) * 64;
        }
        None
    }

    /// Allocates an address for `id`/`ifname`: the `requested` offset if given
    /// (refused when taken by someone else, reserved or out of range), else the
    /// next free one after the last handed out. Allocating again for an owner
    /// that already holds an address returns that address (a retried ADD).
    pub fn allocate(
        &mut self,
        network: &str,
        range: Range,
        id: &str,
        ifname: &str,
        requested: Option<u32>,
    ) -> Result<u32> {
        if let Some(held) = self.find(id, ifname) {
            if requested.is_none_or(|r| r == held) {
                return Ok(held);
            }
        }
        let off = match requested {
            Some(r) => {
                let ip = host(self.subnet, r);
                if r == 0 || r >= self.subnet.size() - 1 || (self.gateway != 0 && r == self.gateway)
                {
                    return Err(Error::Reserved { ip });
                }
                if !range.contains(r) {
                    return Err(Error::OutOfRange {
                        ip,
                        range: range.display(self.subnet),
                    });
                }
                if self.is_set(r) {
                    let o = self.owners.owner_of(r).unwrap_or(Owner {
                        offset: r,
                        id: "?".into(),
                        ifname: "?".into(),
                    });
                    return Err(Error::Taken {
                        ip,
                        id: o.id,
                        ifname: o.ifname,
                    });
                }
                r
            }
            None => self.next_free(range).ok_or_else(|| Error::Exhausted {
                network: network.to_string(),
                range: range.display(self.subnet),
            })?,
        };
        self.set(off);
        self.last = off;
        self.owners.push(off, id, ifname);
        Ok(off)
    }

    /// Next-fit: the first free offset after `last`, wrapping to the range start.
    fn next_free(&mut self, range: Range) -> Option<u32> {
        // Mark the gateway taken for the scan so the scan never has to special-case it.
        let gw = self.gateway != 0 && range.contains(self.gateway) && !self.is_set(self.gateway);
        if gw {
            self.set(self.gateway);
        }
        let start = if range.contains(self.last) && self.last < range.hi {
            self.last + 1
        } else {
            range.lo
        };
        let found = self.find_zero(start, range.hi).or_else(|| {
            (start > range.lo)
                .then(|| self.find_zero(range.lo, start - 1))
                .flatten()
        });
        if gw {
            self.clear(self.gateway);
        }
        found
    }

    /// Releases whatever `id`/`ifname` holds; returns the freed offsets (none is fine).
    pub fn release(&mut self, id: &str, ifname: &str) -> Vec<u32> {
        let freed = self.owners.remove(id, ifname);
        for &off in &freed {
            self.clear(off);
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cidr: &str) -> (Pool, Range) {
        let s = parse_subnet(cidr).unwrap();
        let p = Pool::new(s, 1).unwrap();
        (p, Range::new(s, None, None).unwrap())
    }

    #[test]
    fn first_allocation_skips_network_and_gateway() {
        let (mut p, r) = pool("10.1.0.0/24");
        assert_eq!(p.allocate("n", r, "a", "eth0", None).unwrap(), 2);
        assert_eq!(p.allocate("n", r, "b", "eth0", None).unwrap(), 3);
    }

    #[test]
    fn next_fit_continues_after_last_even_when_lower_is_freed() {
        let (mut p, r) = pool("10.1.0.0/24");
        p.allocate("n", r, "a", "eth0", None).unwrap(); // .2
        p.allocate("n", r, "b", "eth0", None).unwrap(); // .3
        assert_eq!(p.release("a", "eth0"), vec![2]);
        assert_eq!(p.allocate("n", r, "c", "eth0", None).unwrap(), 4);
    }

    #[test]
    fn next_fit_wraps_to_range_start() {
        let s = parse_subnet("10.1.0.0/29").unwrap(); // hosts .1-.6, gw .1
        let mut p = Pool::new(s, 1).unwrap();
        let r = Range::new(s, None, None).unwrap();
        for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            assert_eq!(p.allocate("n", r, id, "eth0", None).unwrap(), i as u32 + 2);
        }
        p.release("b", "eth0");
        assert_eq!(p.allocate("n", r, "f", "eth0", None).unwrap(), 3);
    }

    #[test]
    fn exhausted_subnet_is_an_error() {
        let s = parse_subnet("10.1.0.0/30").unwrap(); // .1 gw, .2 only host
        let mut p = Pool::new(s, 1).unwrap();
        let r = Range::new(s, None, None).unwrap();
        assert_eq!(p.allocate("n", r, "a", "eth0", None).unwrap(), 2);
        let e = p.allocate("n", r, "b", "eth0", None).unwrap_err();
        assert!(matches!(e, Error::Exhausted { .. }), "{e:?}");
        assert!(e.to_string().contains("no free address"));
    }

    #[test]
    fn requested_ip_is_honoured_or_refused_when_taken() {
        let (mut p, r) = pool("10.1.0.0/24");
        assert_eq!(p.allocate("n", r, "a", "eth0", Some(50)).unwrap(), 50);
        let e = p.allocate("n", r, "b", "eth0", Some(50)).unwrap_err();
        assert_eq!(
            e,
            Error::Taken {
                ip: "10.1.0.50".parse().unwrap(),
                id: "a".into(),
                ifname: "eth0".into()
            }
        );
        assert!(matches!(
            p.allocate("n", r, "b", "eth0", Some(1)),
            Err(Error::Reserved { .. })
        ));
        assert!(matches!(
            p.allocate("n", r, "b", "eth0", Some(255)),
            Err(Error::Reserved { .. })
        ));
        // Next-fit goes on after the requested one.
        assert_eq!(p.allocate("n", r, "c", "eth0", None).unwrap(), 51);
    }

    #[test]
    fn same_owner_gets_the_same_address_back() {
        let (mut p, r) = pool("10.1.0.0/24");
        let a = p.allocate("n", r, "a", "eth0", None).unwrap();
        assert_eq!(p.allocate("n", r, "a", "eth0", None).unwrap(), a);
        assert_ne!(p.allocate("n", r, "a", "eth1", None).unwrap(), a);
        assert_eq!(p.owners.len(), 2);
    }

    #[test]
    fn range_start_and_end_bound_allocation() {
        let s = parse_subnet("10.1.0.0/24").unwrap();
        let mut p = Pool::new(s, 1).unwrap();
        let r = Range::new(s, "10.1.0.10".parse().ok(), "10.1.0.11".parse().ok()).unwrap();
        assert_eq!(p.allocate("n", r, "a", "eth0", None).unwrap(), 10);
        assert_eq!(p.allocate("n", r, "b", "eth0", None).unwrap(), 11);
        assert!(p.allocate("n", r, "c", "eth0", None).is_err());
        assert!(matches!(
            p.allocate("n", r, "c", "eth0", Some(20)),
            Err(Error::OutOfRange { .. })
        ));
        assert!(Range::new(s, "10.2.0.1".parse().ok(), None).is_err());
    }

    #[test]
    fn release_of_nothing_is_empty() {
        let (mut p, _) = pool("10.1.0.0/24");
        assert!(p.release("ghost", "eth0").is_empty());
    }

    #[test]
    fn allocation_with_60000_taken_is_correct() {
        let s = parse_subnet("10.20.0.0/16").unwrap();
        let mut p = Pool::new(s, 1).unwrap();
        let r = Range::new(s, None, None).unwrap();
        // Fill offsets 2..=60001 directly (allocating one by one is quadratic in debug builds).
        for off in 2..60_002u32 {
            p.set(off);
            p.owners.push(off, &format!("{:064x}", off - 2), "eth0");
        }
        p.last = 60_001;
        // Free one address far behind the cursor: next-fit must wrap to find
        // nothing after, then scan from the start.
        assert_eq!(p.release(&format!("{:064x}", 7), "eth0"), vec![9]);
        p.last = r.hi; // force the wrap path
                       // Its speed is scripts/bench's (section 4: IPAM at 60,000 taken).
        let got = p.allocate("n", r, "new", "eth0", None).unwrap();
        assert_eq!(got, 9);
        let got2 = p.allocate("n", r, "new2", "eth0", None).unwrap();
        assert_eq!(got2, 60_002);
        assert!(p.is_set(got2));
    }

    #[test]
    fn subnet_parse_and_overlap() {
        let a = parse_subnet("10.22.3.4/16").unwrap();
        assert_eq!(a.to_string(), "10.22.0.0/16");
        assert!(parse_subnet("10.22.3.4").is_none());
        assert!(parse_subnet("10.22.0.0/255.255.0.0").is_none());
        assert_eq!(offset(a, "10.22.1.2".parse().unwrap()), Some(258));
        assert_eq!(offset(a, "10.23.0.0".parse().unwrap()), None);
        assert_eq!(host(a, 258), "10.22.1.2".parse::<Ipv4Addr>().unwrap());
        let b = parse_subnet("10.22.128.0/24").unwrap();
        assert!(a.overlaps(b) && b.overlaps(a));
        assert!(!a.overlaps(parse_subnet("10.23.0.0/16").unwrap()));
        assert!(parse_subnet("10.0.0.0/33").is_none());
        assert!(Pool::new(parse_subnet("10.0.0.0/31").unwrap(), 0).is_err());
        assert!(parse_subnet("0.0.0.0/0").is_some());
    }
}
