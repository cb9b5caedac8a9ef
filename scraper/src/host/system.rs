//! The small kernel collectors of node-exporter: loadavg, stat (boot time, context switches,
//! forks, interrupts, processes), uname, time, filefd, pressure, vmstat and conntrack.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Host;
use super::text::{Exposition, Kind};

/// `node_load1`, `node_load5`, `node_load15` from `/proc/loadavg`.
pub(super) fn loadavg(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let text = host.read_proc("loadavg")?;
    let loads: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect();
    for (name, value) in ["node_load1", "node_load5", "node_load15"]
        .iter()
        .zip(loads)
    {
        out.single(name, "Load average.", Kind::Gauge, &[], value);
    }
    Ok(())
}

/// Boot time, context switches, forks, interrupts and process counts from `/proc/stat`.
pub(super) fn stat(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let text = host.read_proc("stat")?;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value)) = (fields.next(), fields.next().and_then(|v| v.parse().ok()))
        else {
            continue;
        };
        let (name, help, kind) = match key {
            "btime" => (
                "node_boot_time_seconds",
                "Node boot time, in unixtime.",
                Kind::Gauge,
            ),
            "ctxt" => (
                "node_context_switches_total",
                "Total number of context switches.",
                Kind::Counter,
            ),
            "processes" => ("node_forks_total", "Total number of forks.", Kind::Counter),
            "intr" => (
                "node_intr_total",
                "Total number of interrupts serviced.",
                Kind::Counter,
            ),
            "procs_running" => (
                "node_procs_running",
                "Number of processes in runnable state.",
                Kind::Gauge,
            ),
            "procs_blocked" => (
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
                Kind::Gauge,
            ),
            _ => continue,
        };
        out.single(name, help, kind, &[], value);
    }
    Ok(())
}

/// `node_uname_info`, from `/proc/sys/kernel`.
pub(super) fn uname(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let field = |name: &str| -> std::io::Result<String> {
        Ok(host
            .read_proc(&format!("sys/kernel/{name}"))?
            .trim_end()
            .to_owned())
    };
    let (sysname, release, version) = (field("ostype")?, field("osrelease")?, field("version")?);
    let (nodename, domainname) = (field("hostname")?, field("domainname")?);
    out.single(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        Kind::Gauge,
        &[
            ("domainname", &domainname),
            ("machine", std::env::consts::ARCH),
            ("nodename", &nodename),
            ("release", &release),
            ("sysname", &sysname),
            ("version", &version),
        ],
        1.0,
    );
    Ok(())
}

/// `node_time_seconds`, `node_time_zone_offset_seconds` and the clock sources of
/// `/sys/devices/system/clocksource`.
pub(super) fn time(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    out.single(
        "node_time_seconds",
        "System time in seconds since epoch (1970).",
        Kind::Gauge,
        &[],
        now,
    );
    let zone =
        chrono::DateTime::<chrono::Utc>::from(SystemTime::now()).with_timezone(&time_zone(host));
    out.single(
        "node_time_zone_offset_seconds",
        "System time zone offset in seconds.",
        Kind::Gauge,
        &[("time_zone", &zone.format("%Z").to_string())],
        f64::from(chrono::Offset::fix(zone.offset()).local_minus_utc()),
    );
    let base = "devices/system/clocksource/clocksource0";
    if let Ok(available) = host.read_sys(&format!("{base}/available_clocksource")) {
        out.family(
            "node_time_clocksource_available_info",
            "Available clocksources read from '/sys/devices/system/clocksource'.",
            Kind::Gauge,
        );
        for source in available.split_whitespace() {
            out.sample(
                "node_time_clocksource_available_info",
                &[("clocksource", source), ("device", "0")],
                1.0,
            );
        }
    }
    if let Ok(current) = host.read_sys(&format!("{base}/current_clocksource")) {
        out.single(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
            Kind::Gauge,
            &[("clocksource", current.trim()), ("device", "0")],
            1.0,
        );
    }
    Ok(())
}

