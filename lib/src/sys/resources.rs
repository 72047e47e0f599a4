//! What a long-lived process gives back or asks for: file pages, heap, descriptor limit.

/// Drop this process's resident copies of read-only file pages (program code and constants it
/// has run or read so far), for a long-lived process whose remaining work touches little of
/// them: the kernel maps a page again from the page cache when it is next used. Mappings that
/// hold private (anonymous) pages, such as relocated read-only data, are left alone: dropping
/// those would lose their contents. Returns the bytes released from the mappings.
///
/// Every mapping is chosen before the first is dropped: the kernel maps a whole page-cache folio
/// (up to hundreds of KiB of code) on each fault, so parsing after a drop would fault the parser
/// and everything around it back in, and keep it resident for the rest of the process's life.
pub fn release_file_pages() -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let ranges = releasable(&smaps);
    drop(smaps);
    let mut released = 0u64;
    for &(start, end) in &ranges {
        // SAFETY: the range is a whole mapping of this process, read-only and backed by a file
        // with no private pages: discarding its pages only makes the next access fault them in
        // again from the file, unchanged.
        if unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) }
            == 0
        {
            released += (end - start) as u64;
        }
    }
    released
}

/// The mappings of an smaps listing whose pages can be dropped without loss: read-only, backed
/// by a file, and holding no private (anonymous) page.
fn releasable(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(64);
    // The mapping being read: its range and whether its permissions and backing qualify.
    let mut current: Option<(usize, usize, bool)> = None;
    let mut anon_kb = 0u64;
    let mut flush = |m: Option<(usize, usize, bool)>, anon_kb: u64| {
        if let Some((start, end, true)) = m
            && anon_kb == 0
        {
            out.push((start, end));
        }
    };
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            flush(current.take(), anon_kb);
            let mut f = line.split_whitespace();
            let perms = f.nth(1).unwrap_or("");
            let path = f.nth(3).unwrap_or("");
            current = Some((start, end, !perms.contains('w') && path.starts_with('/')));
            anon_kb = 0;
        } else if let Some(v) = line.strip_prefix("Anonymous:") {
            anon_kb = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(1);
        }
    }
    flush(current.take(), anon_kb);
    out
}

/// Return free heap memory to the kernel (glibc's malloc_trim).
pub fn trim_heap() -> bool {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Raise this process's soft limit on open descriptors (RLIMIT_NOFILE) to its hard limit and
/// return the limit now in force. The soft limit is 1024 by default for select(2)'s sake; a
/// process that polls with epoll, as den-net does, has no reason to keep it (Go's runtime, and so
/// podman's rootlessport, raises it the same way). The hard limit is the administrator's and is
/// not touched. When the call is refused the soft limit stays and is returned.
pub fn raise_nofile_limit() -> u64 {
    let Some(lim) = rlimit(libc::RLIMIT_NOFILE) else {
        return 1024;
    };
    if lim.rlim_cur < lim.rlim_max && set_rlimit(libc::RLIMIT_NOFILE, lim.rlim_max, lim.rlim_max) {
        return lim.rlim_max;
    }
    lim.rlim_cur
}

/// This process's soft limit on open descriptors, to give back with [`set_nofile_soft`] after
/// [`raise_nofile_limit`] (a process that creates containers raises it only while forwarding,
/// so its containers keep the limit they would have had).
pub fn nofile_soft() -> u64 {
    rlimit(libc::RLIMIT_NOFILE).map_or(1024, |l| l.rlim_cur)
}

/// Set this process's soft limit on open descriptors to `soft`, keeping the hard limit.
pub fn set_nofile_soft(soft: u64) {
    if let Some(lim) = rlimit(libc::RLIMIT_NOFILE) {
        set_rlimit(libc::RLIMIT_NOFILE, soft.min(lim.rlim_max), lim.rlim_max);
    }
}

/// This process's limit of `resource` (an `RLIMIT_*`), if it can be read.
fn rlimit(resource: libc::__rlimit_resource_t) -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    (unsafe { libc::getrlimit(resource, &mut lim) } == 0).then_some(lim)
}

/// Set this process's limit of `resource` (soft at most hard; raising the soft limit up to the
/// hard one needs no privilege); whether it took.
fn set_rlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> bool {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct we pass.
    unsafe { libc::setrlimit(resource, &lim) == 0 }
}

/// This process's hard limit of `resource` (an `RLIMIT_*`); `u64::MAX` for unlimited, and when
/// the limit cannot be read (the runtime's own setrlimit then reports it).
pub fn hard_limit(resource: libc::__rlimit_resource_t) -> u64 {
    match rlimit(resource) {
        Some(l) if l.rlim_max != libc::RLIM_INFINITY => l.rlim_max,
        _ => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::releasable;

    #[test]
    fn only_clean_read_only_file_mappings_are_released() {
        let smaps = "\
1000-3000 r--p 00000000 fe:00 12 /usr/bin/den-run
Rss:                   8 kB
Anonymous:             0 kB
3000-9000 r-xp 00002000 fe:00 12 /usr/bin/den-run
Anonymous:             0 kB
9000-a000 r--p 00008000 fe:00 12 /usr/bin/den-run
Anonymous:             4 kB
a000-b000 rw-p 00009000 fe:00 12 /usr/bin/den-run
Anonymous:             0 kB
c000-d000 r--p 00000000 00:00 0 
Anonymous:             0 kB
e000-f000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";
        assert_eq!(releasable(smaps), vec![(0x1000, 0x3000), (0x3000, 0x9000)]);
        assert!(releasable("").is_empty());
    }
}
