//! The template's tests, through its public face: [`super::Template::parse`] and
//! [`super::Template::render`].

use serde_json::json;

use super::*;

fn render(format: &str, value: &Value) -> String {
    Template::parse(format)
        .unwrap_or_else(|e| panic!("{e}"))
        .render(value)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn parse_error(format: &str) -> String {
    match Template::parse(format) {
        Err(TemplateError::Parse { template, message }) => {
            assert_eq!(template, format);
            message
        }
        other => panic!("expected a parse error for {format:?}, got {other:?}"),
    }
}

fn exec_error(format: &str, value: &Value) -> String {
    match Template::parse(format).unwrap().render(value) {
        Err(TemplateError::Exec { template, message }) => {
            assert_eq!(template, format);
            message
        }
        other => panic!("expected an exec error for {format:?}, got {other:?}"),
    }
}

fn container() -> Value {
    json!({
        "ID": "0123456789abcdef",
        "Names": "web",
        "Image": "nginx:latest",
        "Status": "Up 2 minutes",
        "Size": 1234,
        "Ratio": 0.5,
        "Tags": ["a", "b", "c"],
        "Empty": [],
        "Nothing": null,
        "State": {"Status": "running", "Running": true, "Pid": 42, "Health": null},
        "Mounts": [
            {"Source": "/data", "Destination": "/var/lib/data"},
            {"Source": "/etc/x", "Destination": "/x"}
        ],
        "Config": {"Labels": {"z": "last", "a": "first", "m": "mid"}},
        "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}
    })
}

#[test]
fn text_and_fields() {
    let c = container();
    assert_eq!(render("plain text", &c), "plain text");
    assert_eq!(render("", &c), "");
    assert_eq!(render("{{.Names}}", &c), "web");
    assert_eq!(
        render("name={{.Names}} image={{ .Image }}", &c),
        "name=web image=nginx:latest"
    );
    assert_eq!(render("{{.State.Status}}", &c), "running");
    assert_eq!(render("{{.State.Pid}}", &c), "42");
    assert_eq!(render("{{.}}", &json!("x")), "x");
    assert_eq!(render("{{$.Names}}", &c), "web");
    assert_eq!(render("{{$}}", &json!(7)), "7");
}

#[test]
fn missing_and_nil() {
    let c = container();
    assert_eq!(render("{{.Nope}}", &c), "<no value>");
    assert_eq!(render("{{.Nope.Deeper}}", &c), "<no value>");
    assert_eq!(render("{{.Nothing}}", &c), "<nil>");
    assert_eq!(render("{{.State.Health}}", &c), "<nil>");
    assert_eq!(render("{{.State.Health.Status}}", &c), "<no value>");
    assert!(
        exec_error("{{.Names.First}}", &c).contains("can't evaluate field First in type string")
    );
}

#[test]
fn value_printing() {
    let v = json!({"s": "x", "i": -3, "u": 18446744073709551615u64, "f": 1.5, "whole": 3.0,
        "big": 1234567.5, "tiny": 0.00001, "t": true, "a": [1, "b", null, [2]],
        "m": {"b": 2, "a": {"c": [1]}}, "e": {}});
    assert_eq!(
        render("{{.s}} {{.i}} {{.u}} {{.f}} {{.whole}} {{.t}}", &v),
        "x -3 18446744073709551615 1.5 3 true"
    );
    assert_eq!(render("{{.big}} {{.tiny}}", &v), "1.2345675e+06 1e-05");
    assert_eq!(render("{{.a}}", &v), "[1 b <nil> [2]]");
    assert_eq!(render("{{.m}}", &v), "map[a:map[c:[1]] b:2]");
    assert_eq!(render("{{.e}}", &v), "map[]");
}

#[test]
fn escapes_and_table_prefix() {
    let c = container();
    let t = Template::parse(r"{{.ID}}\t{{.Image}}\n").unwrap();
    assert!(!t.is_table());
    assert_eq!(t.render(&c).unwrap(), "0123456789abcdef\tnginx:latest\n");
    let t = Template::parse(r"table {{.ID}}\t{{.Image}}").unwrap();
    assert!(t.is_table());
    assert_eq!(t.render(&c).unwrap(), "0123456789abcdef\tnginx:latest");
    let t = Template::parse("table").unwrap();
    assert!(t.is_table());
    assert_eq!(t.render(&c).unwrap(), "");
    assert!(!Template::parse("tablefoo").unwrap().is_table());
    assert!(!Template::parse("{{.Names}} table").unwrap().is_table());
}

#[test]
fn trim_markers_and_comments() {
    let c = container();
    assert_eq!(render("a  {{- .Names -}}  \n b", &c), "awebb");
    assert_eq!(render("a {{- .Names}} b", &c), "aweb b");
    assert_eq!(render("a {{.Names -}} b", &c), "a webb");
    assert_eq!(render("{{-3}}", &c), "-3");
    assert_eq!(render("x{{/* a comment */}}y", &c), "xy");
    assert_eq!(render("x {{- /* a comment */ -}} y", &c), "xy");
    assert!(parse_error("{{/* a */ .X}}").contains("comment ends before closing delimiter"));
}

#[test]
fn literals() {
    let c = container();
    assert_eq!(render(r#"{{"a\"b\u00e9\\"}}"#, &c), "a\"bé\\");
    assert_eq!(render("{{`raw\\x`}}", &c), "raw\\x");
    // Like docker, `\t` and `\n` become tab and newline everywhere in the format.
    assert_eq!(render("{{`raw\\n`}}", &c), "raw\n");
    assert_eq!(
        render("{{1.5}} {{0x1f}} {{true}} {{false}}", &c),
        "1.5 31 true false"
    );
    assert_eq!(render(r#"{{"}}"}}"#, &c), "}}");
}

#[test]
fn json_function() {
    let c = container();
    assert_eq!(render("{{json .Tags}}", &c), r#"["a","b","c"]"#);
    assert_eq!(render("{{json .State.Status}}", &c), r#""running""#);
    assert_eq!(render("{{json .Nope}}", &c), "null");
    assert_eq!(
        render("{{.Config.Labels | json}}", &c),
        r#"{"a":"first","m":"mid","z":"last"}"#
    );
    let v = json!({"b": 1, "a": "<&>"});
    assert_eq!(render("{{json .}}", &v), r#"{"a":"<&>","b":1}"#);
}

#[test]
fn string_functions() {
    let c = container();
    assert_eq!(render("{{upper .Names}} {{.Names | upper}}", &c), "WEB WEB");
    assert_eq!(render(r#"{{lower "MiXeD"}}"#, &c), "mixed");
    assert_eq!(
        render(r#"{{title "hello big_world foo-bar"}}"#, &c),
        "Hello Big_world Foo-Bar"
    );
    assert_eq!(render(r#"{{join .Tags ", "}}"#, &c), "a, b, c");
    assert_eq!(render(r#"{{join .Nope ","}}"#, &c), "");
    assert_eq!(render(r#"{{split "a,b,c" ","}}"#, &c), "[a b c]");
    assert_eq!(render(r#"{{index (split .Image ":") 1}}"#, &c), "latest");
    assert_eq!(render(r#"{{len (split "abc" "")}}"#, &c), "3");
    assert_eq!(render("{{truncate .ID 12}}", &c), "0123456789ab");
    assert_eq!(render("{{truncate .Names 12}}", &c), "web");
    assert_eq!(
        render("[{{pad .Names 1 2}}][{{pad .Nope 1 1}}]", &c),
        "[ web  ][]"
    );
    assert_eq!(render("{{upper .Size}} {{upper .Nope}}.", &c), "1234 .");
    assert!(exec_error("{{upper .Tags}}", &c).contains("expected string; got array"));
}

#[test]
fn len_index_slice() {
    let c = container();
    assert_eq!(
        render(
            "{{len .Tags}} {{len .Names}} {{len .Config.Labels}} {{len .Nope}}",
            &c
        ),
        "3 3 3 0"
    );
    assert_eq!(render("{{index .Tags 0}} {{index .Tags 2}}", &c), "a c");
    assert_eq!(render(r#"{{index .Config.Labels "a"}}"#, &c), "first");
    assert_eq!(
        render(r#"{{index .Config.Labels "missing"}}"#, &c),
        "<no value>"
    );
    assert_eq!(render(r#"{{index .Nope "x"}}"#, &c), "<no value>");
    assert_eq!(
        render(r#"{{index .NetworkSettings.Ports "80/tcp"}}"#, &c),
        "[map[HostIp:0.0.0.0 HostPort:8080]]"
    );
    assert_eq!(
        render(
            r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#,
            &c
        ),
        "8080"
    );
    assert_eq!(
        render(
            r#"{{index .NetworkSettings.Ports "80/tcp" 0 "HostPort"}}"#,
            &c
        ),
        "8080"
    );
    assert_eq!(
        render("{{slice .Tags 1}} {{slice .Names 0 2}}", &c),
        "[b c] we"
    );
    assert!(exec_error("{{index .Tags 3}}", &c).contains("index out of range: 3"));
    assert!(exec_error("{{len .Size}}", &c).contains("len of type int"));
}

#[test]
fn printf_print_println() {
    let c = container();
    assert_eq!(
        render(r#"{{printf "%s has %d tags" .Names (len .Tags)}}"#, &c),
        "web has 3 tags"
    );
    assert_eq!(
        render(r#"{{printf "[%-6s][%6s][%.2s]" .Names .Names .Names}}"#, &c),
        "[web   ][   web][we]"
    );
    assert_eq!(
        render(r#"{{printf "%v %v %v" .Tags .State.Running .Ratio}}"#, &c),
        "[a b c] true 0.5"
    );
    assert_eq!(
        render(
            r#"{{printf "%q %05d %+d %x %.1f %t %%" .Names 42 7 255 .Ratio true}}"#,
            &c
        ),
        r#""web" 00042 +7 ff 0.5 true %"#
    );
    assert_eq!(
        render(r#"{{printf "%d %s" .Names}}"#, &c),
        "%!d(string=web) %!s(MISSING)"
    );
    assert_eq!(
        render(r#"{{printf "%s" .Names 1}}"#, &c),
        "web%!(EXTRA int=1)"
    );
    assert_eq!(render(r#"{{printf "%s" .Nope}}"#, &c), "%!s(<nil>)");
    assert_eq!(render(r#"{{.Names | printf "<%s>"}}"#, &c), "<web>");
    assert_eq!(render(r#"{{print "a" "b" 1 2 "c"}}"#, &c), "ab1 2c");
    assert_eq!(render(r#"{{println "a" 1 .Names}}"#, &c), "a 1 web\n");
}

#[test]
fn pipelines() {
    let c = container();
    assert_eq!(render("{{.Names | upper | lower}}", &c), "web");
    assert_eq!(render("{{.Tags | len}}", &c), "3");
    assert_eq!(render(r#"{{"," | split "x,y" }}"#, &c), "[x y]");
    assert_eq!(render("{{(.State).Status}}", &c), "running");
    assert!(
        parse_error("{{.Names | .Image}}").contains("non executable command in pipeline stage 2")
    );
}

#[test]
fn range() {
    let c = container();
    assert_eq!(
        render("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", &c),
        "/data:/var/lib/data /etc/x:/x "
    );
    assert_eq!(
        render(
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
            &c
        ),
        "a=first;m=mid;z=last;"
    );
    assert_eq!(
        render("{{range .Config.Labels}}{{.}},{{end}}", &c),
        "first,mid,last,"
    );
    assert_eq!(
        render("{{range $i, $e := .Tags}}{{$i}}:{{$e}} {{end}}", &c),
        "0:a 1:b 2:c "
    );
    assert_eq!(render("{{range $e := .Tags}}{{$e}}{{end}}", &c), "abc");
    assert_eq!(render("{{range .Empty}}x{{else}}none{{end}}", &c), "none");
    assert_eq!(render("{{range .Nope}}x{{else}}none{{end}}", &c), "none");
    assert_eq!(render("{{range .Tags}}{{$.Names}}{{end}}", &c), "webwebweb");
    assert_eq!(render("{{range 3}}{{.}}{{end}}", &c), "012");
    assert_eq!(
        render(
            "{{range .Tags}}{{if eq . \"b\"}}B{{else}}{{.}}{{end}}{{end}}",
            &c
        ),
        "aBc"
    );
    assert!(exec_error("{{range .Names}}x{{end}}", &c).contains("range can't iterate over web"));
}

#[test]
fn conditionals() {
    let c = container();
    assert_eq!(
        render("{{if .State.Running}}up{{else}}down{{end}}", &c),
        "up"
    );
    assert_eq!(render("{{if .Nope}}up{{else}}down{{end}}", &c), "down");
    assert_eq!(
        render(
            r#"{{if eq .Names "db"}}db{{else if eq .Names "web"}}web{{else}}?{{end}}"#,
            &c
        ),
        "web"
    );
    assert_eq!(
        render(
            r#"{{if eq .Names "x"}}x{{else if .Nope}}n{{else}}other{{end}}"#,
            &c
        ),
        "other"
    );
    for (value, truth) in [
        (json!(false), false),
        (json!(0), false),
        (json!(0.0), false),
        (json!(""), false),
        (json!(null), false),
        (json!([]), false),
        (json!({}), false),
        (json!(true), true),
        (json!(-1), true),
        (json!("0"), true),
        (json!([0]), true),
        (json!({"a": 0}), true),
    ] {
        let expected = if truth { "T" } else { "F" };
        assert_eq!(
            render("{{if .}}T{{else}}F{{end}}", &value),
            expected,
            "{value}"
        );
    }
}

#[test]
fn comparisons_and_logic() {
    let c = container();
    assert_eq!(
        render(
            r#"{{eq .Names "web"}} {{ne .Names "web"}} {{eq .Size 1234}} {{eq .Size 1234.0}}"#,
            &c
        ),
        "true false true true"
    );
    assert_eq!(render(r#"{{eq .Names "a" "b" "web"}}"#, &c), "true");
    assert_eq!(
        render(
            r#"{{eq .Nope "x"}} {{eq .Nope .Nothing}} {{eq .Nope nil}}"#,
            &c
        ),
        "false true true"
    );
    assert_eq!(
        render(
            "{{gt .Size 1000}} {{lt .Size 1000}} {{le 2 2}} {{ge 1 2}}",
            &c
        ),
        "true false true false"
    );
    assert_eq!(render(r#"{{lt "a" "b"}}"#, &c), "true");
    assert_eq!(
        render("{{not .State.Running}} {{not .Empty}}", &c),
        "false true"
    );
    assert_eq!(
        render(
            "{{and .Names .Size}} {{and .Names .Empty}} {{or .Empty .Names}} {{or .Empty 0}}",
            &c
        ),
        "1234 [] web 0"
    );
    // Short-circuit: the failing index is never evaluated.
    assert_eq!(render("{{and .Empty (index .Tags 9)}}", &c), "[]");
    assert_eq!(
        render(
            r#"{{if and .State.Running (eq .Names "web")}}yes{{end}}"#,
            &c
        ),
        "yes"
    );
    assert!(exec_error(r#"{{eq .Names 1}}"#, &c).contains("incompatible types for comparison"));
    assert!(exec_error(r#"{{lt .Tags 1}}"#, &c).contains("invalid type for comparison"));
    assert!(exec_error(r#"{{eq .Names}}"#, &c).contains("missing argument for comparison"));
}

#[test]
fn with_and_variables() {
    let c = container();
    assert_eq!(
        render("{{with .State}}{{.Status}}/{{.Pid}}{{end}}", &c),
        "running/42"
    );
    assert_eq!(render("{{with .Nope}}x{{else}}none{{end}}", &c), "none");
    assert_eq!(
        render("{{with .Nope}}x{{else with .Names}}{{.}}{{end}}", &c),
        "web"
    );
    assert_eq!(
        render("{{with $s := .State.Status}}{{$s}}{{end}}", &c),
        "running"
    );
    assert_eq!(
        render("{{$n := .Names}}{{range .Tags}}{{$n}}{{.}} {{end}}", &c),
        "weba webb webc "
    );
    assert_eq!(render("{{$n := 1}}{{$n = 2}}{{$n}}", &c), "2");
    assert_eq!(
        render("{{$x := 1}}{{if true}}{{$x = 5}}{{end}}{{$x}}", &c),
        "5"
    );
    assert!(
        parse_error("{{if true}}{{$y := 1}}{{end}}{{$y}}").contains("undefined variable \"$y\"")
    );
    assert!(parse_error("{{$z = 1}}").contains("undefined variable \"$z\""));
    assert!(parse_error("{{with $a, $b := .X}}{{end}}").contains("too many declarations"));
}

#[test]
fn parse_errors() {
    assert_eq!(
        parse_error("{{.ID}"),
        "template: :1: unexpected \"}\" in operand"
    );
    assert_eq!(parse_error("{{.ID"), "template: :1: unclosed action");
    assert_eq!(
        parse_error("a\n{{.ID}}{{end}}"),
        "template: :2: unexpected {{end}}"
    );
    assert_eq!(parse_error("{{else}}"), "template: :1: unexpected {{else}}");
    assert!(parse_error("{{if .X}}a").contains("unexpected EOF"));
    assert!(parse_error("{{range .X}}a{{else}}b").contains("unexpected EOF"));
    assert!(
        parse_error("{{if .X}}a{{else}}b{{else}}c{{end}}")
            .contains("expected {{end}}; found {{else}}")
    );
    assert_eq!(
        parse_error("{{nope .X}}"),
        "template: :1: function \"nope\" not defined"
    );
    assert!(parse_error("{{}}").contains("missing value for command"));
    assert!(parse_error("{{if}}{{end}}").contains("missing value for if"));
    assert!(parse_error("{{.X .Y}}").contains("can't give argument to non-function"));
    assert!(parse_error("{{(.X}}").contains("unclosed left paren"));
    assert!(parse_error("{{.X)}}").contains("unexpected \")\""));
    assert!(parse_error("{{\"abc}}").contains("unterminated quoted string"));
    assert!(parse_error("{{12ab}}").contains("bad number syntax"));
    assert!(parse_error("{{nil}}").contains("nil is not a command"));
    assert!(parse_error("{{template \"x\"}}").contains("not supported"));
    assert!(parse_error("{{.X | }}").contains("missing command"));
    assert!(parse_error("{{end .X}}").contains("unexpected operand"));
    let message = Template::parse("{{.ID}").unwrap_err().to_string();
    assert_eq!(
        message,
        r#"template parsing error in "{{.ID}": template: :1: unexpected "}" in operand"#
    );
}

#[test]
fn exec_errors() {
    let c = container();
    assert_eq!(
        exec_error("{{.Names.X}}", &c),
        "template: :1: executing at <.Names.X>: can't evaluate field X in type string"
    );
    assert!(
        exec_error("{{upper 1 2}}", &c).contains("wrong number of args for upper: want 1 got 2")
    );
    assert!(exec_error(r#"{{truncate .Names "x"}}"#, &c).contains("expected int; got string"));
    assert!(exec_error("{{printf 1}}", &c).contains("expected string; got int"));
    let message = Template::parse("{{.Names.X}}")
        .unwrap()
        .render(&c)
        .unwrap_err()
        .to_string();
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn serialized_rows() {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Row {
        id: String,
        labels: std::collections::BTreeMap<String, String>,
    }
    let row = serde_json::to_value(Row {
        id: "abc".into(),
        labels: [("k".to_string(), "v".to_string())].into(),
    })
    .unwrap();
    assert_eq!(
        render("{{.Id}} {{.Labels.k}} {{index .Labels \"k\"}}", &row),
        "abc v v"
    );
}
