//! The flags, spelled as users spell them.

use super::*;

const CWD: &str = "/work/proj";

pub(in crate::volume) fn v(s: &str) -> Result<MountSpec, VolumeError> {
    parse_volume_flag_with_home(s, Path::new(CWD), Some(Path::new("/home/u")))
}
pub(in crate::volume) fn m(s: &str) -> Result<MountSpec, VolumeError> {
    parse_mount_flag_with_home(s, Path::new(CWD), Some(Path::new("/home/u")))
}
pub(in crate::volume) fn reason(e: VolumeError) -> String {
    match e {
        VolumeError::BadSpec { reason, .. }
        | VolumeError::BadMount { reason, .. }
        | VolumeError::BadTmpfs { reason, .. }
        | VolumeError::BadName { reason, .. } => reason,
        e => panic!("not a parse error: {e}"),
    }
}
pub(in crate::volume) fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
pub(in crate::volume) fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---- -v ----

#[test]
fn volume_flag_absolute_bind() {
    let s = v("/host/dir:/data").unwrap();
    assert_eq!(s.kind, MountKind::Bind);
    assert_eq!(s.source, "/host/dir");
    assert_eq!(s.destination, "/data");
    assert!(!s.read_only);
    assert_eq!(s.options, strs(&["rbind"]));
    assert!(!s.anonymous && !s.from_mount_flag);
}

#[test]
fn volume_flag_relative_binds_resolve_against_cwd() {
    assert_eq!(v("./src:/src").unwrap().source, "/work/proj/src");
    assert_eq!(v("../other:/o").unwrap().source, "/work/other");
    assert_eq!(v(".:/app").unwrap().source, "/work/proj");
    assert_eq!(v("..:/app").unwrap().source, "/work");
    assert_eq!(v(".hidden:/h").unwrap().source, "/work/proj/.hidden");
    assert_eq!(v("./a/./b//c/:/x").unwrap().source, "/work/proj/a/b/c");
    assert_eq!(v("./x:/x").unwrap().kind, MountKind::Bind);
}

#[test]
fn volume_flag_tilde_expands_home() {
    assert_eq!(v("~/code:/code").unwrap().source, "/home/u/code");
    assert_eq!(v("~:/h").unwrap().source, "/home/u");
    let e = parse_volume_flag_with_home("~/x:/x", Path::new(CWD), None).unwrap_err();
    assert!(reason(e).contains("HOME"));
}

#[test]
fn volume_flag_named_volume() {
    let s = v("my-data_1.0:/var/lib/db").unwrap();
    assert_eq!(s.kind, MountKind::Volume);
    assert_eq!(s.source, "my-data_1.0");
    assert_eq!(s.destination, "/var/lib/db");
    assert!(!s.anonymous);
    assert_eq!(s.options, strs(&["rbind"]));
}

#[test]
fn volume_flag_anonymous() {
    let a = v("/data").unwrap();
    assert_eq!(a.kind, MountKind::Volume);
    assert!(a.anonymous);
    assert!(is_hex64(&a.source), "{}", a.source);
    assert_eq!(a.destination, "/data");
    let b = v("/data").unwrap();
    assert_ne!(a.source, b.source);
    // Empty source: anonymous with options.
    let c = v(":/data:ro").unwrap();
    assert!(c.anonymous && c.read_only && is_hex64(&c.source));
}

#[test]
fn volume_flag_options() {
    let s = v("/a:/b:ro").unwrap();
    assert!(s.read_only);
    assert!(!v("/a:/b:rw").unwrap().read_only);
    let s = v("/a:/b:ro,Z,z,nosuid,noexec,nodev").unwrap();
    assert!(s.read_only);
    assert_eq!(s.options, strs(&["rbind", "nosuid", "noexec", "nodev"]));
    assert_eq!(v("/a:/b:bind").unwrap().options, strs(&["bind"]));
    assert_eq!(
        v("/a:/b:rbind,suid,dev,exec").unwrap().options,
        strs(&["rbind", "suid", "dev", "exec"])
    );
    // Ignored: propagation and consistency.
    assert_eq!(v("/a:/b:rslave,cached").unwrap().options, strs(&["rbind"]));
    let s = v("vol:/b:nocopy,ro").unwrap();
    assert_eq!(s.options, strs(&["rbind", "nocopy"]));
    assert!(s.nocopy() && s.read_only);
    // Duplicates are harmless.
    assert_eq!(
        v("/a:/b:ro,ro,nosuid,nosuid").unwrap().options,
        strs(&["rbind", "nosuid"])
    );
}

