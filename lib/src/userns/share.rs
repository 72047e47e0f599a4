//! What a container shares with the user who runs it: the PID and IPC namespaces (`--pid
//! host`, `--ipc host`, docker's) and the user's own id (`--userns keep-id`, podman's), the run
//! defaults an HPC site switches on, where a container should feel like a process of the job.
//!
//! Entry points: [`Shared`] (stored in a container's record) and [`keep_id_map`] (the id map of
//! a keep-id container's user namespace, relative to den's).
//!
//! keep-id: the container runs as the user's uid U (and gid G), in a user namespace of its own
//! nested in den's. den's namespace maps its 0 to the user and its n to the n-th subordinate id,
//! and layers were unpacked under that map. The nested one swaps 0 and U: container U is den's
//! 0 (the user, on the host), container 0 is den's U (subordinate id U-1, on the host), every
//! other id is itself. So the image's root-owned files appear owned by the user (podman's
//! keep-id shows them so), a file owned by U in the image appears owned by root, and every
//! other owner is kept. In single-uid mode den's namespace has only its 0, so the nested one
//! maps only U to it.

use serde::{Deserialize, Serialize};

use super::{IdMap, Range};

/// The namespaces a container shares with den's, and whether it keeps the user's id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shared {
    /// `--pid host`: no PID namespace of its own; `/proc` is bound from den's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pid: bool,
    /// `--ipc host`: no IPC namespace of its own; `/dev/shm` is bound from den's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipc: bool,
    /// `--userns keep-id`: the user's uid and gid inside (see the module doc).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_id: bool,
}

impl Shared {
    /// Nothing shared: docker's defaults.
    pub fn is_private(&self) -> bool {
        *self == Shared::default()
    }
}

/// `--userns` (podman's words): `keep-id`, or `host` / `` (den's own user namespace, where the
/// container's root is the user: podman's rootless default). Others are refused by the caller.
pub fn parse_userns(s: &str) -> Option<bool> {
    match s {
        "" | "host" => Some(false),
        "keep-id" => Some(true),
        _ => None,
    }
}

/// `--pid` and `--ipc` (docker's words): `host` shares, `private` (and `shareable` for ipc,
/// which den's containers always are to `exec`) does not.
pub fn parse_host(s: &str, ipc: bool) -> Option<bool> {
    match s {
        "host" => Some(true),
        "" | "private" => Some(false),
        "shareable" if ipc => Some(false),
        _ => None,
    }
}

/// One line of a uid_map or gid_map: `count` ids from `inside` are `outside` onwards in the
/// parent namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapLine {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The uid and gid maps (in den's namespace's terms) of a keep-id container for `map`: the user
/// (`map`'s uid, gid) swapped with 0 where den has subordinate ids, alone where it does not.
/// None for real root, which has no user to keep.
pub fn keep_id_map(map: &IdMap) -> Option<(Vec<MapLine>, Vec<MapLine>)> {
    match map {
        IdMap::Mapped {
            uid,
            gid,
            uids,
            gids,
        } => Some((swap(*uid, size(uids)), swap(*gid, size(gids)))),
        IdMap::Single { uid, gid, .. } => Some((
            vec![MapLine {
                inside: *uid,
                outside: 0,
                count: 1,
            }],
            vec![MapLine {
                inside: *gid,
                outside: 0,
                count: 1,
            }],
        )),
        IdMap::Root => None,
    }
}

/// How many ids den's namespace has: its 0 and the subordinate ones (capped at 2^32 - 1).
fn size(ranges: &[Range]) -> u32 {
    let n = 1 + ranges.iter().map(|r| r.count as u64).sum::<u64>();
    n.min(u32::MAX as u64) as u32
}

