//! `run`'s and `create`'s resource flags (docker's `--memory`, `--memory-swap`, `--cpus`,
//! `--cpu-shares`, `--pids-limit`, `--cpuset-cpus`), checked into [`crate::cgroup::limits::Limits`]
//! at the edge. Whether this machine can apply them is the verb's to decide (`create`), before
//! anything is made.

use clap::Args;

use crate::cgroup::limits::{LimitFlags, Limits};

/// Resource limits, applied through a delegated cgroup v2 subtree (`den info` says whether
/// there is one).
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Memory limit (512m, 2g; at least 6m); over it the container is OOM-killed
    #[arg(short = 'm', long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory plus swap (at least --memory; -1: unlimited swap; default twice --memory)
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (1.5: one and a half CPUs' time per period)
    #[arg(long, value_name = "DECIMAL")]
    pub cpus: Option<String>,
    /// Relative CPU weight (docker's 1024 default; cgroup v2's cpu.weight)
    #[arg(short = 'c', long, value_name = "WEIGHT", allow_hyphen_values = true)]
    pub cpu_shares: Option<i64>,
    /// Most processes and threads at once (0 or -1: unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// CPUs the container may run on (0-3, 0,2)
    #[arg(long, value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,
}

impl LimitArgs {
    /// The flags checked as docker checks them (sizes, ranges, `--memory-swap` with
    /// `--memory`).
    pub fn limits(&self) -> Result<Limits, crate::cgroup::CgroupError> {
        let ncpu = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Limits::parse(
            &LimitFlags {
                memory: self.memory.as_deref(),
                memory_swap: self.memory_swap.as_deref(),
                cpus: self.cpus.as_deref(),
                cpu_shares: self.cpu_shares,
                pids_limit: self.pids_limit,
                cpuset_cpus: self.cpuset_cpus.as_deref(),
            },
            ncpu,
        )
    }
}
