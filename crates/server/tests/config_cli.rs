//! The `gyre` binary's configuration commands, run as a user would run them.

use std::io::Read as _;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use gyre_testkit::{GyreBinary, free_port};

fn binary() -> GyreBinary {
    GyreBinary::new(env!("CARGO_BIN_EXE_gyre"))
}

/// Runs `gyre` in `dir` with a clean environment plus `env`.
fn gyre(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    binary().run(dir, args, env)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn checkconfig_strict_fails_on_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"client": {"token": {"hmac_secret": "x"}}, "unknown_section": {}}"#,
    )
    .unwrap();
    let lenient = gyre(dir.path(), &["checkconfig"], &[]);
    assert!(lenient.status.success(), "{}", describe(&lenient));
    assert!(String::from_utf8_lossy(&lenient.stderr).contains("client.token.hmac_secret"));

    let strict = gyre(dir.path(), &["checkconfig", "--strict"], &[]);
    assert_eq!(strict.status.code(), Some(1), "{}", describe(&strict));
    let out = stdout(&strict);
    assert!(
        out.contains("unknown keys in config") && out.contains("unknown_section"),
        "{out}"
    );

    std::fs::write(
        dir.path().join("ok.yaml"),
        "client:\n  token:\n    hmac_secret_key: x\n",
    )
    .unwrap();
    let ok = gyre(dir.path(), &["checkconfig", "-c", "ok.yaml", "-s"], &[]);
    assert!(ok.status.success(), "{}", describe(&ok));
    let env = gyre(
        dir.path(),
        &["checkconfig", "-c", "ok.yaml", "-s"],
        &[("CENTRIFUGO_CLIENT_TOKEN_TYPO", "1")],
    );
    assert_eq!(env.status.code(), Some(1), "{}", describe(&env));
    assert!(stdout(&env).contains("CENTRIFUGO_CLIENT_TOKEN_TYPO"));
}

#[test]
fn checkconfig_reports_missing_file_and_invalid_values() {
    let dir = tempfile::tempdir().unwrap();
    let missing = gyre(dir.path(), &["checkconfig", "-c", "absent.json"], &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stdout(&missing).contains("config file not found"),
        "{}",
        describe(&missing)
    );

    std::fs::write(
        dir.path().join("bad.toml"),
        "[[channel.namespaces]]\nname = \"x\"\n",
    )
    .unwrap();
    let bad = gyre(dir.path(), &["checkconfig", "-c", "bad.toml"], &[]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stdout(&bad).contains("channel.namespaces.[0].name"),
        "{}",
        describe(&bad)
    );
}

#[test]
fn genconfig_round_trips_in_every_format_and_refuses_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "config.yaml", "config.yml", "config.toml"] {
        let out = gyre(dir.path(), &["genconfig", "-c", name], &[]);
        assert!(out.status.success(), "{name}: {}", describe(&out));
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(
            text.contains("hmac_secret_key") && text.contains("allowed_origins"),
            "{text}"
        );

        let check = gyre(dir.path(), &["checkconfig", "-c", name, "--strict"], &[]);
        assert!(check.status.success(), "{name}: {}", describe(&check));

        // The generated secrets are the ones the loader sees.
        let env = gyre(
            dir.path(),
            &["defaultenv", "-b", name, "--base-non-zero-only"],
            &[],
        );
        assert!(env.status.success(), "{name}: {}", describe(&env));
        let env = stdout(&env);
        let key_line = env
            .lines()
            .find(|l| l.starts_with("CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY="))
            .unwrap();
        let key = key_line.split_once('=').unwrap().1.trim_matches('"');
        assert_eq!(key.len(), 64, "{key_line}");
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(text.contains(key));
        assert!(
            env.contains("CENTRIFUGO_ADMIN_PASSWORD=") && env.contains("CENTRIFUGO_HTTP_API_KEY=")
        );
        assert!(
            !env.contains("CENTRIFUGO_CLIENT_PING_INTERVAL"),
            "only non-zero base values: {env}"
        );

        let again = gyre(dir.path(), &["genconfig", "-c", name], &[]);
        assert_eq!(again.status.code(), Some(1), "{name}: {}", describe(&again));
        assert!(stdout(&again).contains("already exists"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(name)).unwrap(),
            text,
            "file untouched"
        );
    }
    let unsupported = gyre(dir.path(), &["genconfig", "-c", "config.ini"], &[]);
    assert_eq!(unsupported.status.code(), Some(1));
    assert!(!dir.path().join("config.ini").exists());
}

