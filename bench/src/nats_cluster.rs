//! The three-server JetStream cluster the streams bench measures R3
//! streams on: loopback, free ports, a store each, routes to all three,
//! one cluster name; every server killed when dropped.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::nats_server::{nats_server, Server};

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Three servers of one cluster, listening (JetStream may still be
/// electing its meta leader: the first stream created waits for it).
pub(super) fn start_cluster() -> Result<Vec<Server>, String> {
    let binary =
        nats_server().ok_or("nats-server not found: install it with ./scripts/install-nats.sh")?;
    let route_ports = (0..3).map(|_| free_port()).collect::<Result<Vec<_>, _>>()?;
    let routes = route_ports
        .iter()
        .map(|port| format!("nats-route://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut servers = Vec::new();
    for (index, route_port) in route_ports.iter().enumerate() {
        let store = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"))?;
        let port = free_port()?;
        let config = store.path().join("server.conf");
        std::fs::write(
            &config,
            format!(
                "server_name: n{}\nlisten: \"127.0.0.1:{port}\"\n\
                 jetstream {{ store_dir: {:?} }}\n\
                 cluster {{\n  name: bench\n  listen: \"127.0.0.1:{route_port}\"\n  \
                 routes: [{routes}]\n}}\n",
                index + 1,
                store.path().join("js"),
            ),
        )
        .map_err(|e| format!("server config: {e}"))?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nats-server: {e}"))?;
        servers.push(Server::new(child, port, store));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for server in &servers {
        while std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err() {
            if Instant::now() > deadline {
                return Err("a cluster server did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(servers)
}