#[test]
fn volume_flag_destination_is_cleaned() {
    assert_eq!(v("/a:/b/./c//d/").unwrap().destination, "/b/c/d");
    assert_eq!(v("/a:/b/../c").unwrap().destination, "/c");
}

#[test]
fn volume_flag_errors() {
    let e = v("").unwrap_err();
    assert!(matches!(e, VolumeError::BadSpec { .. }));
    assert!(reason(v("/a:data").unwrap_err()).contains("absolute"));
    assert!(reason(v("data").unwrap_err()).contains("absolute"));
    assert!(reason(v("/a:/").unwrap_err()).contains("\"/\""));
    assert!(reason(v("/a:/b/..").unwrap_err()).contains("\"/\""));
    assert!(reason(v("/a:").unwrap_err()).contains("empty"));
    assert!(reason(v("/a:/b:c:d").unwrap_err()).contains("too many colons"));
    assert!(reason(v("/a:/b:bogus").unwrap_err()).contains("\"bogus\""));
    assert!(reason(v("/a:/b:").unwrap_err()).contains("empty option"));
    assert!(reason(v("/a:/b:ro,").unwrap_err()).contains("empty option"));
    assert!(reason(v("/a:/b:ro,rw").unwrap_err()).contains("conflicting"));
    assert!(reason(v("/a:/b:bind,rbind").unwrap_err()).contains("conflicting"));
    assert!(reason(v("/a:/b:exec,noexec").unwrap_err()).contains("conflicting"));
    assert!(reason(v("/a:/b:shared,private").unwrap_err()).contains("conflicting"));
    assert!(reason(v("/a:/b:nocopy").unwrap_err()).contains("nocopy"));
    // docker: a two-part spec is SRC:DST, so /a:ro is an error.
    assert!(reason(v("/a:ro").unwrap_err()).contains("not a destination"));
    let e = v("/a:/b:c:d").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid volume specification \"/a:/b:c:d\": too many colons"
    );
    assert!(e.hint().is_some());
}

#[test]
fn volume_flag_bad_volume_names() {
    for (spec, name) in [
        ("my vol:/x", "my vol"),
        ("a/b:/x", "a/b"),
        ("-x:/x", "-x"),
        ("_x:/x", "_x"),
        ("a:/x", "a"),
        ("vol$:/x", "vol$"),
    ] {
        match v(spec).unwrap_err() {
            VolumeError::BadName { name: n, .. } => assert_eq!(n, name, "{spec}"),
            e => panic!("{spec}: {e}"),
        }
    }
    let e = v("a/b:/x").unwrap_err();
    assert!(e.to_string().contains("\"a/b\""), "{e}");
    assert!(e.hint().unwrap().contains("./"));
    let long = format!("{}:/x", "a".repeat(256));
    assert!(reason(v(&long).unwrap_err()).contains("255"));
}

// ---- --mount ----

#[test]
fn mount_flag_bind() {
    let s = m("type=bind,source=/h,target=/c").unwrap();
    assert_eq!(s.kind, MountKind::Bind);
    assert_eq!((s.source.as_str(), s.destination.as_str()), ("/h", "/c"));
    assert!(!s.read_only && s.from_mount_flag && !s.anonymous);
    assert_eq!(s.options, strs(&["rbind"]));
    let s = m("type=bind,src=./rel,dst=/c,readonly").unwrap();
    assert_eq!(s.source, "/work/proj/rel");
    assert!(s.read_only);
    assert_eq!(
        m("type=bind,src=rel,destination=/c").unwrap().source,
        "/work/proj/rel"
    );
    assert_eq!(m("type=bind,src=~/x,dst=/c").unwrap().source, "/home/u/x");
    assert!(m("type=bind,src=/h,dst=/c,ro").unwrap().read_only);
    assert!(m("type=bind,src=/h,dst=/c,ro=true").unwrap().read_only);
    assert!(m("type=bind,src=/h,dst=/c,readonly=1").unwrap().read_only);
    assert!(
        !m("type=bind,src=/h,dst=/c,readonly=false")
            .unwrap()
            .read_only
    );
    assert!(!m("type=bind,src=/h,dst=/c,ro=0").unwrap().read_only);
    // Keys are case-insensitive; bind-propagation is checked and ignored.
    let s = m("Type=bind,Source=/h,Target=/c,bind-propagation=rslave").unwrap();
    assert_eq!(s.options, strs(&["rbind"]));
    assert_eq!(
        m("type=bind,src=/h,dst=/c,bind-nonrecursive")
            .unwrap()
            .options,
        strs(&["bind"])
    );
    assert_eq!(
        m("type=bind,src=/h,dst=/c,bind-nonrecursive=false")
            .unwrap()
            .options,
        strs(&["rbind"])
    );
    assert_eq!(
        m("type=bind,src=/h,dst=/c,bind-recursive=disabled")
            .unwrap()
            .options,
        strs(&["bind"])
    );
    assert_eq!(
        m("type=bind,src=/h,dst=/c,consistency=cached")
            .unwrap()
            .options,
        strs(&["rbind"])
    );
}

