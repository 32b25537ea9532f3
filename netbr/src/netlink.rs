//! rtnetlink over a plain NETLINK_ROUTE socket: links (bridge, veth),
//! addresses and routes. A socket stays bound to the network namespace it
//! was opened in, which is how we configure a container's namespace
//! without ever moving the main thread (see [`crate::netns::netlink_in`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink socket: {0}")]
    Socket(io::Error),
    #[error("netlink {step}: {err}")]
    Request { step: String, err: io::Error },
    #[error("netlink {step}: cannot decode the reply: {why}")]
    Decode { step: String, why: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The errno of a kernel NACK, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Request { err, .. } => err.raw_os_error(),
            _ => None,
        }
    }
}

/// What we need to know about a link.
#[derive(Debug, Clone, Default)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub master: Option<u32>,
    pub mtu: Option<u32>,
    pub mac: String,
    pub kind: Option<String>,
    /// `IFLA_IFALIAS` (see [`crate::marks`]).
    pub alias: Option<String>,
}

pub struct Netlink {
    sock: Socket,
    seq: u32,
}

fn mac_string(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(Error::Socket)?;
        sock.bind_auto().map_err(Error::Socket)?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(Error::Socket)?;
        let _ = sock.set_ext_ack(true);
        Ok(Netlink { sock, seq: 1 })
    }

    /// Sends one request and collects the replies until the ACK (or DONE for dumps).
    fn request(
        &mut self,
        step: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let rerr = |err| Error::Request {
            step: step.to_string(),
            err,
        };
        self.seq += 1;
        let seq = self.seq;
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | flags;
        hdr.sequence_number = seq;
        let mut nl = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(rerr)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        let mut rbuf = vec![0u8; 64 * 1024];
        loop {
            let n = self.sock.recv(&mut &mut rbuf[..], 0).map_err(rerr)?;
            let mut at = 0;
            while at < n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rbuf[at..n]).map_err(
                    |e| Error::Decode {
                        step: step.into(),
                        why: e.to_string(),
                    },
                )?;
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                at += (len + 3) & !3;
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(_) => Err(rerr(e.to_io())),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(i) => out.push(i),
                    _ => {}
                }
            }
            // Non-dump requests end with the ACK above; a dump ends with DONE.
            let _ = dump;
        }
    }

    fn link_from(m: LinkMessage) -> Link {
        let mut l = Link {
            index: m.header.index,
            up: m.header.flags.contains(LinkFlags::Up),
            ..Default::default()
        };
        for a in m.attributes {
            match a {
                LinkAttribute::IfName(n) => l.name = n,
                LinkAttribute::Controller(c) => l.master = Some(c),
                LinkAttribute::Mtu(m) => l.mtu = Some(m),
                LinkAttribute::Address(b) => l.mac = mac_string(&b),
                LinkAttribute::IfAlias(a) => l.alias = Some(a).filter(|a| !a.is_empty()),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(k) = i {
                            l.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        l
    }

    /// The link called `name`, or None.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        match self.request(
            &format!("get link {name}"),
            RouteNetlinkMessage::GetLink(m),
            NLM_F_ACK,
        ) {
            Ok(v) => Ok(v.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(Self::link_from(l)),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// All links of this namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let v = self.request(
            "dump links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(v.into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(Self::link_from(l)),
                _ => None,
            })
            .collect())
    }

    /// Creates a bridge (up); an existing link of that name is fine.
    pub fn ensure_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<Link> {
        if let Some(l) = self.link(name)? {
            if !l.up {
                self.set_up(l.index)?;
            }
            return Ok(l);
        }
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(name.into()));
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        match self.request(
            &format!("create bridge {name}"),
            RouteNetlinkMessage::NewLink(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            // Another ADD created it between our look-up and our create.
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            r => {
                r?;
            }
        }
        self.link(name)?.ok_or_else(|| Error::Request {
            step: format!("create bridge {name}"),
            err: io::Error::from_raw_os_error(libc::ENODEV),
        })
    }

    /// Creates a veth pair: `host` here (up, attached to `master`), `peer`
    /// directly in the namespace `peer_ns` (down), so no rename race exists.
    pub fn add_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_ns: RawFd,
        master: u32,
        mtu: Option<u32>,
    ) -> Result<()> {
        // The peer cannot be brought up in the same request: it is configured
        // before the pair is linked, and a veth without peer refuses to open
        // (ENOTCONN). The caller sets it up from inside the namespace.
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.into()));
        p.attributes.push(LinkAttribute::NetNsFd(peer_ns));
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(host.into()));
        m.attributes.push(LinkAttribute::Controller(master));
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
            p.attributes.push(LinkAttribute::Mtu(mtu));
        }
        // One queue each way, which is what a veth ends up with anyway: told
        // so, the kernel skips shrinking the real queue counts of the new
        // pair, which waits for two expedited RCU grace periods (the bulk of
        // a veth creation: synchronize_rcu_expedited < veth_init_queues).
        for a in [&mut m, &mut p] {
            a.attributes.push(LinkAttribute::NumTxQueues(1));
            a.attributes.push(LinkAttribute::NumRxQueues(1));
        }
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.request(
            &format!("create veth {host} (peer {peer})"),
            RouteNetlinkMessage::NewLink(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(
            &format!("set link {index} up"),
            RouteNetlinkMessage::SetLink(m),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    /// Sets the link's alias; an empty one removes it.
    pub fn set_alias(&mut self, index: u32, alias: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::IfAlias(alias.into()));
        self.request(
            &format!("set alias of link {index}"),
            RouteNetlinkMessage::SetLink(m),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    /// Sets the link's hardware address (while it is down).
    pub fn set_mac(&mut self, index: u32, mac: &[u8; 6]) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.request(
            &format!("set address of link {index}"),
            RouteNetlinkMessage::SetLink(m),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    /// Deletes link `index`; already gone is success.
    pub fn del_link_index(&mut self, index: u32) -> Result<bool> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        match self.request(
            &format!("delete link {index}"),
            RouteNetlinkMessage::DelLink(m),
            NLM_F_ACK,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A request that changes nothing but takes the RTNL lock, so it
    /// returns only once whoever holds it (a deletion) is done with it.
    /// Returns whether link `index` still exists.
    pub fn sync_rtnl(&mut self, index: u32) -> Result<bool> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        match self.request(
            &format!("touch link {index}"),
            RouteNetlinkMessage::SetLink(m),
            NLM_F_ACK,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the link called `name`; already gone is success.
    pub fn del_link(&mut self, name: &str) -> Result<bool> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        match self.request(
            &format!("delete link {name}"),
            RouteNetlinkMessage::DelLink(m),
            NLM_F_ACK,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `ip/prefix` to the link; already present is success. IPv6
    /// addresses skip duplicate address detection (`IFA_F_NODAD`): the
    /// allocator made them unique, and DAD would leave them unusable
    /// (tentative) for a second or two after the container starts.
    pub fn add_addr(&mut self, index: u32, ip: IpAddr, prefix: u8) -> Result<()> {
        let mut m = AddressMessage::default();
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(ip));
        m.attributes.push(AddressAttribute::Address(ip));
        match ip {
            IpAddr::V4(v4) => {
                m.header.family = AddressFamily::Inet;
                if prefix < 31 {
                    let host = if prefix == 0 {
                        u32::MAX
                    } else {
                        u32::MAX >> prefix
                    };
                    let bcast = Ipv4Addr::from(u32::from(v4) | host);
                    m.attributes.push(AddressAttribute::Broadcast(bcast));
                }
            }
            IpAddr::V6(_) => {
                m.header.family = AddressFamily::Inet6;
                m.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        match self.request(
            &format!("add address {ip}/{prefix} to link {index}"),
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Addresses of a link (both families) as `(ip, prefix)`.
    pub fn addrs(&mut self, index: u32) -> Result<Vec<(IpAddr, u8)>> {
        let q = AddressMessage::default();
        let v = self.request(
            "dump addresses",
            RouteNetlinkMessage::GetAddress(q),
            NLM_F_DUMP,
        )?;
        Ok(v.into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    // IPv6 addresses carry IFA_ADDRESS only; IPv4 IFA_LOCAL too.
                    let local = a.attributes.iter().find_map(|x| match x {
                        AddressAttribute::Local(ip) => Some(*ip),
                        _ => None,
                    });
                    let addr = a.attributes.iter().find_map(|x| match x {
                        AddressAttribute::Address(ip) => Some(*ip),
                        _ => None,
                    });
                    local.or(addr).map(|ip| (ip, a.header.prefix_len))
                }
                _ => None,
            })
            .collect())
    }

    /// Adds a route to `dst/prefix` via `gw` out of `oif`; already present is
    /// success. `dst` and `gw` are of one family.
    pub fn add_route(
        &mut self,
        dst: IpAddr,
        prefix: u8,
        gw: Option<IpAddr>,
        oif: u32,
    ) -> Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = if dst.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        m.header.destination_prefix_length = prefix;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = if gw.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        m.header.kind = RouteType::Unicast;
        if prefix > 0 {
            m.attributes
                .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        }
        if let Some(gw) = gw {
            m.attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
        }
        m.attributes.push(RouteAttribute::Oif(oif));
        match self.request(
            &format!("add route {dst}/{prefix} via {gw:?}"),
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Routes of the main table (both families) as `(dst, prefix, gateway)`.
    pub fn routes(&mut self) -> Result<Vec<(IpAddr, u8, Option<IpAddr>)>> {
        let mut out = Vec::new();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut q = RouteMessage::default();
            q.header.address_family = fam;
            let v = self.request("dump routes", RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP)?;
            out.extend(v.into_iter().filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(m)
                    if m.header.table == RouteHeader::RT_TABLE_MAIN =>
                {
                    let mut dst: IpAddr = if m.header.address_family == AddressFamily::Inet6 {
                        std::net::Ipv6Addr::UNSPECIFIED.into()
                    } else {
                        Ipv4Addr::UNSPECIFIED.into()
                    };
                    let mut gw = None;
                    let ip = |a: &RouteAddress| match a {
                        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
                        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
                        _ => None,
                    };
                    for a in &m.attributes {
                        match a {
                            RouteAttribute::Destination(d) => dst = ip(d).unwrap_or(dst),
                            RouteAttribute::Gateway(g) => gw = ip(g),
                            _ => {}
                        }
                    }
                    Some((dst, m.header.destination_prefix_length, gw))
                }
                _ => None,
            }));
        }
        Ok(out)
    }
}

/// A socket that hears the kernel's link notifications (`RTNLGRP_LINK`).
pub struct LinkEvents {
    sock: Socket,
}

/// `RTM_DELLINK`.
const RTM_DELLINK: u16 = 17;

impl LinkEvents {
    pub fn open() -> Result<LinkEvents> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(Error::Socket)?;
        // Group 1 is RTMGRP_LINK.
        sock.bind(&SocketAddr::new(0, 1)).map_err(Error::Socket)?;
        sock.set_non_blocking(true).map_err(Error::Socket)?;
        Ok(LinkEvents { sock })
    }

    pub fn fd(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }

    /// Reads what is queued; true when it holds the `RTM_DELLINK` of link
    /// `index` itself (family unspec; a bridge's port notices are AF_BRIDGE).
    /// The headers are read raw: no attribute needs decoding.
    pub fn saw_del(&mut self, index: u32) -> Result<bool> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut seen = false;
        loop {
            let n = match self.sock.recv(&mut &mut buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(seen),
                Err(err) => {
                    return Err(Error::Request {
                        step: "read link events".into(),
                        err,
                    })
                }
            };
            let mut at = 0;
            while at + 24 <= n {
                let h = &buf[at..];
                let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
                let kind = u16::from_ne_bytes([h[4], h[5]]);
                let family = h[16];
                let idx = i32::from_ne_bytes([h[20], h[21], h[22], h[23]]);
                if kind == RTM_DELLINK && family == 0 && idx as u32 == index {
                    seen = true;
                }
                if len < 16 {
                    break;
                }
                at += (len + 3) & !3;
            }
        }
    }
}
