//! Log drivers: `run`/`create` `--log-driver k8s-file|json-file|none|passthrough` and
//! `--log-opt max-size/max-file`, `den logs` over them (rotated files, `-f` across a rotation),
//! `inspect`'s `HostConfig.LogConfig` and `LogPath`, the config file's default, and output a
//! container chooses to be hostile.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::sandbox::{Sandbox, busybox};

fn ready() -> Sandbox {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb
}

fn inspect(sb: &Sandbox, name: &str, format: &str) -> String {
    sb.den(&["inspect", "--format", format, name])
        .ok()
        .trim()
        .to_string()
}

fn log_path(sb: &Sandbox, name: &str) -> PathBuf {
    PathBuf::from(inspect(sb, name, "{{.LogPath}}"))
}

/// The names of a container's log files, sorted.
fn log_files(sb: &Sandbox, name: &str) -> Vec<String> {
    let path = log_path(sb, name);
    let mut names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ctr.log"))
        .collect();
    names.sort();
    names
}

fn lines(range: std::ops::RangeInclusive<u32>) -> String {
    range.map(|i| format!("line {i}\n")).collect()
}

#[test]
fn json_file_is_dockers_format_and_logs_reads_it() {
    let sb = ready();
    let bb = busybox();
    let script = "echo out; echo err >&2; printf part";
    // In the foreground (the path without a monitor) and detached (the monitor's).
    let fg = sb.den(&[
        "run",
        "--name",
        "fg",
        "--log-driver",
        "json-file",
        &bb,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(fg.ok(), "out\npart");
    sb.den(&[
        "run",
        "-d",
        "--name",
        "bg",
        "--log-driver",
        "json-file",
        &bb,
        "sh",
        "-c",
        script,
    ])
    .ok();
    assert_eq!(sb.den(&["wait", "bg"]).ok(), "0\n");
    for name in ["fg", "bg"] {
        assert_eq!(
            inspect(&sb, name, "{{.HostConfig.LogConfig.Type}}"),
            "json-file"
        );
        let text = std::fs::read_to_string(log_path(&sb, name)).unwrap();
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let logs: Vec<(&str, &str)> = records
            .iter()
            .map(|r| (r["stream"].as_str().unwrap(), r["log"].as_str().unwrap()))
            .collect();
        let mut sorted = logs.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [("stderr", "err\n"), ("stdout", "out\n"), ("stdout", "part")]
        );
        for r in &records {
            let time = r["time"].as_str().unwrap();
            assert!(
                time.ends_with('Z') && time.len() > 25,
                "RFC3339Nano: {time}"
            );
            assert_eq!(r.as_object().unwrap().len(), 3, "{r}");
        }
        let out = sb.den(&["logs", name]);
        assert_eq!(out.ok(), "out\npart");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(sb.den(&["logs", "--tail", "1", name]).out(), "part");
        let stamped = sb.den(&["logs", "-t", name]).ok();
        assert!(
            stamped.starts_with("20") && stamped.contains("Z out\n"),
            "{stamped}"
        );
    }
    // k8s-file stays the default, as before.
    sb.den(&["run", "--name", "k", &bb, "echo", "hi"]).ok();
    assert_eq!(
        inspect(&sb, "k", "{{.HostConfig.LogConfig.Type}}"),
        "k8s-file"
    );
    let text = std::fs::read_to_string(log_path(&sb, "k")).unwrap();
    assert!(text.ends_with(" stdout F hi\n"), "{text}");
    assert_eq!(sb.den(&["logs", "k"]).ok(), "hi\n");
}

#[test]
fn none_keeps_no_log_and_logs_refuses_as_docker_does() {
    let sb = ready();
    let bb = busybox();
    // The foreground still shows the output: only the log is not kept.
    let out = sb.den(&[
        "run",
        "--name",
        "n",
        "--log-driver",
        "none",
        &bb,
        "echo",
        "hi",
    ]);
    assert_eq!(out.ok(), "hi\n");
    assert_eq!(inspect(&sb, "n", "{{.HostConfig.LogConfig.Type}}"), "none");
    assert_eq!(inspect(&sb, "n", "{{.LogPath}}"), "");
    sb.den(&["logs", "n"])
        .fails_with(1, "configured logging driver does not support reading");
    sb.den(&[
        "run",
        "-d",
        "--name",
        "d",
        "--log-driver",
        "none",
        &bb,
        "echo",
        "hi",
    ])
    .ok();
    assert_eq!(sb.den(&["wait", "d"]).ok(), "0\n");
    let id = inspect(&sb, "d", "{{.Id}}");
    let dir = sb.root.join("containers").join(&id);
    assert!(dir.is_dir(), "{}", dir.display());
    assert!(!dir.join("ctr.log").exists(), "no log file is kept");
    sb.den(&["logs", "-f", "d"])
        .fails_with(1, "configured logging driver does not support reading");
}

#[test]
fn passthrough_gives_the_container_dens_own_stdio() {
    let sb = ready();
    let bb = busybox();
    // den's stdout is a file here; through the relay the container would see a pipe.
    let script = "readlink /proc/self/fd/1";
    let out = sb.sh(&format!(
        "den run --name p --log-driver passthrough {bb} sh -c '{script}' > p.out && cat p.out; \
         den run --name r {bb} sh -c '{script}' > r.out && cat r.out"
    ));
    let text = out.ok();
    let mut it = text.lines();
    let (p, r) = (it.next().unwrap(), it.next().unwrap());
    assert!(r.starts_with("pipe:"), "the relay's stdout is a pipe: {r}");
    assert!(
        !p.starts_with("pipe:"),
        "passthrough's stdout is den's file: {p}"
    );
    assert_eq!(
        inspect(&sb, "p", "{{.HostConfig.LogConfig.Type}}"),
        "passthrough"
    );
    sb.den(&["logs", "p"])
        .fails_with(1, "configured logging driver does not support reading");
    // Detached, the output would have nowhere to go: refused, as podman refuses it.
    sb.den(&["run", "-d", "--log-driver", "passthrough", &bb, "true"])
        .fails_with(125, "passthrough");
    assert_eq!(sb.den(&["ps", "-aq"]).ok().lines().count(), 2);
}

#[test]
fn drivers_and_options_den_lacks_are_refused_in_one_line() {
    let sb = ready();
    let bb = busybox();
    for d in [
        "syslog", "journald", "local", "gelf", "fluentd", "awslogs", "splunk",
    ] {
        let out = sb.den(&["run", "--log-driver", d, &bb, "true"]);
        out.fails_with(125, &format!("log driver \"{d}\" is not supported by den"));
        assert!(
            out.stderr
                .contains("k8s-file, json-file, none, passthrough")
        );
    }
    sb.den(&["create", "--log-driver", "bogus", &bb, "true"])
        .fails_with(125, "no log driver named 'bogus'");
    for (opt, needle) in [
        ("max-size=ten", "max-size"),
        ("max-size=0", "max-size"),
        ("max-file=0", "max-file"),
        ("max-file=x", "max-file"),
        ("compress=true", "unknown log opt 'compress' for json-file"),
        ("foo=1", "unknown log opt 'foo'"),
        ("max-size", "KEY=VALUE"),
    ] {
        sb.den(&[
            "run",
            "--log-driver",
            "json-file",
            "--log-opt",
            opt,
            &bb,
            "true",
        ])
        .fails_with(125, needle);
    }
    sb.den(&[
        "run",
        "--log-driver",
        "none",
        "--log-opt",
        "max-size=1m",
        &bb,
        "true",
    ])
    .fails_with(125, "unknown log opt 'max-size' for none");
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), "", "the store is unchanged");
    // docker's json-file takes tag, labels and env (for shippers' attrs); den accepts them.
    sb.den(&[
        "run",
        "--name",
        "t",
        "--log-driver",
        "json-file",
        "--log-opt",
        "tag=x",
        "--log-opt",
        "labels=a",
        "--log-opt",
        "env=A",
        &bb,
        "true",
    ])
    .ok();
    assert_eq!(
        inspect(&sb, "t", "{{.HostConfig.LogConfig.Config.tag}}"),
        "x"
    );
    // docker's mode and max-buffer-size apply to every driver; den never drops output.
    sb.den(&[
        "run",
        "--log-driver",
        "none",
        "--log-opt",
        "mode=non-blocking",
        "--log-opt",
        "max-buffer-size=4m",
        &bb,
        "true",
    ])
    .ok();
    sb.den(&["run", "--log-opt", "mode=fast", &bb, "true"])
        .fails_with(125, "invalid value \"fast\" for log opt 'mode'");
}

