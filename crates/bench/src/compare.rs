//! `compare`: the same scenario against servers A and B, alternating A B A B …, with
//! medians and the ratio B/A.

use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::{CompareArgs, parse, run_scenario};
use crate::stats::{commas, median};

/// Metrics compared, as JSON pointers into a scenario's result line, with a label.
const METRICS: &[(&str, &str)] = &[
    ("/sub_msgs_per_sec", "sub msgs/s"),
    ("/sub_mb_per_sec", "sub MB/s"),
    ("/pub_msgs_per_sec", "pub msgs/s"),
    ("/latency_us/p50", "latency p50 µs"),
    ("/latency_us/p99", "latency p99 µs"),
    ("/latency_us/p99_9", "latency p99.9 µs"),
    ("/publish_call_us/p50", "publish call p50 µs"),
    ("/publish_call_us/p99", "publish call p99 µs"),
    ("/lost", "lost"),
    ("/server_cpu_ns_per_delivery", "server CPU ns/deliv"),
    ("/server_cpu_util", "server CPU util"),
    ("/client_cpu_ns_per_delivery", "tool CPU ns/deliv"),
    ("/connects_per_sec", "connects/s"),
    ("/server_cpu_us_per_connect", "server CPU µs/conn"),
    ("/bytes_per_conn", "bytes/conn"),
];

struct Side {
    name: String,
    cmd: Option<String>,
    addr: String,
    /// `{KEY}` → VALUE, applied before the address placeholders.
    vars: Vec<(String, String)>,
}

impl Side {
    fn substitute(&self, s: &str, pid: Option<u32>) -> String {
        substitute(&apply_vars(s, &self.vars), &self.addr, pid)
    }
}

/// Parses `KEY=VALUE` pairs of --a-var / --b-var.
pub fn parse_vars(specs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    specs
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => bail!("expected KEY=VALUE, got {spec:?}"),
        })
        .collect()
}

/// Replaces each `{KEY}` with its VALUE.
pub fn apply_vars(s: &str, vars: &[(String, String)]) -> String {
    vars.iter().fold(s.to_owned(), |out, (key, value)| {
        out.replace(&format!("{{{key}}}"), value)
    })
}

/// `host:port` from `host:port` or `scheme://host:port/...`.
pub fn addr_of(s: &str) -> String {
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// Replaces `{addr}`, `{host}`, `{port}` and `{pid}`.
pub fn substitute(s: &str, addr: &str, pid: Option<u32>) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, ""));
    let mut out = s
        .replace("{addr}", addr)
        .replace("{host}", host)
        .replace("{port}", port);
    if let Some(pid) = pid {
        out = out.replace("{pid}", &pid.to_string());
    }
    out
}

