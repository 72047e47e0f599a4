//! Signal dispositions and masks. Both survive fork and exec, so den sets them deliberately:
//! it blocks the signals it proxies before it starts a child (none is lost in between) and
//! gives a container's command a clean state.

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask};

/// Block `set` in the calling thread, in addition to what it blocks already; returns the mask
/// it had before, for [`set_signal_mask`].
pub fn block_signals(set: &SigSet) -> SigSet {
    let mut old = SigSet::empty();
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(set), Some(&mut old));
    old
}

/// Make `set` the calling thread's signal mask (typically one [`block_signals`] returned).
pub fn set_signal_mask(set: &SigSet) {
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(set), None);
}

/// SIGKILL to `pid`, or to the process group `-pid` when `pid` is negative (kill(2)'s own
/// convention). For den's tests, which kill dens and monitors at chosen moments.
pub fn sigkill(pid: i32) -> std::io::Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL)
        .map_err(std::io::Error::from)
}

/// Give this process a clean signal state: every signal unblocked and at its default action.
/// Signal masks and ignored signals survive fork and exec; a container's command must not
/// inherit den's (den blocks the signals it proxies; Rust ignores SIGPIPE).
pub fn reset_signals() {
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        unsafe {
            let _ = nix::sys::signal::signal(sig, SigHandler::SigDfl);
        }
    }
    set_signal_mask(&SigSet::empty());
}