#[test]
fn mount_flag_volume() {
    let s = m("type=volume,source=data,target=/d").unwrap();
    assert_eq!(s.kind, MountKind::Volume);
    assert_eq!(s.source, "data");
    assert!(!s.anonymous);
    // type defaults to volume.
    let s = m("src=data,dst=/d,volume-nocopy").unwrap();
    assert_eq!(s.kind, MountKind::Volume);
    assert_eq!(s.options, strs(&["rbind", "nocopy"]));
    assert!(s.nocopy());
    let s = m("target=/d").unwrap();
    assert!(s.anonymous && is_hex64(&s.source));
    let s = m("type=volume,src=,dst=/d").unwrap();
    assert!(s.anonymous);
    assert!(m("src=data,dst=/d,volume-driver=local").is_ok());
}

#[test]
fn mount_flag_tmpfs() {
    let s = m("type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
    assert_eq!(s.kind, MountKind::Tmpfs);
    assert_eq!(s.source, "");
    assert_eq!(s.destination, "/run");
    assert_eq!(s.options, strs(&["size=67108864", "mode=1770"]));
    let s = m("type=tmpfs,dst=/t,tmpfs-size=1.5g,ro").unwrap();
    assert_eq!(s.options, strs(&["size=1610612736"]));
    assert!(s.read_only);
    assert_eq!(
        m("type=tmpfs,dst=/t,tmpfs-size=512MiB").unwrap().options,
        strs(&["size=536870912"])
    );
    assert_eq!(
        m("type=tmpfs,dst=/t,tmpfs-size=4096").unwrap().options,
        strs(&["size=4096"])
    );
}

#[test]
fn mount_flag_csv_quoting() {
    let s = m("type=bind,\"source=/a,b\",target=/c").unwrap();
    assert_eq!(s.source, "/a,b");
    let s = m("type=bind,\"source=/a\"\"q\",target=/c").unwrap();
    assert_eq!(s.source, "/a\"q");
    assert!(reason(m("type=bind,source=/a\"b,target=/c").unwrap_err()).contains("quote"));
    assert!(reason(m("type=bind,\"source=/a,target=/c").unwrap_err()).contains("quote"));
    assert!(reason(m("\"type=bind\"x,target=/c").unwrap_err()).contains("quote"));
}

#[test]
fn mount_flag_errors() {
    let e = m("type=bind,src=/a,dst=/b,colour=red").unwrap_err();
    assert!(matches!(e, VolumeError::BadMount { .. }));
    assert!(e.to_string().contains("unknown key \"colour\""), "{e}");
    assert!(e.hint().is_some());
    assert!(reason(m("").unwrap_err()).contains("empty"));
    assert!(reason(m("type=bind,src=/a,,dst=/b").unwrap_err()).contains("empty field"));
    assert!(reason(m("type=bind,src=/a").unwrap_err()).contains("target is required"));
    assert!(reason(m("type=bind,dst=/b").unwrap_err()).contains("source is required"));
    assert!(reason(m("type=bind,src=/a,dst=b").unwrap_err()).contains("absolute"));
    assert!(reason(m("type=bind,src=/a,dst=/").unwrap_err()).contains("\"/\""));
    assert!(reason(m("type=npipe,src=/a,dst=/b").unwrap_err()).contains("not supported"));
    assert!(reason(m("type,src=/a,dst=/b").unwrap_err()).contains("needs a value"));
    assert!(reason(m("type=bind,src=/a,dst=/b,ro=maybe").unwrap_err()).contains("maybe"));
    assert!(reason(m("src=v1,dst=/b,volume-opt=type=nfs").unwrap_err()).contains("volume-opt"));
    assert!(reason(m("src=v1,dst=/b,volume-driver=nfs").unwrap_err()).contains("nfs"));
    assert!(
        reason(m("type=bind,src=/a,dst=/b,bind-propagation=sideways").unwrap_err())
            .contains("sideways")
    );
    assert!(
        reason(m("type=bind,src=/a,dst=/b,bind-recursive=readonly").unwrap_err())
            .contains("readonly")
    );
    // Type-specific keys on another type.
    assert!(
        reason(m("type=volume,src=v1,dst=/b,bind-propagation=rshared").unwrap_err())
            .contains("type=bind")
    );
    assert!(
        reason(m("type=bind,src=/a,dst=/b,volume-nocopy").unwrap_err()).contains("type=volume")
    );
    assert!(reason(m("type=bind,src=/a,dst=/b,tmpfs-size=1m").unwrap_err()).contains("type=tmpfs"));
    assert!(reason(m("type=tmpfs,src=x,dst=/b").unwrap_err()).contains("source"));
    assert!(reason(m("type=tmpfs,dst=/b,tmpfs-size=lots").unwrap_err()).contains("tmpfs-size"));
    assert!(reason(m("type=tmpfs,dst=/b,tmpfs-mode=999").unwrap_err()).contains("tmpfs-mode"));
    assert!(reason(m("type=tmpfs,dst=/b,tmpfs-mode=17777").unwrap_err()).contains("tmpfs-mode"));
    // Volume sources are names, not paths.
    assert!(reason(m("type=volume,src=/abs,dst=/b").unwrap_err()).contains("type=bind"));
    assert!(reason(m("type=volume,src=a/b,dst=/b").unwrap_err()).contains("type=bind"));
    assert!(matches!(
        m("src=x y,dst=/b").unwrap_err(),
        VolumeError::BadName { .. }
    ));
}

// ---- --tmpfs ----

#[test]
fn tmpfs_flag() {
    let s = parse_tmpfs_flag("/run").unwrap();
    assert_eq!(s.kind, MountKind::Tmpfs);
    assert_eq!((s.source.as_str(), s.destination.as_str()), ("", "/run"));
    assert!(s.options.is_empty() && !s.read_only);
    let s = parse_tmpfs_flag("/run:size=64m,mode=1777,noexec").unwrap();
    assert_eq!(s.options, strs(&["size=64m", "mode=1777", "noexec"]));
    let s = parse_tmpfs_flag("/t:ro,size=10%,uid=1000,gid=1000,nr_inodes=1k,exec").unwrap();
    assert!(s.read_only);
    assert_eq!(
        s.options,
        strs(&["size=10%", "uid=1000", "gid=1000", "nr_inodes=1k", "exec"])
    );
    assert!(parse_tmpfs_flag("/t:").unwrap().options.is_empty());
    assert_eq!(parse_tmpfs_flag("/t//x/").unwrap().destination, "/t/x");
}

#[test]
fn tmpfs_flag_errors() {
    let t = |s: &str| reason(parse_tmpfs_flag(s).unwrap_err());
    assert!(t("").contains("empty"));
    assert!(t("run").contains("absolute"));
    assert!(t("/").contains("\"/\""));
    assert!(t("/t:size").contains("needs a value"));
    assert!(t("/t:size=").contains("invalid value"));
    assert!(t("/t:size=lots").contains("invalid value"));
    assert!(t("/t:size=64q").contains("invalid value"));
    assert!(t("/t:mode=abc").contains("invalid value"));
    assert!(t("/t:mode=999").contains("invalid value"));
    assert!(t("/t:uid=me").contains("invalid value"));
    assert!(t("/t:huge=sometimes").contains("invalid value"));
    assert!(t("/t:colour=red").contains("unknown option"));
    assert!(t("/t:fast").contains("unknown option"));
    assert!(t("/t:size=1m,,ro").contains("empty option"));
    let e = parse_tmpfs_flag("/t:fast").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid tmpfs specification \"/t:fast\""),
        "{e}"
    );
    assert!(e.hint().is_some());
}

#[test]
fn mount_spec_serde_defaults() {
    let s = v("/a:/b:ro").unwrap();
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<MountSpec>(&json).unwrap(), s);
    let old =
        r#"{"kind":"Bind","source":"/a","destination":"/b","read_only":true,"options":["rbind"]}"#;
    let parsed: MountSpec = serde_json::from_str(old).unwrap();
    assert!(!parsed.from_mount_flag && !parsed.anonymous);
}
