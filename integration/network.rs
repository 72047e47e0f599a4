//! The userspace network and port forwarding: `-p`, `-P`, `port`, outbound traffic, DNS files,
//! errors, and cleanup.

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::sandbox::{Sandbox, busybox, free_port, registry, wait_http};

fn ready() -> Sandbox {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb
}

pub fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A web root with one page, served by busybox httpd on port 80 of a detached container.
fn web(sb: &Sandbox, name: &str, publish: &str) {
    let www = sb.dir.join(format!("www-{name}"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), format!("hello from {name}\n")).unwrap();
    let vol = format!("{}:/www:ro", www.display());
    sb.den(&[
        "run",
        "-d",
        "--name",
        name,
        "-p",
        publish,
        "-v",
        &vol,
        &busybox(),
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ])
    .ok();
}

#[test]
fn http_through_a_published_port() {
    let sb = ready();
    let port = free_port();
    web(&sb, "web", &format!("{port}:80"));
    let addr = format!("127.0.0.1:{port}");
    wait_http(&addr, "/");
    for _ in 0..20 {
        let page = http_get(&addr, "/index.html");
        assert!(
            page.starts_with("HTTP/1.") && page.ends_with("hello from web\n"),
            "{page}"
        );
    }
    // ps, port and inspect show the mapping
    let ps = sb.den(&["ps", "--format", "{{.Ports}}"]).ok();
    assert_eq!(ps.trim(), format!("0.0.0.0:{port}->80/tcp"));
    assert_eq!(
        sb.den(&["port", "web"]).ok(),
        format!("80/tcp -> 0.0.0.0:{port}\n")
    );
    assert_eq!(
        sb.den(&["port", "web", "80"]).ok(),
        format!("0.0.0.0:{port}\n")
    );
    let hp = sb
        .den(&[
            "inspect",
            "-f",
            "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
            "web",
        ])
        .ok();
    assert_eq!(hp.trim(), port.to_string());
    // One den process per running container: its monitor relays the ports (and slirp4netns is
    // the only other helper).
    let dens = den_processes(&sb);
    assert_eq!(dens.len(), 1, "den processes of one container: {dens:?}");
    assert!(dens[0].contains(" __monitor "), "{dens:?}");
    // rm -f frees the port at once
    sb.den(&["rm", "-f", "web"]).ok();
    TcpListener::bind(("0.0.0.0", port)).expect("the port is free after rm -f");
}

#[test]
fn one_connection_many_exchanges() {
    let sb = ready();
    let port = free_port();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "echo",
        "-p",
        &format!("{port}:7"),
        &busybox(),
        "nc",
        "-ll",
        "-p",
        "7",
        "-e",
        "cat",
    ])
    .ok();
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let mut s = loop {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"hello\n").unwrap();
        let mut b = [0u8; 6];
        if s.read_exact(&mut b).is_ok() && &b == b"hello\n" {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "echo server never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for i in 0..200 {
        let msg = format!("message {i}\n");
        s.write_all(msg.as_bytes()).unwrap();
        let mut b = vec![0u8; msg.len()];
        s.read_exact(&mut b).unwrap();
        assert_eq!(b, msg.as_bytes());
    }
    sb.den(&["rm", "-f", "echo"]).ok();
}

/// The mounts that let busybox run the host's python (a server with keep-alive and UDP).
const HOST_PYTHON: [&str; 6] = [
    "-v",
    "/usr:/usr:ro",
    "-v",
    "/lib64:/lib64:ro",
    "-v",
    "/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro",
];

/// `run -d --name NAME -p PUBLISH` of `script` under the host's python in busybox.
fn python_container(sb: &Sandbox, name: &str, publish: &str, script: &str) {
    let mut args = vec!["run", "-d", "--name", name, "-p", publish];
    args.extend(HOST_PYTHON);
    let image = busybox();
    args.extend([image.as_str(), "/usr/bin/python3", "-c", script]);
    sb.den(&args).ok();
}