/// The map over den's `0..size` that swaps 0 and `id` and keeps every other id. Every map has
/// a root inside: libcontainer becomes root in a user namespace it joins.
fn swap(id: u32, size: u32) -> Vec<MapLine> {
    let line = |inside, outside, count| MapLine {
        inside,
        outside,
        count,
    };
    if id >= size {
        // A uid above den's range (common on sites with directory uids and 65536 subordinate
        // ids): every id of den's namespace is itself but the last, which is the container's
        // root; the user is den's 0. Only files the image gives its last id change owner.
        let mut v = vec![line(0, size - 1, 1)];
        if size > 2 {
            v.push(line(1, 1, size - 2));
        }
        v.push(line(id, 0, 1));
        return v;
    }
    if id == 0 {
        return vec![line(0, 0, size)];
    }
    let mut v = vec![line(0, id, 1)];
    if id > 1 {
        v.push(line(1, 1, id - 1));
    }
    v.push(line(id, 0, 1));
    if size > id + 1 {
        v.push(line(id + 1, id + 1, size - id - 1));
    }
    v
}

/// A map as the kernel's uid_map file takes it: one `inside outside count` line each.
pub fn map_text(lines: &[MapLine]) -> String {
    lines
        .iter()
        .map(|l| format!("{} {} {}\n", l.inside, l.outside, l.count))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(uid: u32, count: u32) -> IdMap {
        IdMap::Mapped {
            uid,
            gid: uid,
            uids: vec![Range {
                start: 100000,
                count,
            }],
            gids: vec![Range {
                start: 100000,
                count,
            }],
        }
    }

    /// Where `id` inside lands in den's namespace, through `lines`.
    fn through(lines: &[MapLine], id: u32) -> Option<u32> {
        lines
            .iter()
            .find(|l| id >= l.inside && id - l.inside < l.count)
            .map(|l| l.outside + (id - l.inside))
    }

    #[test]
    fn keep_id_swaps_the_user_and_root_and_keeps_the_rest() {
        let (uids, gids) = keep_id_map(&mapped(1001, 65536)).unwrap();
        assert_eq!(uids, gids);
        assert_eq!(
            map_text(&uids),
            "0 1001 1\n1 1 1000\n1001 0 1\n1002 1002 64535\n"
        );
        // den's 0 is the user on the host: files the image's root owns appear as the user's.
        assert_eq!(through(&uids, 1001), Some(0));
        assert_eq!(through(&uids, 0), Some(1001));
        assert_eq!(through(&uids, 33), Some(33));
        assert_eq!(through(&uids, 65536), Some(65536));
        assert_eq!(through(&uids, 65537), None);
        // Every id of den's namespace is used once.
        let total: u64 = uids.iter().map(|l| l.count as u64).sum();
        assert_eq!(total, 65537);
    }

    #[test]
    fn keep_id_in_single_uid_mode_maps_the_user_alone() {
        let single = IdMap::Single {
            uid: 1002,
            gid: 1003,
            reason: String::new(),
        };
        let (uids, gids) = keep_id_map(&single).unwrap();
        assert_eq!(map_text(&uids), "1002 0 1\n");
        assert_eq!(map_text(&gids), "1003 0 1\n");
        assert_eq!(keep_id_map(&IdMap::Root), None);
    }

    #[test]
    fn a_user_above_the_subordinate_range_keeps_a_root_inside() {
        // 100 subordinate ids (den's 0..=100), uid 5000: den's last id is root, 1..99 are
        // themselves, the user is den's 0.
        let (uids, _) = keep_id_map(&mapped(5000, 100)).unwrap();
        assert_eq!(map_text(&uids), "0 100 1\n1 1 99\n5000 0 1\n");
        assert_eq!(through(&uids, 5000), Some(0));
        // uid 1: root and the user are neighbours.
        let (uids, _) = keep_id_map(&mapped(1, 10)).unwrap();
        assert_eq!(map_text(&uids), "0 1 1\n1 0 1\n2 2 9\n");
    }

    #[test]
    fn flag_words_are_podmans_and_dockers() {
        assert_eq!(parse_userns("keep-id"), Some(true));
        assert_eq!(parse_userns("host"), Some(false));
        assert_eq!(parse_userns("auto"), None);
        assert_eq!(parse_userns("keep-id:uid=5"), None);
        assert_eq!(parse_host("host", false), Some(true));
        assert_eq!(parse_host("private", true), Some(false));
        assert_eq!(parse_host("shareable", true), Some(false));
        assert_eq!(parse_host("shareable", false), None);
        assert_eq!(parse_host("container:x", true), None);
        assert!(Shared::default().is_private());
    }
}
