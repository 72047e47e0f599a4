//! Where credentials come from: podman's `--authfile` and `--creds`, and docker's credential
//! helpers (`credsStore`, `credHelpers`), against registries that ask for them: one with HTTP
//! basic auth (htpasswd) and one with bearer tokens. The helpers are shell scripts the tests put
//! on PATH, speaking docker's protocol and keeping what they are given in a file.

use std::path::{Path, PathBuf};

use crate::sandbox::{Registry, Sandbox, env, htpasswd_registry};

/// Install `docker-credential-NAME` in the sandbox's `bin`, put that first on PATH, and return
/// the keyring directory it keeps one file per server in (named after the server URL).
fn install_helper(sb: &mut Sandbox, name: &str) -> PathBuf {
    let bin = sb.dir.join("bin");
    let ring = sb.dir.join(format!("ring-{name}"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&ring).unwrap();
    let script = format!(
        r#"#!/bin/sh
ring={ring}
key() {{ printf %s "$1" | tr -c 'a-zA-Z0-9.' _; }}
echo "$1" >> "$ring/calls"
case "$1" in
get) read -r url; f="$ring/$(key "$url")"; [ -f "$f" ] && cat "$f" || {{ echo "credentials not found in native keychain"; exit 1; }} ;;
store) j=$(cat); url=$(printf %s "$j" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/'); printf %s "$j" > "$ring/$(key "$url")" ;;
erase) read -r url; f="$ring/$(key "$url")"; [ -f "$f" ] || {{ echo "credentials not found in native keychain"; exit 1; }}; rm "$f" ;;
list) echo '{{}}' ;;
esac
"#,
        ring = ring.display()
    );
    let p = bin.join(format!("docker-credential-{name}"));
    std::fs::write(&p, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    sb.set_env("PATH", &format!("{}:{path}", bin.display()));
    ring
}

/// The file a helper from [`install_helper`] keeps `server`'s credentials in.
fn ring_file(ring: &Path, server: &str) -> PathBuf {
    let key: String = server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    ring.join(key)
}

fn login(sb: &Sandbox, reg: &Registry, extra: &[&str], password: &str) -> crate::sandbox::Out {
    let mut args = vec![
        "login",
        reg.addr.as_str(),
        "-u",
        "alice",
        "--password-stdin",
    ];
    args.extend_from_slice(extra);
    sb.den_input(&args, format!("{password}\n").as_bytes())
}

/// Build `name` from the registry's busybox with `--creds`, so the base image's pull needs them.
fn build_from(sb: &Sandbox, reg: &Registry, name: &str, extra: &[&str]) -> crate::sandbox::Out {
    let df = format!(
        "FROM {}\nRUN echo creds > /c\n",
        reg.image("library/busybox")
    );
    let mut args = vec!["build", "-q", "-t", name];
    args.extend_from_slice(extra);
    args.push("-");
    sb.den_input(&args, df.as_bytes())
}

