//! What rules netbr has installed, remembered on the interfaces themselves
//! (their alias, `IFLA_IFALIAS`, as `ip link` shows it), so that ADD and
//! DEL can skip iptables entirely when nothing changes: an
//! `iptables-restore` on the nft backend costs 5-45 ms, an `iptables-save`
//! about 1.5 ms, while the alias comes with the link look-up ADD and DEL
//! make anyway.
//!
//! - The bridge's alias `mydocker-rules <network> <subnet> <masquerade>`:
//!   the network's rules are in place. Set after they went in (a crash
//!   before leaves no alias, and the next ADD installs them again,
//!   idempotently); it dies with the bridge, so a bridge deleted and made
//!   again never claims rules it does not have.
//! - A host veth's alias `mydocker-ports` (`mydocker-ports6`: in ip6tables
//!   too): the container has rules of its own (port mappings). Set before they go in; it dies with the veth, which
//!   DEL deletes. A DEL that finds the veth gone already looks the rules up.
//!
//! Rules removed behind netbr's back (`iptables -F`) while the bridge stays
//! are put back by the next ADD with port mappings, or by `netbr rm` and the
//! next ADD. Rules made by a netbr older than the aliases go with `netbr rm`.

/// The alias of a container's host veth that has per-container rules.
pub const PORTS: &str = "mydocker-ports";
/// The same, with rules in ip6tables too (the container has an IPv6 address).
pub const PORTS6: &str = "mydocker-ports6";

const NET: &str = "mydocker-rules";

/// The bridge alias saying the network's rules are in place; `subnet` is
/// every subnet of the network, comma-separated.
pub fn net_sig(network: &str, subnet: &str, masquerade: bool) -> String {
    format!("{NET} {network} {subnet} {masquerade}")
}

/// (network, subnets comma-separated) of a bridge alias written by [`net_sig`].
pub fn parse_net(alias: &str) -> Option<(&str, &str)> {
    let mut it = alias.split(' ');
    if it.next()? != NET {
        return None;
    }
    Some((it.next()?, it.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_alias_round_trips_and_fits() {
        let s = net_sig(&"n".repeat(128), "10.0.0.0/24", true);
        assert!(s.len() < 256, "IFALIASZ");
        assert_eq!(parse_net(&s), Some((&"n".repeat(128)[..], "10.0.0.0/24")));
        assert_eq!(parse_net("something else"), None);
        assert_eq!(parse_net(PORTS), None);
    }
}