#[test]
fn defaultconfig_writes_full_defaults_that_load_back() {
    let dir = tempfile::tempdir().unwrap();
    let dry = gyre(
        dir.path(),
        &["defaultconfig", "-c", "full.json", "--dry-run"],
        &[],
    );
    assert!(dry.status.success(), "{}", describe(&dry));
    let dry_json: serde_json::Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(dry_json["client"]["ping_interval"], "25s");
    assert_eq!(dry_json["channel"]["history_meta_ttl"], "720h0m0s");
    assert_eq!(dry_json["http_server"]["port"], 8000);
    assert!(
        !dir.path().join("full.json").exists(),
        "dry run writes nothing"
    );

    for name in ["full.json", "full.yaml", "full.toml"] {
        let out = gyre(dir.path(), &["defaultconfig", "-c", name], &[]);
        assert!(out.status.success(), "{name}: {}", describe(&out));
        let check = gyre(dir.path(), &["checkconfig", "-c", name, "--strict"], &[]);
        assert!(check.status.success(), "{name}: {}", describe(&check));
        // Same defaults as without any file.
        let from_file = gyre(dir.path(), &["defaultenv", "-b", name], &[]);
        let without = gyre(dir.path(), &["defaultenv"], &[]);
        assert_eq!(stdout(&from_file), stdout(&without), "{name}");
        let again = gyre(dir.path(), &["defaultconfig", "-c", name], &[]);
        assert_eq!(again.status.code(), Some(1), "refuses to overwrite {name}");
    }

    // A base file's values show up in the full config.
    std::fs::write(dir.path().join("base.yaml"), "http_server:\n  port: 9999\n").unwrap();
    let based = gyre(
        dir.path(),
        &["defaultconfig", "-c", "x.json", "-b", "base.yaml", "-d"],
        &[],
    );
    let based: serde_json::Value = serde_json::from_str(&stdout(&based)).unwrap();
    assert_eq!(based["http_server"]["port"], 9999);
    assert_eq!(based["client"]["channel_limit"], 128);
}

#[test]
fn defaultenv_lists_every_key_with_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let out = gyre(dir.path(), &["defaultenv"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    for line in [
        "CENTRIFUGO_HTTP_SERVER_PORT=8000",
        "CENTRIFUGO_CLIENT_PING_INTERVAL=25s",
        "CENTRIFUGO_LOG_LEVEL=\"info\"",
        "CENTRIFUGO_CLIENT_ALLOWED_ORIGINS=\"\"",
        "CENTRIFUGO_ENGINE_REDIS_ADDRESS=\"redis://127.0.0.1:6379\"",
        "CENTRIFUGO_CHANNEL_NAMESPACES=\"\"",
        "CENTRIFUGO_CHANNEL_HISTORY_META_TTL=720h0m0s",
        "CENTRIFUGO_ADMIN_ENABLED=false",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}");
    }
    let names: Vec<&str> = text.lines().map(|l| l.split_once('=').unwrap().0).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
}

/// Starts the server, waits for the line announcing where it serves clients, stops it
/// and returns everything it printed up to then.
fn serve_until_listening(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut with_path = vec![("PATH", path.as_str())];
    with_path.extend_from_slice(env);
    binary().serve_until(dir, args, &with_path, "serving client connections")
}