#[test]
fn authfile_is_where_login_writes_and_the_only_file_the_others_read() {
    let sb = Sandbox::new();
    let reg = htpasswd_registry("creds-authfile");
    let bb = reg.image("library/busybox");
    let own = sb.config_home.join("den/auth.json");
    let file = sb.dir.join("secrets/mine.json");
    let f = file.to_str().unwrap();

    // A wrong password stores nothing, there or in den's file.
    login(&sb, &reg, &["--authfile", f], "wrong").fails_with(1, &reg.addr);
    assert!(!file.exists() && !own.exists());

    let ok = login(&sb, &reg, &["--authfile", f], "s3cret");
    assert_eq!(ok.ok(), "Login Succeeded\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the auth file must be private");
    assert!(std::fs::read_to_string(&file).unwrap().contains(&reg.addr));
    assert!(
        !own.exists(),
        "login --authfile must not write den's own file"
    );

    // Without the file, den knows no credentials; with it, pull, push and search work.
    sb.den(&["pull", "-q", &bb])
        .fails_with(125, &format!("den login {}", reg.addr));
    sb.den(&["pull", "-q", "--authfile", f, &bb]).ok();
    let app = format!("{}/alice/app:1", reg.addr);
    sb.den(&["tag", &bb, &app]).ok();
    sb.den(&["push", &app])
        .fails_with(1, &format!("den login {}", reg.addr));
    sb.den(&["push", "-q", "--authfile", f, &app]).ok();
    let found = sb
        .den(&[
            "search",
            "--authfile",
            f,
            "--format",
            "{{.Name}}",
            &format!("{}/app", reg.addr),
        ])
        .ok();
    assert!(found.contains("alice/app"), "{found}");
    sb.den(&["rmi", &bb, &app]).ok();
    build_from(&sb, &reg, "built-authfile", &["--authfile", f]).ok();

    // Credentials in den's own file do not count when --authfile names another.
    login(&sb, &reg, &[], "s3cret").ok();
    let empty = sb.dir.join("empty.json");
    std::fs::write(&empty, "{}").unwrap();
    sb.den(&["pull", "-q", "--authfile", empty.to_str().unwrap(), &app])
        .fails_with(125, &format!("den login {}", reg.addr));

    // logout --authfile removes it there and leaves den's file alone.
    let out = sb.den(&["logout", "--authfile", f, &reg.addr]).ok();
    assert!(
        out.contains(&format!("Removing login credentials for {}", reg.addr)),
        "{out}"
    );
    assert!(!std::fs::read_to_string(&file).unwrap().contains(&reg.addr));
    assert!(std::fs::read_to_string(&own).unwrap().contains(&reg.addr));
    sb.den(&["pull", "-q", "--authfile", f, &app])
        .fails_with(125, &format!("den login {}", reg.addr));

    // REGISTRY_AUTH_FILE is --authfile's default, as in podman: login writes there and pull
    // reads only it.
    let mut sb2 = Sandbox::new();
    let env_file = sb2.dir.join("env-auth.json");
    sb2.set_env("REGISTRY_AUTH_FILE", env_file.to_str().unwrap());
    login(&sb2, &reg, &[], "s3cret").ok();
    assert!(
        std::fs::read_to_string(&env_file)
            .unwrap()
            .contains(&reg.addr)
    );
    assert!(!sb2.config_home.join("den/auth.json").exists());
    sb2.den(&["pull", "-q", &app]).ok();

    // A file that is not there is a mistake, not an anonymous pull.
    let missing = sb.dir.join("typo.json");
    sb.den(&["pull", "--authfile", missing.to_str().unwrap(), &app])
        .fails_with(125, "typo.json does not exist");

    // A damaged auth file: one line naming it, and nothing pulled.
    std::fs::write(&file, "{not json").unwrap();
    sb.den(&["pull", "--authfile", f, &app])
        .fails_with(125, &file.display().to_string());
}

#[test]
fn creds_serve_one_command_and_are_stored_nowhere() {
    let sb = Sandbox::new();
    let reg = htpasswd_registry("creds-creds");
    let bb = reg.image("library/busybox");

    sb.den(&["pull", "-q", "--creds", "alice:s3cret", &bb]).ok();
    let app = format!("{}/alice/creds:1", reg.addr);
    sb.den(&["tag", &bb, &app]).ok();
    sb.den(&["push", "-q", "--creds", "alice:s3cret", &app])
        .ok();
    let found = sb
        .den(&[
            "search",
            "--creds=alice:s3cret",
            "--format",
            "{{.Name}}",
            &format!("{}/creds", reg.addr),
        ])
        .ok();
    assert!(found.contains("alice/creds"), "{found}");
    sb.den(&["rmi", &bb, &app]).ok();
    build_from(&sb, &reg, "built-creds", &["--creds", "alice:s3cret"]).ok();

    let images = sb.den(&["images", "-q"]).ok();
    // Nothing was kept: no auth file, and the next pull is anonymous again.
    assert!(!sb.config_home.join("den/auth.json").exists());
    sb.den(&["pull", "-q", &app])
        .fails_with(125, &format!("den login {}", reg.addr));

    // A wrong password fails without showing it.
    let wrong = sb.den(&["pull", "--creds", "alice:hunter2", &app]);
    wrong.fails_with(125, &reg.addr);
    assert!(!wrong.stderr.contains("hunter2") && !wrong.out().contains("hunter2"));
    let wrong = sb.den(&["push", "--creds", "alice:hunter2", &app]);
    assert_ne!(wrong.code, 0);
    assert!(!wrong.stderr.contains("hunter2"), "{}", wrong.stderr);

    // No password on a terminal: asked for, without echo, and not shown.
    let asked = sb.den_pty(
        &["expect:Password for", "send:s3cret\n"],
        &["pull", "-q", "--creds", "alice", &app],
    );
    assert_eq!(asked.code, 0, "{}{}", asked.out(), asked.stderr);
    assert!(!asked.out().contains("s3cret"), "{}", asked.out());

    // No password and no terminal to ask on: one line, and the fix.
    let out = sb.den(&["pull", "--creds", "alice", &app]);
    out.fails_with(125, "--creds");
    assert!(out.stderr.contains("USER:PASSWORD"), "{}", out.stderr);
    sb.den(&["pull", "--creds", ":s3cret", &app])
        .fails_with(125, "user name");
    assert_eq!(
        sb.den(&["images", "-q"]).ok(),
        images,
        "refused pulls store nothing"
    );
}