/// Read one HTTP/1.1 response with a Content-Length body from a kept-alive connection.
fn read_response(s: &mut impl BufRead) -> (String, String) {
    let mut head = String::new();
    let mut len = 0;
    loop {
        let mut line = String::new();
        assert!(
            s.read_line(&mut line).unwrap() > 0,
            "connection closed mid-response"
        );
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[test]
fn http_keep_alive_to_a_server_still_starting() {
    let sb = ready();
    let port = free_port();
    // An HTTP/1.1 server that keeps connections open, listening only after half a second:
    // a connection made at once waits for it instead of being refused.
    let server = "import time, http.server as h\ntime.sleep(0.5)\nclass H(h.BaseHTTPRequestHandler):\n protocol_version='HTTP/1.1'\n def do_GET(self):\n  b=('page '+self.path).encode()\n  self.send_response(200)\n  self.send_header('Content-Length',str(len(b)))\n  self.end_headers()\n  self.wfile.write(b)\nh.HTTPServer(('0.0.0.0',8000),H).serve_forever()\n";
    python_container(&sb, "ka", &format!("{port}:8000"), server);
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = std::io::BufReader::new(s);
    for i in 0..50 {
        write!(w, "GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (head, body) = read_response(&mut r);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, format!("page /{i}"));
    }
    sb.den(&["rm", "-f", "ka"]).ok();
}

#[test]
fn loopback_only_and_two_containers() {
    let sb = ready();
    let (p1, p2) = (free_port(), free_port());
    web(&sb, "a", &format!("127.0.0.1:{p1}:80"));
    web(&sb, "b", &format!("{p2}:80"));
    wait_http(&format!("127.0.0.1:{p1}"), "/");
    wait_http(&format!("127.0.0.1:{p2}"), "/");
    assert!(http_get(&format!("127.0.0.1:{p1}"), "/").ends_with("hello from a\n"));
    assert!(http_get(&format!("127.0.0.1:{p2}"), "/").ends_with("hello from b\n"));
    assert!(http_get(&format!("127.0.0.2:{p2}"), "/").ends_with("hello from b\n"));
    assert!(
        TcpStream::connect(format!("127.0.0.2:{p1}")).is_err(),
        "127.0.0.1:{p1} must not be reachable on 127.0.0.2"
    );
    let ports = sb.den(&["ps", "--format", "{{.Names}} {{.Ports}}"]).ok();
    assert!(
        ports.contains(&format!("a 127.0.0.1:{p1}->80/tcp")),
        "{ports}"
    );
    // the same host port again: refused before the container starts, naming the port
    let before = sb.den(&["ps", "-q"]).ok();
    sb.den(&[
        "run",
        "-d",
        "-p",
        &format!("{p2}:80"),
        &busybox(),
        "sleep",
        "100",
    ])
    .fails_with(125, &format!("port {p2}"));
    assert_eq!(sb.den(&["ps", "-q"]).ok(), before);
    // a port held by another program
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let held = other.local_addr().unwrap().port();
    sb.den(&[
        "run",
        "--rm",
        "-p",
        &format!("127.0.0.1:{held}:80"),
        &busybox(),
        "true",
    ])
    .fails_with(125, "already in use");
    sb.den(&["rm", "-f", "a", "b"]).ok();
}

#[test]
fn publish_all_exposed_ports() {
    let sb = ready();
    let img = registry().image("test/web");
    sb.den(&["run", "-d", "--name", "pa", "-P", &img]).ok();
    let out = sb.den(&["port", "pa"]).ok();
    let line = out
        .lines()
        .find(|l| l.starts_with("80/tcp -> 0.0.0.0:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(out.contains("7/tcp -> 0.0.0.0:"), "{out}");
    let port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
    wait_http(&format!("127.0.0.1:{port}"), "/hostname");
    assert!(http_get(&format!("127.0.0.1:{port}"), "/hostname").starts_with("HTTP/1."));
    sb.den(&["rm", "-f", "pa"]).ok();
}

#[test]
fn udp_through_a_published_port() {
    let sb = ready();
    let port = free_port();
    // A UDP echo server: the host's python, mounted read-only into the container.
    let server = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',53))\nwhile True:\n d,a=s.recvfrom(65536)\n s.sendto(d.upper(),a)\n";
    python_container(&sb, "udp", &format!("{port}:53/udp"), server);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        s.send_to(b"ping", ("127.0.0.1", port)).unwrap();
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            assert_eq!(&buf[..n], b"PING");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no UDP answer");
    }
    for i in 0..20 {
        let msg = format!("datagram {i}");
        s.send_to(msg.as_bytes(), ("127.0.0.1", port)).unwrap();
        let (n, _) = s.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], msg.to_uppercase().as_bytes());
    }
    sb.den(&["rm", "-f", "udp"]).ok();
}

#[test]
fn outbound_to_the_host_and_dns_files() {
    let sb = ready();
    let bb = busybox();
    // a server on the host's loopback, reached through slirp's gateway address
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            let mut c = c;
            let mut b = [0u8; 1024];
            let _ = c.read(&mut b);
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nfrom-host");
        }
    });
    let net = "slirp4netns:allow_host_loopback=true";
    assert_eq!(
        sb.den(&[
            "run",
            "--rm",
            "--network",
            net,
            &bb,
            "wget",
            "-qO-",
            &format!("http://10.0.2.2:{port}/")
        ])
        .ok(),
        "from-host"
    );
    assert_eq!(
        sb.den(&[
            "run",
            "--rm",
            "--network",
            net,
            &bb,
            "wget",
            "-qO-",
            &format!("http://host.containers.internal:{port}/")
        ])
        .ok(),
        "from-host"
    );
    // by default the host's loopback is out of reach
    assert_ne!(
        sb.den(&[
            "run",
            "--rm",
            &bb,
            "wget",
            "-T",
            "2",
            "-qO-",
            &format!("http://10.0.2.2:{port}/")
        ])
        .code,
        0
    );
    // DNS and hosts
    let resolv = sb
        .den(&["run", "--rm", &bb, "cat", "/etc/resolv.conf"])
        .ok();
    assert!(resolv.contains("nameserver 10.0.2.3"), "{resolv}");
    let resolv = sb
        .den(&[
            "run",
            "--rm",
            "--dns",
            "192.0.2.53",
            &bb,
            "cat",
            "/etc/resolv.conf",
        ])
        .ok();
    assert!(
        resolv.contains("nameserver 192.0.2.53") && !resolv.contains("10.0.2.3"),
        "{resolv}"
    );
    let hosts = sb
        .den(&[
            "run",
            "--rm",
            "--add-host",
            "db:192.0.2.7",
            &bb,
            "cat",
            "/etc/hosts",
        ])
        .ok();
    assert!(hosts.contains("192.0.2.7\tdb"), "{hosts}");
    // the container has its own interface
    let ip = sb
        .den(&["run", "--rm", &bb, "ip", "-4", "addr", "show", "tap0"])
        .ok();
    assert!(ip.contains("10.0.2.100"), "{ip}");
}