#[test]
fn flags_beat_env_and_env_beats_file_when_serving() {
    let dir = tempfile::tempdir().unwrap();
    let [file_port, env_port, flag_port] = [free_port(), free_port(), free_port()];
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"http_server": {{"port": {file_port}, "address": "127.0.0.1"}}}}"#),
    )
    .unwrap();
    let file_only = serve_until_listening(dir.path(), &[], &[]);
    assert!(
        file_only.contains(&format!("127.0.0.1:{file_port}")),
        "{file_only}"
    );
    let env_port_text = env_port.to_string();
    let env = [
        ("CENTRIFUGO_HTTP_SERVER_PORT", env_port_text.as_str()),
        ("CENTRIFUGO_HTTP_SERVER_ADDRESS", "127.0.0.2"),
    ];
    let with_env = serve_until_listening(dir.path(), &[], &env);
    assert!(
        with_env.contains(&format!("127.0.0.2:{env_port}")),
        "{with_env}"
    );
    let flag_port_text = flag_port.to_string();
    let with_flag = serve_until_listening(
        dir.path(),
        &[
            "-p",
            &flag_port_text,
            "--admin.enabled",
            "--client.insecure=false",
        ],
        &env,
    );
    assert!(
        with_flag.contains(&format!("127.0.0.2:{flag_port}")),
        "{with_flag}"
    );
    let with_both = serve_until_listening(
        dir.path(),
        &["--http_server.port", &flag_port_text, "-a", "127.0.0.3"],
        &env,
    );
    assert!(
        with_both.contains(&format!("127.0.0.3:{flag_port}")),
        "{with_both}"
    );
}

#[test]
fn serve_warns_about_unsupported_features_and_still_starts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"graphite": {{"enabled": true}}, "http_server": {{"address": "127.0.0.1", "port": {port}}}}}"#),
    )
    .unwrap();
    let text = serve_until_listening(
        dir.path(),
        &[],
        &[("CENTRIFUGO_WEBTRANSPORT_ENABLED", "true")],
    );
    assert!(
        text.contains("graphite is configured but not supported"),
        "{text}"
    );
    assert!(
        text.contains("webtransport is configured but not supported"),
        "{text}"
    );
    assert!(text.contains("serving client connections"), "{text}");
}

/// Runs the server until it exits (at most 20 s, then it is killed); returns its exit code
/// (`None` when killed) and standard output.
fn serve_to_exit(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = binary()
        .command(dir, args, env)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (code, out)
}

/// A configuration serving on a free loopback port, with `extra` top-level keys.
fn config_with_stream_proxy(extra: &str) -> String {
    format!(
        r#"{{"channel": {{"proxy": {{"subscribe_stream": {{"endpoint": "grpc://127.0.0.1:9"}}}}, "without_namespace": {{"subscribe_stream_proxy_enabled": true}}}},
            "http_server": {{"address": "127.0.0.1", "port": {}}}{extra}}}"#,
        free_port()
    )
}

/// The lines of a log at `level` that mention `text` (text or JSON log lines).
fn logged(log: &str, level: &str, text: &str) -> usize {
    log.lines()
        .filter(|l| at_level(l, level) && l.contains(text))
        .count()
}

fn at_level(line: &str, level: &str) -> bool {
    line.contains(&format!(" {level} ")) || line.contains(&format!("\"level\":\"{level}\""))
}

#[test]
fn serve_refuses_an_unsupported_feature_that_decides_access() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config_with_stream_proxy("")).unwrap();
    let (code, out) = serve_to_exit(dir.path(), &[], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        logged(
            &out,
            "ERROR",
            "channel.proxy.subscribe_stream (subscribe_stream_proxy_enabled) is configured but \
             not supported by Gyre yet, and it decides who may connect"
        ),
        1,
        "{out}"
    );
    assert!(out.contains("refused with error 108"), "{out}");
    let refusal = out
        .lines()
        .find(|l| {
            l.starts_with(
                "error: refusing to run: channel.proxy.subscribe_stream \
                 (subscribe_stream_proxy_enabled) configured",
            )
        })
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        refusal.contains("gyre.allow_unsupported") && refusal.contains("--allow-unsupported"),
        "{refusal}"
    );
    assert!(!out.contains("serving client connections"), "{out}");
}

