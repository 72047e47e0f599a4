//! `top`: the container's processes as the host's `ps` shows them (host pids), as docker does
//! it: `ps` runs with the user's options (`-ef` by default), its PID column is found in the
//! header, and only the lines of processes in the container's pid namespace are kept
//! ([`crate::runtime::procs::container_pids`]; for a container with a cgroup of its own, the
//! processes its `cgroup.procs` lists, as docker reads them). Running the host's `ps` rather than reading /proc here
//! is what makes every `ps` option work as the user knows it.

use super::{Ctx, Result};
use crate::store::{ContainersError, Status};

/// `ps`'s header and the container's rows, each split into the header's columns (the last
/// column, the command, keeps its spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

pub fn top(ctx: &Ctx, name: &str, ps_args: &[String]) -> Result<Top> {
    let c = ctx.store()?.lookup_container(name)?;
    let init = match (c.state.status, c.state.pid) {
        (Status::Running, Some(pid)) => pid,
        _ => return Err(ContainersError::NotRunning(name.into()).into()),
    };
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let failed = |reason: String| ContainersError::Ps {
        args: args.join(" "),
        reason,
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(failed(err.lines().next().unwrap_or("failed").to_string()).into());
    }
    let pids = c
        .state
        .cgroup
        .as_deref()
        .and_then(|g| crate::cgroup::limits::procs(&crate::sys::LinuxSys, g))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| crate::runtime::procs::container_pids(init));
    Ok(parse(&String::from_utf8_lossy(&out.stdout), &pids).map_err(failed)?)
}

/// Keep the rows of `ps`'s output whose PID is one of `pids`.
fn parse(out: &str, pids: &[i32]) -> std::result::Result<Top, String> {
    let mut lines = out.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or("its output has no PID column (add -o pid)")?;
    let mut processes = Vec::new();
    for line in lines {
        let row = split_row(line, titles.len());
        if row
            .get(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            processes.push(row);
        }
    }
    Ok(Top { titles, processes })
}

/// `n` whitespace-separated fields, the last one the rest of the line.
fn split_row(line: &str, n: usize) -> Vec<String> {
    let mut row = Vec::with_capacity(n);
    let mut rest = line.trim_start();
    while row.len() + 1 < n && !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        row.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    row.push(rest.to_string());
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_the_container_pids_with_the_command_whole() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                   1000        4242       1  0 10:01 ?        00:00:00 sleep 100 now\n";
        let t = parse(out, &[4242]).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(t.processes.len(), 1);
        assert_eq!(t.processes[0][1], "4242");
        assert_eq!(t.processes[0][7], "sleep 100 now");
        assert!(parse("USER COMMAND\nroot init\n", &[1]).is_err());
    }
}
