//! Who the container's process runs as, and whether its command exists: both read from the
//! container's own files (resolved in scope, see [`crate::unpack::scope`]), before it starts, so
//! den can say what is wrong in one line (docker's 126/127) instead of failing inside the runtime.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::RuntimeError;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// An image's small text file, read safely (see [`crate::unpack::scope::read_small`]): empty
/// when it does not exist, an error when it is not a regular file or is too large.
fn read_in(rootfs: &Path, file: &str) -> Result<String, RuntimeError> {
    let scope =
        crate::unpack::scope::read_small(rootfs, file, crate::unpack::scope::SMALL_FILE_CAP)?;
    Ok(String::from_utf8_lossy(&scope.unwrap_or_default()).into_owned())
}

fn passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(Passwd {
                name: f[0].into(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].into(),
            })
        })
        .collect()
}

/// (name, gid, members)
fn groups(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let members = f[3]
                .split(',')
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

/// Resolve docker's `-u` forms: `""` (root), `uid`, `name`, `uid:gid`, `name:group`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<User, RuntimeError> {
    let users = passwd(&read_in(rootfs, "/etc/passwd")?);
    let grps = groups(&read_in(rootfs, "/etc/group")?);
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry =
        match u.parse::<u32>() {
            Ok(uid) => users.iter().find(|p| p.uid == uid),
            Err(_) => Some(users.iter().find(|p| p.name == u).ok_or_else(|| {
                RuntimeError::UserUnknown {
                    user: u.into(),
                    file: "passwd",
                }
            })?),
        };
    let uid = entry
        .map(|e| e.uid)
        .unwrap_or_else(|| u.parse().unwrap_or(0));
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => grps
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(|| RuntimeError::UserUnknown {
                    user: g.into(),
                    file: "group",
                })?,
        },
        None => entry.map(|e| e.gid).unwrap_or(0),
    };
    let name = entry.map(|e| e.name.clone()).unwrap_or_default();
    let mut additional_gids: Vec<u32> = if g.is_none() && !name.is_empty() {
        grps.iter()
            .filter(|(_, _, m)| m.contains(&name))
            .map(|(_, gid, _)| *gid)
            .collect()
    } else {
        Vec::new()
    };
    additional_gids.retain(|x| *x != gid);
    additional_gids.dedup();
    let home = entry
        .map(|e| e.home.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into());
    Ok(User {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Find the command the container will exec, as execvp would inside it: a name with a slash is a
/// path (relative to `cwd`), anything else is looked up on the container's PATH.
pub fn check_command(
    rootfs: &Path,
    cwd: &str,
    env: &[String],
    cmd: &str,
) -> Result<PathBuf, RuntimeError> {
    let not_found = || RuntimeError::CommandNotFound {
        command: cmd.into(),
    };
    if cmd.is_empty() {
        return Err(not_found());
    }
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        vec![Path::new(cwd).join(cmd)]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(cmd))
            .collect()
    };
    let mut denied = None;
    for c in candidates {
        let Ok(host) = crate::unpack::scope::resolve(rootfs, &c, true) else {
            continue;
        };
        let Ok(md) = std::fs::metadata(&host) else {
            continue;
        };
        if md.is_file() && md.permissions().mode() & 0o111 != 0 {
            return Ok(c);
        }
        denied.get_or_insert(c);
    }
    match denied {
        Some(p) => Err(RuntimeError::CommandNotExecutable {
            command: cmd.into(),
            path: p,
        }),
        None => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            r.join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app\nstaff:x:50:\n",
        )
        .unwrap();
        std::fs::write(r.join("bin/busybox"), "").unwrap();
        std::fs::set_permissions(
            r.join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("/bin/busybox", r.join("bin/sh")).unwrap();
        std::fs::write(r.join("bin/data"), "").unwrap();
        t
    }

    #[test]
    fn users_resolve_like_docker() {
        let t = rootfs();
        let r = t.path();
        assert_eq!(
            resolve(r, "").unwrap(),
            User {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into()
            }
        );
        let app = resolve(r, "app").unwrap();
        assert_eq!(
            (
                app.uid,
                app.gid,
                app.additional_gids.clone(),
                app.home.as_str()
            ),
            (1000, 1000, vec![10], "/home/app")
        );
        assert_eq!(resolve(r, "1000").unwrap().gid, 1000);
        assert_eq!(
            resolve(r, "4242").unwrap(),
            User {
                uid: 4242,
                gid: 0,
                additional_gids: vec![],
                home: "/".into()
            }
        );
        assert_eq!(resolve(r, "app:staff").unwrap().gid, 50);
        assert_eq!(resolve(r, "0:7").unwrap().gid, 7);
        assert!(matches!(
            resolve(r, "nobody"),
            Err(RuntimeError::UserUnknown { .. })
        ));
        assert!(matches!(
            resolve(r, "app:nogroup"),
            Err(RuntimeError::UserUnknown { file: "group", .. })
        ));
    }

    #[test]
    fn a_fifo_or_huge_passwd_is_refused_not_read() {
        let t = rootfs();
        let r = t.path();
        std::fs::remove_file(r.join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(
            &r.join("etc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let e = resolve(r, "").unwrap_err();
        assert!(e.to_string().contains("/etc/passwd"), "{e}");
        assert!(e.to_string().contains("fifo"), "{e}");
        std::fs::remove_file(r.join("etc/passwd")).unwrap();
        let f = std::fs::File::create(r.join("etc/passwd")).unwrap();
        f.set_len(crate::unpack::scope::SMALL_FILE_CAP + 1).unwrap();
        let e = resolve(r, "0").unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn commands_are_found_on_path_in_scope() {
        let t = rootfs();
        let env = vec!["PATH=/usr/bin:/bin".to_string()];
        assert_eq!(
            check_command(t.path(), "/", &env, "sh").unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(
            check_command(t.path(), "/", &env, "/bin/sh").unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(
            check_command(t.path(), "/bin", &env, "./busybox").unwrap(),
            PathBuf::from("/bin/./busybox")
        );
        assert!(matches!(
            check_command(t.path(), "/", &env, "nope"),
            Err(RuntimeError::CommandNotFound { .. })
        ));
        assert!(matches!(
            check_command(t.path(), "/", &env, "data"),
            Err(RuntimeError::CommandNotExecutable { .. })
        ));
        assert!(matches!(
            check_command(t.path(), "/", &env, "/etc"),
            Err(RuntimeError::CommandNotExecutable { .. })
        ));
    }
}