#[test]
fn max_size_rotates_and_logs_reads_across_the_files() {
    let sb = ready();
    let bb = busybox();
    let script = "i=1; while [ $i -le 1500 ]; do echo line $i; i=$((i+1)); done";
    for driver in ["json-file", "k8s-file"] {
        let name = driver.replace("-file", "");
        sb.den(&[
            "run",
            "-d",
            "--name",
            &name,
            "--log-driver",
            driver,
            "--log-opt",
            "max-size=10k",
            "--log-opt",
            "max-file=3",
            &bb,
            "sh",
            "-c",
            script,
        ])
        .ok();
        assert_eq!(sb.den(&["wait", &name]).ok(), "0\n");
        assert_eq!(
            inspect(&sb, &name, "{{json .HostConfig.LogConfig.Config}}"),
            r#"{"max-file":"3","max-size":"10k"}"#
        );
        assert_eq!(log_files(&sb, &name), ["ctr.log", "ctr.log.1", "ctr.log.2"]);
        let dir = log_path(&sb, &name).parent().unwrap().to_path_buf();
        for f in log_files(&sb, &name) {
            let len = std::fs::metadata(dir.join(&f)).unwrap().len();
            assert!(len <= 10 * 1024, "{f}: {len} bytes");
        }
        // The oldest lines were dropped; what is kept is whole and in order.
        let all = sb.den(&["logs", &name]).ok();
        let first: u32 = all.lines().next().unwrap()[5..].parse().unwrap();
        assert!(first > 1, "{driver}: rotated away the first lines");
        assert_eq!(all, lines(first..=1500), "{driver}");
        // --tail reaches back across the files.
        let n = all.lines().count() as u32 - 10;
        assert_eq!(
            sb.den(&["logs", "--tail", &n.to_string(), &name]).ok(),
            lines(1500 - n + 1..=1500)
        );
    }
}