#[test]
fn serve_runs_without_an_access_feature_when_opted_in_and_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let error = "channel.proxy.subscribe_stream (subscribe_stream_proxy_enabled) is configured \
                 but not supported by Gyre yet";
    let serves = |config: String, args: &[&str], env: &[(&str, &str)]| {
        std::fs::write(dir.path().join("config.json"), &config).unwrap();
        let text = serve_until_listening(dir.path(), args, env);
        assert!(
            text.contains("serving client connections"),
            "{args:?} {env:?}: {text}"
        );
        assert_eq!(logged(&text, "ERROR", error), 1, "{args:?} {env:?}: {text}");
        assert!(!text.contains("refusing to run"), "{text}");
    };
    serves(
        config_with_stream_proxy(r#", "gyre": {"allow_unsupported": true}"#),
        &[],
        &[],
    );
    serves(config_with_stream_proxy(""), &["--allow-unsupported"], &[]);
    serves(
        config_with_stream_proxy(""),
        &[],
        &[("CENTRIFUGO_GYRE_ALLOW_UNSUPPORTED", "true")],
    );
}

#[test]
fn serve_only_warns_about_unsupported_features_that_decide_no_access() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("config.json"),
        format!(
            r#"{{"graphite": {{"enabled": true}}, "swagger": {{"enabled": true}},
                "http_server": {{"address": "127.0.0.1", "port": {port}}}}}"#
        ),
    )
    .unwrap();
    let text = serve_until_listening(dir.path(), &[], &[]);
    assert!(text.contains("serving client connections"), "{text}");
    for feature in ["graphite", "swagger"] {
        let line = format!("{feature} is configured but not supported by Gyre yet; ignoring it");
        assert_eq!(logged(&text, "WARN", &line), 1, "{feature}: {text}");
    }
    assert!(!text.lines().any(|l| at_level(l, "ERROR")), "{text}");
}

#[test]
fn checkconfig_strict_fails_on_every_unsupported_feature() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{
            "gyre": {"allow_unsupported": true},
            "channel": {
                "proxy": {"subscribe_stream": {"endpoint": "grpc://127.0.0.1:9"}},
                "namespaces": [
                    {"name": "chat", "subscribe_stream_proxy_enabled": true}
                ]
            },
            "graphite": {"enabled": true},
            "webtransport": {"enabled": true}
        }"#,
    )
    .unwrap();
    // Opted in: the lenient check passes, naming the access features as errors.
    let lenient = gyre(dir.path(), &["checkconfig"], &[]);
    assert!(lenient.status.success(), "{}", describe(&lenient));
    let stderr = String::from_utf8_lossy(&lenient.stderr);
    assert!(
        stderr.contains(
            "error: channel.proxy.subscribe_stream (subscribe_stream_proxy_enabled) is configured"
        ) && stderr.contains("warning: graphite is configured"),
        "{stderr}"
    );

    let strict = gyre(dir.path(), &["checkconfig", "--strict"], &[]);
    assert_eq!(strict.status.code(), Some(1), "{}", describe(&strict));
    let out = stdout(&strict);
    let listed = out
        .lines()
        .find_map(|l| l.strip_prefix("error: features configured but not supported by Gyre: "))
        .unwrap_or_else(|| panic!("{}", describe(&strict)));
    let listed: Vec<&str> = listed.split(", ").collect();
    assert_eq!(
        listed,
        [
            "channel.proxy.subscribe_stream (subscribe_stream_proxy_enabled)",
            "webtransport",
            "graphite",
        ]
    );

    // Without the opt-in even the lenient check fails, as the server would.
    std::fs::write(
        dir.path().join("refused.json"),
        r#"{"channel": {"proxy": {"subscribe_stream": {"endpoint": "grpc://127.0.0.1:9"}},
            "without_namespace": {"subscribe_stream_proxy_enabled": true}}}"#,
    )
    .unwrap();
    let refused = gyre(dir.path(), &["checkconfig", "-c", "refused.json"], &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(
        stdout(&refused).contains("refusing to run: channel.proxy.subscribe_stream"),
        "{}",
        describe(&refused)
    );

    // A feature that decides no access alone fails the strict check too.
    std::fs::write(
        dir.path().join("ops.json"),
        r#"{"opentelemetry": {"enabled": true}}"#,
    )
    .unwrap();
    let ops = gyre(dir.path(), &["checkconfig", "-c", "ops.json"], &[]);
    assert!(ops.status.success(), "{}", describe(&ops));
    let ops = gyre(dir.path(), &["checkconfig", "-c", "ops.json", "-s"], &[]);
    assert_eq!(ops.status.code(), Some(1), "{}", describe(&ops));
    assert!(
        stdout(&ops).contains("not supported by Gyre: opentelemetry"),
        "{}",
        describe(&ops)
    );

    std::fs::write(
        dir.path().join("clean.json"),
        r#"{"client": {"token": {"hmac_secret_key": "x"}}}"#,
    )
    .unwrap();
    let clean = gyre(
        dir.path(),
        &["checkconfig", "-c", "clean.json", "--strict"],
        &[],
    );
    assert!(clean.status.success(), "{}", describe(&clean));
}