#[test]
fn a_gigabyte_through_a_forwarded_port() {
    let sb = ready();
    let port = free_port();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "sink",
        "-p",
        &format!("{port}:9000"),
        &busybox(),
        "sh",
        "-c",
        "nc -l -p 9000 | sha256sum",
    ])
    .ok();
    let start = Instant::now();
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("{e}"),
        }
    };
    // 1 GB of a deterministic, incompressible-looking pattern.
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..1000 {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        hasher.update(&block);
        s.write_all(&block).unwrap();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    drop(s);
    assert_eq!(sb.den(&["wait", "sink"]).ok(), "0\n");
    let sum = sb.den(&["logs", "sink"]).ok();
    assert_eq!(
        sum.split_whitespace().next().unwrap(),
        hex::encode(hasher.finalize())
    );
}

#[test]
fn bad_specs_and_privileged_ports() {
    let sb = ready();
    let bb = busybox();
    sb.den(&["run", "--rm", "-p", "80:eighty", &bb, "true"])
        .fails_with(125, "eighty");
    sb.den(&["run", "--rm", "-p", "8080:80/sctp", &bb, "true"])
        .fails_with(125, "sctp");
    sb.den(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "8080:80",
        &bb,
        "true",
    ])
    .fails_with(125, "none");
    sb.den(&["run", "--rm", "--network", "bogus", &bb, "true"])
        .fails_with(125, "bogus");
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    if start > 1 {
        let low = (start - 1).min(1023);
        sb.den(&["run", "--rm", "-p", &format!("{low}:80"), &bb, "true"])
            .fails_with(125, "ip_unprivileged_port_start");
    }
}

/// The command lines of this sandbox's den processes (those with its HOME).
fn den_processes(sb: &Sandbox) -> Vec<String> {
    let home = format!("HOME={}\0", sb.home.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if !env.windows(home.len()).any(|w| w == home.as_bytes()) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let arg0 = cmdline.split(' ').next().unwrap_or_default();
        if arg0
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .starts_with("den")
        {
            out.push(cmdline);
        }
    }
    out
}

