//! Free loopback ports for servers a test starts later. Every harness in the workspace
//! draws its ports here, so that two servers started at once in one test process never
//! share a port.

use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;

use rand::Rng;

/// A free loopback address for a server to listen on later. Its port is drawn below the
/// kernel's ephemeral range (32768–60999 by default): a port from that range, free now,
/// can be taken before the server binds it by any outgoing connection or by another
/// `bind` to port 0 (two such binds in a row may return the same port once the first is
/// released). Ports handed out in this process are not handed out again.
pub fn free_addr() -> std::io::Result<SocketAddr> {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port = rng.random_range(20_000..32_000);
        if given.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            given.push(port);
            return l.local_addr();
        }
    }
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// [`free_addr`]'s port.
pub fn free_port() -> u16 {
    free_addr().expect("a free loopback port").port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_handed_out_once_and_is_free() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
        for p in &ports[..10] {
            TcpListener::bind(("127.0.0.1", *p)).expect("the port is free");
        }
    }
}