/// Pins this process (all threads) to `cpus` with `taskset`. Call before the runtime
/// starts its threads.
pub fn pin_self(cpus: &str) -> anyhow::Result<()> {
    let status = Proc::new("taskset")
        .args(["-a", "-cp", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset")?;
    if !status.success() {
        bail!("taskset -a -cp {cpus} failed");
    }
    Ok(())
}

fn start_server(cmd: &str, server_cpu: Option<&str>) -> anyhow::Result<Child> {
    let mut proc = match server_cpu {
        Some(cpu) => {
            let mut p = Proc::new("taskset");
            p.args(["-c", cpu, "sh", "-c", &format!("exec {cmd}")]);
            p
        }
        None => {
            let mut p = Proc::new("sh");
            p.args(["-c", &format!("exec {cmd}")]);
            p
        }
    };
    proc.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {cmd}"))
}

async fn wait_listening(addr: &str, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("server exited before listening on {addr}: {status}");
        }
        if Instant::now() > deadline {
            bail!("server not listening on {addr} after 15 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stop_server(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn summary(v: &Value) -> String {
    METRICS
        .iter()
        .filter_map(|(ptr, label)| {
            v.pointer(ptr)
                .and_then(Value::as_f64)
                .map(|x| format!("{label} {}", fmt(x)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt(x: f64) -> String {
    if x.abs() >= 1000.0 {
        commas(x)
    } else {
        format!("{x:.1}")
    }
}

/// Runs the comparison; prints each run, the medians and the ratio, and returns the
/// JSON result.
pub async fn compare(args: &CompareArgs) -> anyhow::Result<Value> {
    let sides = [
        Side {
            name: args.a_name.clone(),
            cmd: args.a.clone(),
            addr: args
                .a_addr
                .as_deref()
                .map_or_else(|| "127.0.0.1:18001".to_owned(), addr_of),
            vars: parse_vars(&args.a_vars)?,
        },
        Side {
            name: args.b_name.clone(),
            cmd: args.b.clone(),
            addr: args
                .b_addr
                .as_deref()
                .map_or_else(|| "127.0.0.1:18002".to_owned(), addr_of),
            vars: parse_vars(&args.b_vars)?,
        },
    ];
    // Validate the scenario for both sides before starting anything.
    for side in &sides {
        let probe: Vec<String> = args
            .scenario
            .iter()
            .map(|s| side.substitute(s, Some(0)))
            .collect();
        parse(&probe).with_context(|| format!("scenario arguments for {}", side.name))?;
    }

    let mut results: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
    for run in 1..=args.runs {
        for (i, side) in sides.iter().enumerate() {
            let child = match &side.cmd {
                Some(cmd) => {
                    let mut child =
                        start_server(&side.substitute(cmd, None), args.server_cpu.as_deref())?;
                    if let Err(e) = wait_listening(&side.addr, &mut child).await {
                        stop_server(child);
                        return Err(e);
                    }
                    Some(child)
                }
                None => None,
            };
            let pid = child.as_ref().map(Child::id);
            let scenario: Vec<String> = args
                .scenario
                .iter()
                .map(|s| side.substitute(s, pid))
                .collect();
            let outcome = async { run_scenario(&parse(&scenario)?.command, true).await }.await;
            if let Some(c) = child {
                stop_server(c);
            }
            let outcome = outcome.with_context(|| format!("run {run} against {}", side.name))?;
            println!("run {run} {}: {}", side.name, summary(&outcome.json));
            results[i].push(outcome.json);
            // Let the kernel settle sockets between runs.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    let mut medians = [serde_json::Map::new(), serde_json::Map::new()];
    let mut ratios = serde_json::Map::new();
    println!();
    println!(
        "{:<20} {:>16} {:>16} {:>9}",
        "median", sides[0].name, sides[1].name, "B/A"
    );
    for (ptr, label) in METRICS {
        let vals: Vec<Vec<f64>> = results
            .iter()
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| r.pointer(ptr).and_then(Value::as_f64))
                    .collect()
            })
            .collect();
        let (Some(a), Some(b)) = (median(&vals[0]), median(&vals[1])) else {
            continue;
        };
        let key = ptr.trim_start_matches('/').replace('/', ".");
        medians[0].insert(key.clone(), json!(a));
        medians[1].insert(key.clone(), json!(b));
        let ratio = if a != 0.0 { Some(b / a) } else { None };
        if let Some(r) = ratio {
            ratios.insert(key, json!((r * 1000.0).round() / 1000.0));
        }
        println!(
            "{:<20} {:>16} {:>16} {:>9}",
            label,
            fmt(a),
            fmt(b),
            ratio.map_or("-".to_owned(), |r| format!("{r:.3}"))
        );
    }
    let [ma, mb] = medians;
    let [ra, rb] = results;
    Ok(json!({
        "scenario": "compare",
        "inner": args.scenario.first(),
        "args": args.scenario,
        "runs": args.runs,
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "a": {"name": sides[0].name, "cmd": sides[0].cmd, "addr": sides[0].addr, "vars": args.a_vars, "median": ma, "results": ra},
        "b": {"name": sides[1].name, "cmd": sides[1].cmd, "addr": sides[1].addr, "vars": args.b_vars, "median": mb, "results": rb},
        "ratio_b_over_a": ratios,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_addresses() {
        assert_eq!(addr_of("http://127.0.0.1:8000/api"), "127.0.0.1:8000");
        assert_eq!(addr_of("127.0.0.1:9"), "127.0.0.1:9");
        assert_eq!(
            substitute(
                "ws://{addr}/x --port {port} --pid {pid} {host}",
                "127.0.0.1:7",
                Some(42)
            ),
            "ws://127.0.0.1:7/x --port 7 --pid 42 127.0.0.1"
        );
        assert_eq!(substitute("{pid}", "h:1", None), "{pid}");
    }

    #[test]
    fn side_variables_come_before_the_address() {
        let vars = parse_vars(&["api=grpc://{host}:10000".into(), "token=".into()]).unwrap();
        let side = Side {
            name: "grpc".into(),
            cmd: None,
            addr: "127.0.0.1:7".into(),
            vars,
        };
        assert_eq!(
            side.substitute("--api={api}", None),
            "--api=grpc://127.0.0.1:10000"
        );
        assert_eq!(side.substitute("{token}", None), "");
        assert_eq!(side.substitute("{other}", None), "{other}");
        assert!(parse_vars(&["novalue".into()]).is_err());
        assert!(parse_vars(&["=x".into()]).is_err());
    }
}