#[test]
fn nothing_leaks_when_den_is_killed() {
    let sb = ready();
    let port = free_port();
    let mut child = sb
        .cmd(
            "den",
            &[
                "run",
                "--rm",
                "-p",
                &format!("{port}:80"),
                &busybox(),
                "sleep",
                "7654321",
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while TcpListener::bind(("0.0.0.0", port)).is_ok() || sb.den(&["ps", "-q"]).out().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the container never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let start = Instant::now();
    while TcpListener::bind(("0.0.0.0", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the port stayed bound after kill -9 of den"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // and no process of this sandbox is left
    std::thread::sleep(Duration::from_millis(300));
    let me = std::process::id();
    let root = sb.root.display().to_string();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().parse::<u32>().unwrap_or(0);
        if pid == 0 || pid == me {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let env = String::from_utf8_lossy(&env);
        assert!(
            !env.contains(&root),
            "process {pid} of the killed den is still running: {:?}",
            String::from_utf8_lossy(
                &std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
            )
        );
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            cmdline != b"sleep\x007654321\x00",
            "the container of the killed den is still running"
        );
    }
}

// --- port forwarding under a hostile client: descriptor, thread and flow limits (issue 13) ----

/// A single-threaded HTTP/1.0 server (asyncio, the host's python) on port 8000: it holds any
/// number of idle connections, answers a request line with "hello", and closes on EOF.
const ASYNC_SERVER: &str = "import asyncio\nasync def h(r,w):\n try:\n  if await r.readline():\n   w.write(b'HTTP/1.0 200 OK\\r\\nContent-Length: 6\\r\\n\\r\\nhello\\n')\n   await w.drain()\n except Exception:\n  pass\n w.close()\nasync def main():\n s=await asyncio.start_server(h,'0.0.0.0',8000,backlog=1024)\n await s.serve_forever()\nasyncio.run(main())\n";

/// One request with timeouts: a port that stopped answering fails instead of hanging.
fn try_get(port: u16) -> std::io::Result<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn wait_hello(port: u16) {
    let start = Instant::now();
    while !try_get(port).is_ok_and(|p| p.ends_with("hello\n")) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the server never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn connect(port: u16) -> TcpStream {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("connect to port {port}: {e}"))
}

/// The process that forwards the ports of this sandbox's (one) detached container: its monitor
/// (`den-run __monitor ID`), which relays its output and its published ports alike.
fn forwarder(sb: &Sandbox) -> u32 {
    let home = format!("HOME={}\0", sb.home.display());
    let start = Instant::now();
    loop {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let mut args = cmdline.split(|b| *b == 0);
            let arg0 = args.next().unwrap_or_default();
            if !arg0.ends_with(b"den-run") || args.next() != Some(b"__monitor".as_slice()) {
                continue;
            }
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            if env.windows(home.len()).any(|w| w == home.as_bytes()) {
                return pid;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no monitor process for this sandbox"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Threads and open descriptors of process `pid`.
fn usage(pid: u32) -> (usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .count();
    (threads, fds)
}

#[test]
fn many_idle_connections_do_not_stop_a_port() {
    let sb = ready();
    let port = free_port();
    python_container(&sb, "idle", &format!("{port}:8000"), ASYNC_SERVER);
    wait_hello(port);
    let pid = forwarder(&sb);
    // More than the 1024 descriptors a process starts with could hold at 6 each.
    let idle: Vec<TcpStream> = (0..450).map(|_| connect(port)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let page = try_get(port).expect("the port answers a request with 450 idle connections open");
    assert!(page.ends_with("hello\n"), "{page}");
    // An idle connection holds its two sockets and no pipes.
    let (_, fds) = usage(pid);
    assert!(
        fds < 450 * 3,
        "the monitor holds {fds} descriptors for 450 idle connections"
    );
    drop(idle);
    sb.den(&["rm", "-f", "idle"]).ok();
}

#[test]
fn connections_beyond_the_cap_are_reset_at_once() {
    let mut sb = ready();
    sb.set_env("DEN_NET_TCP_MAX_CONNECTIONS", "20");
    let port = free_port();
    python_container(&sb, "capped", &format!("{port}:8000"), ASYNC_SERVER);
    wait_hello(port);
    // The probe's connection is gone from the forwarder's table before the cap is filled.
    std::thread::sleep(Duration::from_millis(300));
    let mut held: Vec<TcpStream> = (0..20).map(|_| connect(port)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let page = try_get(port);
    assert!(
        page.as_ref().map(|p| p.is_empty()).unwrap_or(true),
        "a 21st connection was served: {page:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the 21st connection was left waiting instead of refused"
    );
    // The port answers again once some close.
    held.truncate(15);
    wait_hello(port);
    drop(held);
    sb.den(&["rm", "-f", "capped"]).ok();
}

#[test]
fn idle_connections_are_closed_after_the_timeout() {
    let mut sb = ready();
    sb.set_env("DEN_NET_TCP_IDLE_TIMEOUT", "2");
    let port = free_port();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "echo",
        "-p",
        &format!("{port}:7"),
        &busybox(),
        "nc",
        "-ll",
        "-p",
        "7",
        "-e",
        "cat",
    ])
    .ok();
    let exchange = |s: &mut TcpStream, msg: &[u8]| -> bool {
        let mut b = vec![0u8; msg.len()];
        s.write_all(msg).is_ok() && s.read_exact(&mut b).is_ok() && b == msg
    };
    let start = Instant::now();
    let mut quiet = loop {
        let mut s = connect(port);
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        if exchange(&mut s, b"hello\n") {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no echo");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The quiet connection says nothing more; the forwarder closes it after two seconds.
    let waiter = std::thread::spawn(move || {
        let since = Instant::now();
        let mut b = [0u8; 16];
        let r = quiet.read(&mut b);
        (r.map_err(|e| e.kind()), since.elapsed())
    });
    // A busy one, talking every half second, outlives it.
    let mut busy = connect(port);
    busy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        assert!(exchange(&mut busy, b"ping\n"), "the busy connection broke");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (read, after) = waiter.join().unwrap();
    assert_eq!(read, Ok(0), "the idle connection was not closed");
    assert!(
        after >= Duration::from_millis(1900) && after < Duration::from_secs(4),
        "closed after {after:?}, not the 2 s timeout"
    );
    assert!(exchange(&mut busy, b"still here\n"));
    sb.den(&["rm", "-f", "echo"]).ok();
    // A value that is not a number is refused, naming it.
    let mut sb = ready();
    sb.set_env("DEN_NET_TCP_IDLE_TIMEOUT", "10m");
    sb.den(&[
        "run",
        "--rm",
        "-p",
        &format!("{}:80", free_port()),
        &busybox(),
        "true",
    ])
    .fails_with(125, "DEN_NET_TCP_IDLE_TIMEOUT=10m");
}

#[test]
fn a_udp_flood_is_held_to_a_bounded_table() {
    let mut sb = ready();
    sb.set_env("DEN_NET_UDP_MAX_FLOWS", "50");
    sb.set_env("DEN_NET_UDP_IDLE_TIMEOUT", "2");
    let port = free_port();
    let server = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',53))\nwhile True:\n d,a=s.recvfrom(65536)\n s.sendto(d.upper(),a)\n";
    python_container(&sb, "udp", &format!("{port}:53/udp"), server);
    let ask = |s: &UdpSocket, msg: &[u8]| -> bool {
        let mut buf = [0u8; 64];
        (0..20).any(|_| {
            s.send_to(msg, ("127.0.0.1", port)).unwrap();
            matches!(s.recv_from(&mut buf), Ok((n, _)) if buf[..n] == msg.to_ascii_uppercase())
        })
    };
    let first = UdpSocket::bind("127.0.0.1:0").unwrap();
    first
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let start = Instant::now();
    while !ask(&first, b"ping") {
        assert!(start.elapsed() < Duration::from_secs(15), "no UDP answer");
    }
    let pid = forwarder(&sb);
    let (threads, fds) = usage(pid);
    // A thousand source ports, one datagram each.
    for i in 0..1000 {
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.send_to(b"flood", ("127.0.0.1", port)).unwrap();
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let (t, f) = usage(pid);
    assert!(
        t <= threads,
        "the monitor went from {threads} to {t} threads"
    );
    assert!(
        f <= fds + 50,
        "the monitor went from {fds} to {f} descriptors with at most 50 flows"
    );
    // A new client is still answered: it takes the place of the oldest flow.
    let fresh = UdpSocket::bind("127.0.0.1:0").unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(ask(&fresh, b"fresh"), "a new client got no answer");
    // Idle flows are forgotten after two seconds, the first client's too.
    let start = Instant::now();
    while usage(pid).1 >= fds {
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "the flows never expired: {} descriptors",
            usage(pid).1
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    sb.den(&["rm", "-f", "udp"]).ok();
}

#[test]
fn refused_connections_start_no_threads() {
    let sb = ready();
    let port = free_port();
    // Nothing listens on the container port.
    sb.den(&[
        "run",
        "-d",
        "--name",
        "deaf",
        "-p",
        &format!("{port}:9"),
        &busybox(),
        "sleep",
        "1000",
    ])
    .ok();
    let pid = forwarder(&sb);
    let (threads, _) = usage(pid);
    let conns: Vec<TcpStream> = (0..100).map(|_| connect(port)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let (t, _) = usage(pid);
    assert!(
        t <= threads,
        "100 refused connections took the monitor from {threads} to {t} threads"
    );
    // Each is closed once its two seconds of retries are over.
    let start = Instant::now();
    for mut c in conns {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 8];
        assert!(
            matches!(c.read(&mut b), Ok(0)),
            "a refused connection was left open"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(4));
    sb.den(&["rm", "-f", "deaf"]).ok();
}