#[test]
fn logs_follows_the_writer_across_rotations() {
    let sb = ready();
    let bb = busybox();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "f",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=10",
        &bb,
        "sh",
        "-c",
        "i=1; while [ $i -le 300 ]; do echo line $i; i=$((i+1)); sleep 0.02; done",
    ])
    .ok();
    let t0 = Instant::now();
    let out = sb.den(&["logs", "-f", "f"]).ok();
    assert!(t0.elapsed() < Duration::from_secs(60));
    assert_eq!(out, lines(1..=300), "every line once, in order");
    // 300 records of about 85 bytes passed through more than ten 2 KiB files.
    assert_eq!(log_files(&sb, "f").len(), 10, "{:?}", log_files(&sb, "f"));
}

#[test]
fn the_config_file_sets_the_default_driver() {
    let sb = ready();
    let bb = busybox();
    sb.config("[log]\ndriver = \"json-file\"\nopts = { max-size = \"1m\" }\n");
    assert_eq!(
        sb.den(&["info", "--format", "{{.LoggingDriver}}"])
            .ok()
            .trim(),
        "json-file"
    );
    sb.den(&["run", "--name", "c", &bb, "echo", "hi"]).ok();
    assert_eq!(
        inspect(&sb, "c", "{{.HostConfig.LogConfig.Type}}"),
        "json-file"
    );
    assert_eq!(
        inspect(&sb, "c", "{{json .HostConfig.LogConfig.Config}}"),
        r#"{"max-size":"1m"}"#
    );
    // A flag's driver drops the config's options; --log-opt alone adds to them.
    sb.den(&[
        "run",
        "--name",
        "k",
        "--log-driver",
        "k8s-file",
        &bb,
        "true",
    ])
    .ok();
    assert_eq!(
        inspect(&sb, "k", "{{.HostConfig.LogConfig.Type}}"),
        "k8s-file"
    );
    assert_eq!(
        inspect(&sb, "k", "{{json .HostConfig.LogConfig.Config}}"),
        "{}"
    );
    sb.den(&["run", "--name", "o", "--log-opt", "max-file=2", &bb, "true"])
        .ok();
    assert_eq!(
        inspect(&sb, "o", "{{json .HostConfig.LogConfig.Config}}"),
        r#"{"max-file":"2","max-size":"1m"}"#
    );
    assert_eq!(sb.den(&["logs", "c"]).ok(), "hi\n");
    sb.config("[log]\ndriver = \"syslog\"\n");
    sb.den(&["create", &bb, "true"])
        .fails_with(125, "log driver \"syslog\" is not supported by den");
    sb.config("");
    assert_eq!(
        sb.den(&["ps", "-aq"]).ok().lines().count(),
        3,
        "nothing created"
    );
}