#[test]
fn invalid_flag_value_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = gyre(dir.path(), &["-p", "http"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stdout(&out).contains("http_server.port"));
}

#[test]
fn version_names_gyre_and_centrifugo() {
    let dir = tempfile::tempdir().unwrap();
    let out = gyre(dir.path(), &["version"], &[]);
    assert!(out.status.success());
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("Gyre v{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert!(
        lines.next().unwrap().starts_with("Centrifugo v6."),
        "{text}"
    );
}

/// `gyre <args> | head -1`: the reader takes one line and closes the pipe. The config
/// file in the working directory has many namespaces, so that `defaultenv` writes more
/// than a pipe holds and is sure to meet the closed pipe.
fn first_line_then_close(args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let namespaces: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"name": "ns{i}"}}"#))
        .collect();
    std::fs::write(
        dir.path().join("config.json"),
        format!(
            r#"{{"channel": {{"namespaces": [{}]}}}}"#,
            namespaces.join(",")
        ),
    )
    .unwrap();
    let mut child = binary()
        .command(dir.path(), args, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code(), String::from_utf8(first).unwrap(), stderr)
}

#[test]
fn commands_survive_a_closed_pipe() {
    for args in [
        &["defaultenv", "-b", "config.json"][..],
        &["configdoc", "--markdown"],
    ] {
        let (code, first, stderr) = first_line_then_close(args);
        assert!(!first.is_empty(), "{args:?}: nothing written");
        assert_eq!(code, Some(0), "{args:?}: stderr {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn configdoc_lists_every_key_with_default_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let out = gyre(dir.path(), &["configdoc", "-m"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let md = stdout(&out);
    assert!(md.starts_with("# Gyre configuration reference"), "{md}");
    for text in [
        "## `http_server.port`\n\nType: integer. Default: `8000`. Env: `CENTRIFUGO_HTTP_SERVER_PORT`.",
        "`client.allowed_origins`",
        "Env: `CENTRIFUGO_CHANNEL_NAMESPACES_<NAME>_HISTORY_SIZE`",
        "Default: `\"25s\"`",
    ] {
        assert!(md.contains(text), "missing {text:?}");
    }
    // Every variable defaultenv prints has its entry.
    let env = stdout(&gyre(dir.path(), &["defaultenv"], &[]));
    for name in env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, _)| n)
    {
        assert!(md.contains(&format!("`{name}`")), "{name} undocumented");
    }
    let section = stdout(&gyre(dir.path(), &["configdoc", "-m", "-s", "admin"], &[]));
    assert!(section.contains("`admin.password`") && !section.contains("`client."));

    // Without --markdown it serves the page on localhost.
    let port = free_port();
    let mut child = binary()
        .command(dir.path(), &["configdoc", "-p", &port.to_string()], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            use std::io::Write as _;
            s.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        });
        match got {
            Ok(text) => break text,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("configdoc never served: {e}"),
        }
    };
    child.kill().unwrap();
    let _ = child.wait();
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("text/html") && page.contains("<code>client.ping_interval</code>"));
}
