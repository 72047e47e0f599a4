//! The DNS server of a user network: on the gateway's address, port 53 (UDP), in the helper's
//! network namespace.
//!
//! It answers A queries for the containers on its network (names, `--network-alias` names,
//! short ids; any case, with or without the trailing dot), an empty NOERROR for their other
//! types (AAAA), and forwards everything else to slirp4netns's resolver ([`crate::net::SLIRP_DNS`]),
//! relaying its reply (SERVFAIL when none comes within [`FORWARD_TIMEOUT`]). The wire format is
//! simple-dns's.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use simple_dns::rdata::{A, RData};
use simple_dns::{CLASS, Packet, PacketFlag, QTYPE, RCODE, ResourceRecord, TYPE};

use super::holder::State;

/// How long a forwarded query waits for the upstream resolver.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest message handled (EDNS's usual UDP size).
const MAX_MESSAGE: usize = 4096;
/// The TTL of den's answers: containers come and go.
const TTL: u32 = 5;

/// What to do with a query.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Send this reply.
    Reply(Vec<u8>),
    /// Not ours: ask upstream.
    Forward,
    /// Not a query den can read: drop it.
    Drop,
}

/// The reply to `query`, where `lookup` gives a known name's address.
pub fn answer(query: &[u8], lookup: &dyn Fn(&str) -> Option<Ipv4Addr>) -> Answer {
    let Ok(q) = Packet::parse(query) else {
        return Answer::Drop;
    };
    if q.has_flags(PacketFlag::RESPONSE) {
        return Answer::Drop;
    }
    let [question] = &q.questions[..] else {
        return Answer::Forward;
    };
    let name = question.qname.to_string();
    let Some(ip) = lookup(&name) else {
        return Answer::Forward;
    };
    let mut reply = Packet::new_reply(q.id());
    reply.set_flags(PacketFlag::RECURSION_AVAILABLE | PacketFlag::AUTHORITATIVE_ANSWER);
    if q.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    reply.questions.push(question.clone());
    if matches!(question.qtype, QTYPE::TYPE(TYPE::A) | QTYPE::ANY) {
        reply.answers.push(ResourceRecord::new(
            question.qname.clone(),
            CLASS::IN,
            TTL,
            RData::A(A::from(ip)),
        ));
    }
    *reply.rcode_mut() = RCODE::NoError;
    match reply.build_bytes_vec() {
        Ok(b) => Answer::Reply(b),
        Err(_) => Answer::Drop,
    }
}

/// SERVFAIL for `query` (the upstream resolver did not answer).
pub fn server_failure(query: &[u8]) -> Option<Vec<u8>> {
    let q = Packet::parse(query).ok()?;
    let mut reply = Packet::new_reply(q.id());
    reply.questions = q.questions.clone();
    *reply.rcode_mut() = RCODE::ServerFailure;
    reply.build_bytes_vec().ok()
}

/// Serve network `network`'s DNS on `gateway:53` in the namespace `netns`, in a thread.
pub fn spawn(state: Arc<Mutex<State>>, netns: PathBuf, network: String, gateway: Ipv4Addr) {
    std::thread::spawn(move || {
        if let Err(e) = serve(&state, &netns, &network, gateway) {
            tracing::warn!(network, error = %e, "the network's DNS server stopped");
        }
    });
}

fn serve(
    state: &Arc<Mutex<State>>,
    netns: &PathBuf,
    network: &str,
    gateway: Ipv4Addr,
) -> std::io::Result<()> {
    let ns = std::fs::File::open(netns)?;
    crate::sys::join_netns(&ns).map_err(|e| std::io::Error::other(e.to_string()))?;
    let sock = UdpSocket::bind((gateway, 53))?;
    let upstream = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    upstream.set_read_timeout(Some(FORWARD_TIMEOUT))?;
    let server: SocketAddr = (
        crate::net::SLIRP_DNS.parse::<Ipv4Addr>().unwrap_or(gateway),
        53,
    )
        .into();
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut up = vec![0u8; MAX_MESSAGE];
    loop {
        let (n, client) = sock.recv_from(&mut buf)?;
        let query = &buf[..n];
        let from = match client.ip() {
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        let lookup = |name: &str| {
            state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .lookup_from(network, from, name)
        };
        let reply = match answer(query, &lookup) {
            Answer::Reply(r) => Some(r),
            Answer::Drop => None,
            Answer::Forward => {
                forward(&upstream, server, query, &mut up).or_else(|| server_failure(query))
            }
        };
        if let Some(r) = reply {
            let _ = sock.send_to(&r, client);
        }
    }
}

/// Ask the upstream resolver; its reply for this query's id, if one comes in time.
fn forward(up: &UdpSocket, server: SocketAddr, query: &[u8], buf: &mut [u8]) -> Option<Vec<u8>> {
    up.send_to(query, server).ok()?;
    let deadline = std::time::Instant::now() + FORWARD_TIMEOUT;
    while std::time::Instant::now() < deadline {
        let (n, from) = up.recv_from(buf).ok()?;
        // Only the reply to this query (a late reply to an earlier one is dropped).
        if from == server && n >= 2 && buf[..2] == query[..2] {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::{Name, Question};

    fn query(name: &str, t: TYPE) -> Vec<u8> {
        let mut p = Packet::new_query(7);
        p.set_flags(PacketFlag::RECURSION_DESIRED);
        p.questions.push(Question::new(
            Name::new_unchecked(name),
            QTYPE::TYPE(t),
            simple_dns::QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    fn known(name: &str) -> Option<Ipv4Addr> {
        let n = name.trim_end_matches('.').to_ascii_lowercase();
        (n == "db").then_some(Ipv4Addr::new(10, 89, 1, 2))
    }

    #[test]
    fn known_names_get_their_address() {
        let Answer::Reply(r) = answer(&query("db", TYPE::A), &known) else {
            panic!("no reply")
        };
        let p = Packet::parse(&r).unwrap();
        assert_eq!(p.id(), 7);
        assert_eq!(p.rcode(), RCODE::NoError);
        match &p.answers[0].rdata {
            RData::A(a) => assert_eq!(Ipv4Addr::from(a.address), Ipv4Addr::new(10, 89, 1, 2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_types_of_known_names_are_empty_and_the_rest_forwarded() {
        let Answer::Reply(r) = answer(&query("DB", TYPE::AAAA), &known) else {
            panic!("no reply")
        };
        let p = Packet::parse(&r).unwrap();
        assert!(p.answers.is_empty());
        assert_eq!(p.rcode(), RCODE::NoError);
        assert_eq!(
            answer(&query("example.com", TYPE::A), &known),
            Answer::Forward
        );
        assert_eq!(answer(b"\x00\x01garbage", &known), Answer::Drop);
        let fail = server_failure(&query("example.com", TYPE::A)).unwrap();
        assert_eq!(Packet::parse(&fail).unwrap().rcode(), RCODE::ServerFailure);
    }
}
