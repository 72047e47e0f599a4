//! Single-uid mode's answer to package managers: the system calls that change owners and ids
//! succeed without doing anything.
//!
//! # Why
//! Without a subordinate id range den's user namespace maps one id, the user's, as root (see
//! `userns`). Every other uid and gid is unmapped, so `chown(path, 100, 101)` fails with EINVAL,
//! `setresuid(42, ...)` with EINVAL, and setgroups(2) is refused outright (EPERM: a user
//! namespace mapped without newgidmap must deny it, user_namespaces(7)). Package managers make
//! these calls as a matter of course: apt drops to `_apt` to download (setgroups, setresgid,
//! setresuid), dpkg and rpm set the owner of every file they unpack, maintainer scripts
//! `chown` to the system users they just made. Each failure ends the install.
//!
//! # What
//! A filter returning 0 for those calls (`SCMP_ACT_ERRNO` with errno 0: the kernel's
//! `SECCOMP_RET_ERRNO` with a value of 0 makes the call return 0) lets them believe they
//! succeeded. This is what Charliecloud's `ch-image --force=seccomp` does, with the same list:
//! the chown family (chown, fchown, fchownat, lchown and their 32-bit x86 names), the setuid
//! family (setuid, setgid, setreuid, setregid, setresuid, setresgid, setfsuid, setfsgid and the
//! 32-bit names), setgroups, and mknod/mknodat of character and block devices (a user namespace
//! may not make device nodes; a fifo or socket is still made for real). Files keep the user as
//! their owner (the only id there is) and processes stay root, which is all single-uid mode can
//! give; `build` records the owners a Dockerfile asks for where den writes the files itself
//! (`COPY --chown`, see `build::owners`).
//!
//! Two of Charliecloud's entries are left out. capset(2): libcontainer loads the filter before it
//! drops the container to its capabilities (`capset` and `PR_CAPBSET_DROP`), so a faked capset
//! would leave every process with all of the namespace's capabilities; a process may still drop
//! its own, as in docker. kexec_load: den's default profile refuses it already.
//!
//! # Where
//! Only in single-uid mode (where the calls cannot succeed anyway; with a subordinate range they
//! work and the owners are real), for a build's RUN steps always, and for a container that asks
//! with `--security-opt fake-ids`. The rules are added to the container's own profile (den's
//! default, or a profile file), or make a filter of their own for an unconfined or privileged
//! container.

use super::seccomp::{Action, Arg, Filter, Op, Rule};

/// The calls that change owners or ids. Native names; the 32-bit x86 ones resolve to
/// libseccomp's pseudo numbers on a 64-bit host and apply to 32-bit programs.
pub const FAKED: &[&str] = &[
    "chown",
    "chown32",
    "fchown",
    "fchown32",
    "fchownat",
    "lchown",
    "lchown32",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setuid",
    "setuid32",
];

/// The file type bits of a mode (S_IFMT) and the two device types.
const S_IFMT: u64 = 0o170000;
const S_IFCHR: u64 = 0o020000;
const S_IFBLK: u64 = 0o060000;

fn succeed(names: &[&str], args: Vec<Arg>) -> Rule {
    Rule {
        names: names.iter().map(|n| n.to_string()).collect(),
        name: None,
        action: Action::Errno,
        errno_ret: Some(0),
        args,
        includes: Filter::default(),
        excludes: Filter::default(),
        comment: Some("single-uid mode: ids other than root do not exist here".into()),
    }
}

/// The rules (see the module doc), to be appended to a profile.
pub fn rules() -> Vec<Rule> {
    let mut out = vec![succeed(FAKED, Vec::new())];
    // mknod(path, mode, dev) has the mode in argument 1, mknodat(dirfd, path, mode, dev) in 2.
    for (name, index) in [("mknod", 1), ("mknodat", 2)] {
        for kind in [S_IFCHR, S_IFBLK] {
            let arg = Arg {
                index,
                value: S_IFMT,
                value_two: kind,
                op: Op::MaskedEq,
            };
            out.push(succeed(&[name], vec![arg]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_nodes_only_are_faked() {
        let r = rules();
        let mknodat: Vec<&Rule> = r.iter().filter(|r| r.names == ["mknodat"]).collect();
        assert_eq!(mknodat.len(), 2);
        let matches = |mode: u64| {
            mknodat
                .iter()
                .any(|r| mode & r.args[0].value == r.args[0].value_two)
        };
        assert!(matches(0o020644), "char device");
        assert!(matches(0o060600), "block device");
        assert!(!matches(0o010644), "fifo");
        assert!(!matches(0o140755), "socket");
        assert!(!matches(0o100644), "regular file");
        assert!(r.iter().all(|r| r.errno_ret == Some(0)));
        // capset stays real: libcontainer drops the container's capabilities after loading it.
        assert!(!FAKED.contains(&"capset"));
    }
}