/// The host's time zone, as Go's `time.Local` finds it: `$TZ`, else the zone
/// `/etc/localtime` links to (or `/etc/timezone` names) under the root filesystem, else UTC.
fn time_zone(host: &Host) -> chrono_tz::Tz {
    let from_env = std::env::var("TZ")
        .ok()
        .map(|tz| tz.trim_start_matches(':').to_owned());
    let from_link = || {
        let target = std::fs::read_link(host.rootfs.join("etc/localtime")).ok()?;
        let target = target.to_string_lossy();
        Some(target.split_once("zoneinfo/")?.1.to_owned())
    };
    let from_file = || {
        std::fs::read_to_string(host.rootfs.join("etc/timezone"))
            .ok()
            .map(|name| name.trim().to_owned())
    };
    from_env
        .filter(|name| !name.is_empty())
        .or_else(from_link)
        .or_else(from_file)
        .and_then(|name| name.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// `node_filefd_allocated` and `node_filefd_maximum` from `/proc/sys/fs/file-nr`.
pub(super) fn filefd(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let text = host.read_proc("sys/fs/file-nr")?;
    let values: Vec<f64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    if let (Some(allocated), Some(maximum)) = (values.first(), values.get(2)) {
        out.single(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            Kind::Gauge,
            &[],
            *allocated,
        );
        out.single(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            Kind::Gauge,
            &[],
            *maximum,
        );
    }
    Ok(())
}

/// Pressure stall information from `/proc/pressure`: `some` is waiting, `full` stalled.
pub(super) fn pressure(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    for resource in ["cpu", "io", "memory"] {
        let text = host.read_proc(&format!("pressure/{resource}"))?;
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let kind = match (resource, fields.next()) {
                (_, Some("some")) => "waiting",
                ("cpu", Some("full")) => continue,
                (_, Some("full")) => "stalled",
                _ => continue,
            };
            let Some(total) = fields
                .find_map(|field| field.strip_prefix("total="))
                .and_then(|v| v.parse::<f64>().ok())
            else {
                continue;
            };
            let name = format!("node_pressure_{resource}_{kind}_seconds_total");
            out.single(
                &name,
                &format!("Total time in seconds that processes have {kind} for {resource}."),
                Kind::Counter,
                &[],
                total / 1e6,
            );
        }
    }
    Ok(())
}

/// The `/proc/vmstat` fields node-exporter keeps by default (`oom_kill`, `pgpg*`, `pswp*`,
/// `pg*fault`).
pub(super) fn vmstat(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let text = host.read_proc("vmstat")?;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        let kept = key.starts_with("oom_kill")
            || key.starts_with("pgpg")
            || key.starts_with("pswp")
            || (key.starts_with("pg") && key.contains("fault"));
        if let (true, Ok(value)) = (kept, value.trim().parse::<f64>()) {
            let name = format!("node_vmstat_{key}");
            out.single(
                &name,
                &format!("/proc/vmstat information field {key}."),
                Kind::Untyped,
                &[],
                value,
            );
        }
    }
    Ok(())
}

/// Connection tracking: entries, limit, and the per-CPU statistics of
/// `/proc/net/stat/nf_conntrack` summed.
pub(super) fn conntrack(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let read = |name: &str| -> std::io::Result<f64> {
        host.read_proc(&format!("sys/net/netfilter/{name}"))?
            .trim()
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    };
    out.single(
        "node_nf_conntrack_entries",
        "Number of currently allocated flow entries for connection tracking.",
        Kind::Gauge,
        &[],
        read("nf_conntrack_count")?,
    );
    out.single(
        "node_nf_conntrack_entries_limit",
        "Maximum size of connection tracking table.",
        Kind::Gauge,
        &[],
        read("nf_conntrack_max")?,
    );
    let Ok(stat) = host.read_proc("net/stat/nf_conntrack") else {
        return Ok(());
    };
    let mut lines = stat.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let mut sums = vec![0.0; header.len()];
    for line in lines {
        for (sum, field) in sums.iter_mut().zip(line.split_whitespace()) {
            *sum += u64::from_str_radix(field, 16).unwrap_or(0) as f64;
        }
    }
    for field in [
        "found",
        "invalid",
        "ignore",
        "insert",
        "insert_failed",
        "drop",
        "early_drop",
        "search_restart",
    ] {
        if let Some(index) = header.iter().position(|h| *h == field) {
            let name = format!("node_nf_conntrack_stat_{field}");
            out.single(
                &name,
                &format!("Conntrack statistic {field}, summed over CPUs."),
                Kind::Gauge,
                &[],
                sums[index],
            );
        }
    }
    Ok(())
}
