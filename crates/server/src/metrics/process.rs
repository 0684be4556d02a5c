//! The `process_*` families, named as the Prometheus process collector names them, read
//! from `/proc/self` (Linux; elsewhere nothing is written).

use gyre::metrics::{Exposition, Kind};

/// Linux reports CPU times in `USER_HZ` ticks, 100 per second on every architecture the
/// kernel ABI keeps stable.
const TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc` says about this process.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ProcessStats {
    pub(crate) cpu_seconds: f64,
    pub(crate) start_time_seconds: f64,
    pub(crate) virtual_memory_bytes: f64,
    pub(crate) resident_memory_bytes: f64,
    pub(crate) open_fds: Option<f64>,
    pub(crate) max_fds: Option<f64>,
}

/// Parses `/proc/self/stat`, `/proc/stat`'s `btime` and the page size into stats.
/// The command name (field 2) may hold spaces and parentheses, so fields are counted
/// after its last `)`.
pub(crate) fn parse_stat(stat: &str, boot_time: f64, page_size: f64) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    let utime = field(14)?;
    let stime = field(15)?;
    let start_ticks = field(22)?;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
        start_time_seconds: boot_time + start_ticks / TICKS_PER_SECOND,
        virtual_memory_bytes: field(23)?,
        resident_memory_bytes: field(24)? * page_size,
        open_fds: None,
        max_fds: None,
    })
}

fn boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit on "Max open files" in `/proc/self/limits`.
pub(crate) fn parse_max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(f64::INFINITY);
    }
    soft.parse().ok()
}

/// The page size, from the auxiliary vector (`AT_PAGESZ`): RSS in `/proc/self/stat` is
/// in pages. 4 KiB when the vector cannot be read.
fn page_size() -> f64 {
    // (key, value) pairs of native words; AT_PAGESZ is 6.
    if let Ok(auxv) = std::fs::read("/proc/self/auxv") {
        let word = std::mem::size_of::<usize>();
        for pair in auxv.chunks_exact(word * 2) {
            let (k, v) = pair.split_at(word);
            let k = usize::from_ne_bytes(k.try_into().unwrap_or_default());
            if k == 6 {
                return usize::from_ne_bytes(v.try_into().unwrap_or_default()) as f64;
            }
        }
    }
    4096.0
}

fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot = boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let mut stats = parse_stat(&stat, boot, page_size())?;
    stats.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    stats.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| parse_max_fds(&l));
    Some(stats)
}

/// Writes the process families (no namespace, as the Go collector).
pub(crate) fn write(out: &mut String) {
    let Some(s) = read() else { return };
    let mut e = Exposition::new(out, "");
    e.family(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        Kind::Counter,
    )
    .value(&[], s.cpu_seconds);
    if let Some(max) = s.max_fds {
        e.family(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            Kind::Gauge,
        )
        .value(
            &[],
            if max.is_infinite() {
                "+Inf".to_owned()
            } else {
                max.to_string()
            },
        );
    }
    if let Some(open) = s.open_fds {
        e.family(
            "process_open_fds",
            "Number of open file descriptors.",
            Kind::Gauge,
        )
        .value(&[], open);
    }
    e.family(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        Kind::Gauge,
    )
    .value(&[], s.resident_memory_bytes);
    e.family(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        Kind::Gauge,
    )
    .value(&[], s.start_time_seconds);
    e.family(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        Kind::Gauge,
    )
    .value(&[], s.virtual_memory_bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis must not shift the fields.
        let stat = "4242 (gy re) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 \
                    8 0 12345 104857600 2560 18446744073709551615";
        let s = parse_stat(stat, 1_700_000_000.0, 4096.0).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.start_time_seconds, 1_700_000_123.45);
        assert_eq!(s.virtual_memory_bytes, 104_857_600.0);
        assert_eq!(s.resident_memory_bytes, 2560.0 * 4096.0);
        assert!(parse_stat("garbage", 0.0, 4096.0).is_none());
    }

    #[test]
    fn max_fds_is_the_soft_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024.0));
        assert_eq!(
            parse_max_fds("Max open files unlimited unlimited files"),
            Some(f64::INFINITY)
        );
        assert_eq!(parse_max_fds(""), None);
    }

    #[test]
    fn this_process_reports_itself() {
        let mut out = String::new();
        write(&mut out);
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                out.contains(&format!("# TYPE {name} ")),
                "{name} missing:\n{out}"
            );
        }
        let rss: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(rss > 0.0);
    }
}
