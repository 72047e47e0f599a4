//! `stats`: each container's resource use, docker's columns. A container with resource limits
//! has a cgroup of its own ([`crate::cgroup::limits`]): CPU from its `cpu.stat`, memory from
//! `memory.current` against `memory.max`, PIDs from `pids.current`, as docker reads them. Else
//! (and for what the group does not count) from /proc, for the processes in its pid namespace
//! ([`crate::runtime::procs::container_pids`]): CPU % from two samples of their user and system
//! time, memory as the sum of their resident sets against the machine's memory. Network bytes
//! come from the container's `/proc/PID/net/dev` (loopback left out), block I/O from
//! `/proc/PID/io`.

use std::time::{Duration, Instant};

use super::{Ctx, Result};
use crate::store::{Container, Status};

/// One container's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub id: String,
    pub name: String,
    /// What the user typed for it (docker's `.Container`), else its short id.
    pub container: String,
    pub cpu_percent: f64,
    pub mem_usage: u64,
    pub mem_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: usize,
}

/// How long apart the two CPU samples are.
const INTERVAL: Duration = Duration::from_millis(500);

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = read(&format!("/proc/{pid}/stat"));
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat; `rest` starts at field 3.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// A `Key:   123 kB` line's number, in bytes when it says kB.
fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| {
            let mut w = v.split_whitespace();
            let n = w.next()?.parse::<u64>().ok()?;
            Some(if w.next() == Some("kB") { n * 1024 } else { n })
        })
        .unwrap_or(0)
}

fn net(init: i32) -> (u64, u64) {
    read(&format!("/proc/{init}/net/dev"))
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .filter(|(iface, _)| iface.trim() != "lo")
        .fold((0, 0), |(rx, tx), (_, v)| {
            let f: Vec<u64> = v
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (
                rx + f.first().copied().unwrap_or(0),
                tx + f.get(8).copied().unwrap_or(0),
            )
        })
}

fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |v| v as f64)
}

/// The containers to show: those named, else every running one (every one with `all`).
fn chosen(ctx: &Ctx, names: &[String], all: bool) -> Result<Vec<(String, Container)>> {
    let store = ctx.store()?;
    if names.is_empty() {
        return Ok(store
            .containers()?
            .into_iter()
            .filter(|c| all || c.state.status == Status::Running)
            .map(|c| (c.record.id[..12].to_string(), c))
            .collect());
    }
    names
        .iter()
        .map(|n| Ok((n.clone(), store.lookup_container(n)?)))
        .collect()
}

/// One reading of every chosen container (two samples, [`INTERVAL`] apart, for CPU %). A
/// container that is not running reads zero throughout, its memory limit too, as docker's
/// daemon answers for one.
pub fn stats(ctx: &Ctx, names: &[String], all: bool) -> Result<Vec<Stats>> {
    let chosen = chosen(ctx, names, all)?;
    let init = |c: &Container| match (c.state.status, c.state.pid) {
        (Status::Running, Some(p)) => Some(p),
        _ => None,
    };
    let hz = ticks_per_second();
    let sys = crate::sys::LinuxSys;
    let group = |c: &Container| {
        c.state
            .cgroup
            .as_deref()
            .map(|d| crate::cgroup::limits::usage(&sys, d))
            .unwrap_or_default()
    };
    // CPU seconds used so far.
    let sample = || -> Vec<f64> {
        chosen
            .iter()
            .map(|(_, c)| {
                init(c).map_or(0.0, |p| match group(c).cpu_usec {
                    Some(us) => us as f64 / 1e6,
                    None => {
                        let pids = crate::runtime::procs::container_pids(p);
                        pids.into_iter().map(cpu_ticks).sum::<u64>() as f64 / hz
                    }
                })
            })
            .collect()
    };
    let t0 = Instant::now();
    let first = sample();
    std::thread::sleep(INTERVAL);
    let second = sample();
    let secs = t0.elapsed().as_secs_f64().max(0.001);
    let mem_limit = field(&read("/proc/meminfo"), "MemTotal:");
    Ok(chosen
        .iter()
        .enumerate()
        .map(|(i, (given, c))| {
            let mut s = Stats {
                id: c.record.id.clone(),
                name: c.record.name.clone(),
                container: given.clone(),
                ..Default::default()
            };
            if let Some(p) = init(c) {
                let pids = crate::runtime::procs::container_pids(p);
                s.pids = pids.len();
                s.cpu_percent = (second[i] - first[i]).max(0.0) / secs * 100.0;
                for pid in &pids {
                    s.mem_usage += field(&read(&format!("/proc/{pid}/status")), "VmRSS:");
                    let io = read(&format!("/proc/{pid}/io"));
                    s.block_read += field(&io, "read_bytes:");
                    s.block_write += field(&io, "write_bytes:");
                }
                (s.net_rx, s.net_tx) = net(p);
                let g = group(c);
                s.mem_usage = g.memory.unwrap_or(s.mem_usage);
                s.mem_limit = g.memory_max.map_or(mem_limit, |m| m.min(mem_limit));
                s.pids = g.pids.map_or(s.pids, |n| n as usize);
            }
            s
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_this_process() {
        assert_eq!(field("VmRSS:\t  1234 kB\n", "VmRSS:"), 1234 * 1024);
        assert_eq!(field("read_bytes: 77\n", "read_bytes:"), 77);
        assert_eq!(field("", "x:"), 0);
        let me = std::process::id() as i32;
        assert!(field(&read(&format!("/proc/{me}/status")), "VmRSS:") > 0);
        let _ = cpu_ticks(me);
    }
}