#[test]
fn hostile_output_comes_back_as_written() {
    let sb = ready();
    let bb = busybox();
    // Invalid UTF-8, a line that looks like a json-file record, a record-looking k8s line, a
    // 300 KB line of 3-byte characters (the monitor's reads end inside some), and a 300 KB line
    // with no newline.
    let script = r#"printf 'bad \377\376 utf-8\n'; printf '%s\n' '{"log":"forged\n","stream":"stderr","time":"x"}' '2026-01-01T00:00:00Z stderr F forged'; yes € | head -n 100000 | tr -d '\n'; echo; head -c 300000 /dev/zero | tr '\0' a"#;
    for driver in ["k8s-file", "json-file"] {
        let name = driver.replace("-file", "");
        sb.den(&[
            "run",
            "--name",
            &name,
            "--log-driver",
            driver,
            &bb,
            "sh",
            "-c",
            script,
        ])
        .ok();
        let out = sb.den(&["logs", &name]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stderr, "", "nothing forged onto stderr");
        let mut want: Vec<u8> = if driver == "k8s-file" {
            b"bad \xff\xfe utf-8\n".to_vec()
        } else {
            // JSON strings are Unicode: docker's writer replaces invalid UTF-8 too.
            "bad \u{fffd}\u{fffd} utf-8\n".as_bytes().to_vec()
        };
        want.extend_from_slice(b"{\"log\":\"forged\\n\",\"stream\":\"stderr\",\"time\":\"x\"}\n");
        want.extend_from_slice(b"2026-01-01T00:00:00Z stderr F forged\n");
        want.extend_from_slice("€".repeat(100_000).as_bytes());
        want.push(b'\n');
        want.extend(std::iter::repeat_n(b'a', 300_000));
        assert!(out.stdout == want, "{driver}: {} bytes", out.stdout.len());
        assert_eq!(
            sb.den(&["logs", "--tail", "1", &name]).stdout.len(),
            300_000
        );
    }
}

#[test]
fn json_file_logs_go_to_dev_null_a_file_and_a_closed_pipe() {
    let sb = ready();
    let bb = busybox();
    sb.den(&[
        "run",
        "--name",
        "many",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=200k",
        "--log-opt",
        "max-file=5",
        &bb,
        "sh",
        "-c",
        "seq 1 100000",
    ])
    .ok();
    // To /dev/null and to a file: quiet, and the file has every kept line.
    let out = sb.sh("den logs many >/dev/null && echo null-ok").ok();
    assert_eq!(out, "null-ok\n");
    let file = sb.dir.join("logs.txt");
    sb.sh(&format!("den logs --tail 5 many > {}", file.display()))
        .ok();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "99996\n99997\n99998\n99999\n100000\n"
    );
    // To a pipe its reader closes early (600 KB, well past a pipe's buffer): no error text, the pipeline's status is the reader's.
    let err = sb.dir.join("err.txt");
    let out = sb
        .sh(&format!(
            "den logs many 2>{} | head -n 1; echo status=$?",
            err.display()
        ))
        .ok();
    let mut l = out.lines();
    let first = l.next().unwrap();
    assert!(first.parse::<u32>().is_ok(), "{out}");
    assert_eq!(l.next(), Some("status=0"), "{out}");
    assert_eq!(l.next(), None, "{out}");
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "", "no error text");
}