#[test]
fn credential_helpers_keep_what_login_stores_and_serve_pull_and_push() {
    let mut sb = Sandbox::new();
    let reg = htpasswd_registry("creds-helper");
    let bb = reg.image("library/busybox");
    let ring = install_helper(&mut sb, "test");
    let docker = sb.home.join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    let config = docker.join("config.json");
    std::fs::write(&config, r#"{"credsStore": "test", "detachKeys": "ctrl-x"}"#).unwrap();
    let c = config.to_str().unwrap();

    // login into docker's file, which names a helper: the password goes to the helper, the
    // file keeps docker's empty entry and everything it had.
    assert_eq!(
        login(&sb, &reg, &["--authfile", c], "s3cret").ok(),
        "Login Succeeded\n"
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["auths"][&reg.addr], serde_json::json!({}), "{text}");
    assert_eq!(v["detachKeys"], "ctrl-x");
    assert_eq!(v["credsStore"], "test");
    let kept = std::fs::read_to_string(ring_file(&ring, &reg.addr)).unwrap();
    assert!(kept.contains("\"Secret\":\"s3cret\""), "{kept}");

    // pull and push (no --authfile: den reads docker's file) ask the helper.
    sb.den(&["pull", "-q", &bb]).ok();
    let app = format!("{}/alice/helper:1", reg.addr);
    sb.den(&["tag", &bb, &app]).ok();
    sb.den(&["push", "-q", &app]).ok();
    let calls = std::fs::read_to_string(ring.join("calls")).unwrap();
    assert!(
        calls.lines().filter(|l| *l == "get").count() >= 2,
        "{calls}"
    );

    // logout erases it from the helper.
    sb.den(&["logout", "--authfile", c, &reg.addr]).ok();
    assert!(!ring_file(&ring, &reg.addr).exists());
    sb.den(&["rmi", &bb]).ok();
    sb.den(&["pull", "-q", &bb])
        .fails_with(125, &format!("den login {}", reg.addr));

    // credHelpers names a registry's own helper, which wins over credsStore (here one that
    // is not installed, and so never run for this registry).
    install_helper(&mut sb, "other");
    let other = sb.dir.join("ring-other");
    std::fs::write(
        ring_file(&other, &reg.addr),
        format!(
            r#"{{"ServerURL":"{}","Username":"alice","Secret":"s3cret"}}"#,
            reg.addr
        ),
    )
    .unwrap();
    std::fs::write(
        &config,
        format!(
            r#"{{"credsStore":"absent","credHelpers":{{"{}":"other"}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    sb.den(&["pull", "-q", &bb]).ok();
    // build's pulls ask it too.
    sb.den(&["rmi", &bb]).ok();
    build_from(&sb, &reg, "built-helper", &[]).ok();
    // Another registry goes to credsStore, which is missing: one line naming it.
    let out = sb.den(&["pull", "127.0.0.1:1/x/y:1"]);
    out.fails_with(125, "docker-credential-absent");
    assert!(out.stderr.contains("127.0.0.1:1"), "{}", out.stderr);
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
}

#[test]
fn a_failing_or_misnamed_helper_is_one_line_without_the_secret() {
    let mut sb = Sandbox::new();
    let reg = htpasswd_registry("creds-badhelper");
    let bb = reg.image("library/busybox");
    let bin = sb.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // A helper that echoes what it was given and fails: den must not repeat the secret.
    let p = bin.join("docker-credential-broken");
    std::fs::write(
        &p,
        "#!/bin/sh\nin=$(cat)\necho \"keyring locked: $in\"\nexit 4\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    sb.set_env("PATH", &format!("{}:{path}", bin.display()));
    let file = sb.dir.join("auth.json");
    let f = file.to_str().unwrap();
    std::fs::write(&file, r#"{"credsStore":"broken"}"#).unwrap();

    let out = sb.den(&["pull", "--authfile", f, &bb]);
    out.fails_with(125, "docker-credential-broken");
    assert!(out.stderr.contains(&reg.addr), "{}", out.stderr);
    assert!(out.stderr.contains("keyring locked"), "{}", out.stderr);

    let out = login(&sb, &reg, &["--authfile", f], "s3cret");
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("docker-credential-broken"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        r#"{"credsStore":"broken"}"#,
        "a failed login leaves the file as it was"
    );

    // A helper name that is a path is refused before anything runs.
    std::fs::write(
        &file,
        r#"{"credHelpers":{"127.0.0.1:5000":"../../bin/sh"}}"#,
    )
    .unwrap();
    sb.den(&["pull", "--authfile", f, "127.0.0.1:5000/a/b:1"])
        .fails_with(125, "not a plain name");
}

#[test]
fn bearer_token_registries_take_helper_credentials_for_push() {
    let mut sb = Sandbox::new();
    let tokens =
        crate::token::TokenService::start(&env().tmp.join("tokens-creds"), &[("alice", "s3cret")]);
    let reg = Registry::start_with(
        "creds-bearer",
        &tokens.registry_config(),
        Some("alice:s3cret"),
    );
    reg.push("busybox", "library/busybox");
    let bb = reg.image("library/busybox");
    let ring = install_helper(&mut sb, "tok");
    let file = sb.dir.join("auth.json");
    let f = file.to_str().unwrap();
    std::fs::write(
        &file,
        format!(r#"{{"credHelpers":{{"{}":"tok"}}}}"#, reg.addr),
    )
    .unwrap();

    login(&sb, &reg, &["--authfile", f], "nope").fails_with(1, &reg.addr);
    assert!(!ring_file(&ring, &reg.addr).exists());
    login(&sb, &reg, &["--authfile", f], "s3cret").ok();
    assert!(ring_file(&ring, &reg.addr).exists());

    sb.den(&["pull", "-q", "--authfile", f, &bb]).ok();
    let app = format!("{}/alice/tok:1", reg.addr);
    sb.den(&["tag", &bb, &app]).ok();
    sb.den(&["push", "-q", &app]).fails_with(1, "den login");
    sb.den(&["push", "-q", "--authfile", f, &app]).ok();
    sb.den(&["push", "-q", "--creds", "alice:s3cret", &app])
        .ok();
}

#[test]
fn identity_tokens_from_helpers_and_auth_files_are_exchanged_for_registry_tokens() {
    let mut sb = Sandbox::new();
    let tokens = crate::token::TokenService::start(
        &env().tmp.join("tokens-idtoken"),
        &[("alice", "s3cret")],
    );
    let reg = Registry::start_with(
        "creds-idtoken",
        &tokens.registry_config(),
        Some("alice:s3cret"),
    );
    reg.push("busybox", "library/busybox");
    let bb = reg.image("library/busybox");
    let ring = install_helper(&mut sb, "idt");
    let token_answer = |t: &str| {
        format!(
            r#"{{"ServerURL":"{}","Username":"<token>","Secret":"{t}"}}"#,
            reg.addr
        )
    };
    let file = sb.dir.join("auth.json");
    let f = file.to_str().unwrap();
    std::fs::write(
        &file,
        format!(r#"{{"credHelpers":{{"{}":"idt"}}}}"#, reg.addr),
    )
    .unwrap();
    sb.den(&["pull", "-q", "--authfile", f, &bb]).ok();
    let app = format!("{}/alice/idt:1", reg.addr);
    sb.den(&["tag", &bb, &app]).ok();

    // A token the service does not know: refused, exit 1, and the token is not shown.
    std::fs::write(ring_file(&ring, &reg.addr), token_answer("idtoken-mallory")).unwrap();
    let out = sb.den(&["push", "--authfile", f, &app]);
    out.fails_with(1, &reg.addr);
    assert!(!out.stderr.contains("idtoken-mallory"), "{}", out.stderr);
    // A pull exchanges it too (anonymous pulls would be allowed: the refusal shows it was sent).
    let out = sb.den(&["pull", "--authfile", f, &bb]);
    out.fails_with(125, "identity token");
    assert!(!out.stderr.contains("idtoken-mallory"), "{}", out.stderr);

    // alice's identity token from the helper: the push goes through, and a pull by it too.
    std::fs::write(ring_file(&ring, &reg.addr), token_answer("idtoken-alice")).unwrap();
    sb.den(&["push", "-q", "--authfile", f, &app]).ok();
    sb.den(&["rmi", &app]).ok();
    sb.den(&["pull", "-q", "--authfile", f, &app]).ok();

    // docker's `identitytoken` in an auth file's entry works the same.
    let docker = sb.dir.join("docker.json");
    std::fs::write(
        &docker,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"","identitytoken":"idtoken-alice"}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    let app2 = format!("{}/alice/idt:2", reg.addr);
    sb.den(&["tag", &bb, &app2]).ok();
    sb.den(&["push", "-q", "--authfile", docker.to_str().unwrap(), &app2])
        .ok();
}
