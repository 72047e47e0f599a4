//! Building for another platform: which RUN steps the host can run, and the platform
//! arguments (`TARGETPLATFORM`, `BUILDARCH`, ...) a Dockerfile sees.
//!
//! A RUN step runs the image's own programs. For another architecture the kernel can run
//! them only through an interpreter registered with binfmt_misc (qemu-user, as
//! `qemu-user-static` or `binfmt-support` install it), and only with the `F` (fix binary)
//! flag: the kernel then opens the interpreter when it is registered, so it works inside a
//! container whose root does not have it. Without one the step would fail with a bare "exec
//! format error" after the earlier steps ran; den checks before the build starts and names
//! the platform and the fix instead. A Dockerfile without RUN (FROM, COPY, ENV, ...) builds
//! for any platform: nothing of the image runs.
//!
//! The registry directory is a parameter, so unit tests give a directory of their own.

use std::collections::BTreeMap;
use std::path::Path;

use crate::image::Platform;

/// Where the kernel lists binfmt_misc's interpreters.
pub const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// qemu's name for an architecture (what its binfmt entry is called: `qemu-aarch64`).
fn qemu_name(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i386",
        "mips64le" => "mips64el",
        "mipsle" => "mipsel",
        other => other,
    }
}

/// Whether RUN steps for `platform` can run here: the host's own architecture, or an enabled
/// binfmt_misc entry for it with the fix-binary flag in `binfmt` (see the module doc). The
/// error is the reason, for the step's message.
pub fn can_run(platform: &Platform, host: &Platform, binfmt: &Path) -> Result<(), String> {
    if platform.arch == host.arch && platform.os == host.os {
        return Ok(());
    }
    if platform.os != host.os {
        return Err(format!("{platform} programs do not run on {host}"));
    }
    let name = format!("qemu-{}", qemu_name(&platform.arch));
    let Ok(text) = std::fs::read_to_string(binfmt.join(&name)) else {
        return Err(format!(
            "no interpreter for {platform} is registered with binfmt_misc ({} has no {name})",
            binfmt.display()
        ));
    };
    let enabled = text.lines().next() == Some("enabled");
    let fixed = text
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .is_some_and(|f| f.contains('F'));
    match (enabled, fixed) {
        (true, true) => Ok(()),
        (false, _) => Err(format!("the binfmt_misc interpreter {name} is disabled")),
        (true, false) => Err(format!(
            "the binfmt_misc interpreter {name} lacks the F (fix binary) flag, so it cannot run inside a container"
        )),
    }
}

/// The hint for [`can_run`]'s failure.
pub fn hint(platform: &Platform) -> String {
    format!(
        "install qemu-user-static (with binfmt-support) to run {platform} programs, or build {platform} from a Dockerfile without RUN steps"
    )
}

/// The platform arguments docker's builder defines in the global scope: usable in FROM, and
/// in a stage that declares them (`ARG TARGETARCH`).
pub fn platform_args(target: &Platform, build: &Platform) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (prefix, p) in [("TARGET", target), ("BUILD", build)] {
        out.insert(format!("{prefix}PLATFORM"), p.to_string());
        out.insert(format!("{prefix}OS"), p.os.clone());
        out.insert(format!("{prefix}ARCH"), p.arch.clone());
        out.insert(
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn runs_natively_or_through_a_fixed_binfmt_interpreter() {
        let t = tempfile::tempdir().unwrap();
        let host = p("linux/amd64");
        assert!(can_run(&p("linux/amd64"), &host, t.path()).is_ok());
        let e = can_run(&p("linux/arm64"), &host, t.path()).unwrap_err();
        assert!(
            e.contains("linux/arm64") && e.contains("qemu-aarch64"),
            "{e}"
        );
        std::fs::write(
            t.path().join("qemu-aarch64"),
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n",
        )
        .unwrap();
        assert!(can_run(&p("linux/arm64/v8"), &host, t.path()).is_ok());
        std::fs::write(
            t.path().join("qemu-aarch64"),
            "enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: P\n",
        )
        .unwrap();
        assert!(
            can_run(&p("linux/arm64"), &host, t.path())
                .unwrap_err()
                .contains("F (fix binary)")
        );
        std::fs::write(t.path().join("qemu-aarch64"), "disabled\nflags: F\n").unwrap();
        assert!(
            can_run(&p("linux/arm64"), &host, t.path())
                .unwrap_err()
                .contains("disabled")
        );
        assert!(can_run(&p("windows/amd64"), &host, t.path()).is_err());
        assert!(hint(&p("linux/arm64")).contains("qemu-user-static"));
    }

    #[test]
    fn platform_args_are_dockers() {
        let a = platform_args(&p("linux/arm/v7"), &p("linux/amd64"));
        assert_eq!(a["TARGETPLATFORM"], "linux/arm/v7");
        assert_eq!(a["TARGETARCH"], "arm");
        assert_eq!(a["TARGETVARIANT"], "v7");
        assert_eq!(a["BUILDPLATFORM"], "linux/amd64");
        assert_eq!(a["BUILDOS"], "linux");
        assert_eq!(a["BUILDVARIANT"], "");
    }
}
