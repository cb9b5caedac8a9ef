//! `node_cpu_seconds_total` and `node_cpu_guest_seconds_total` from `/proc/stat`, as
//! node-exporter's cpu collector.

use super::text::{Exposition, Kind};
use super::{Host, USER_HZ};

/// The modes of a `cpuN` line, in order.
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

pub(super) fn collect(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let stat = host.read_proc("stat")?;
    let cpus: Vec<(&str, Vec<f64>)> = stat
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let cpu = fields.next()?.strip_prefix("cpu")?;
            (!cpu.is_empty()).then(|| {
                let values = fields
                    .filter_map(|f| f.parse::<f64>().ok())
                    .map(|v| v / USER_HZ);
                (cpu, values.collect())
            })
        })
        .collect();
    out.family(
        "node_cpu_seconds_total",
        "Seconds the CPUs spent in each mode.",
        Kind::Counter,
    );
    for (cpu, values) in &cpus {
        for (mode, value) in MODES.iter().zip(values) {
            out.sample(
                "node_cpu_seconds_total",
                &[("cpu", cpu), ("mode", mode)],
                *value,
            );
        }
    }
    out.family(
        "node_cpu_guest_seconds_total",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
        Kind::Counter,
    );
    for (cpu, values) in &cpus {
        for (mode, index) in [("user", 8), ("nice", 9)] {
            if let Some(value) = values.get(index) {
                out.sample(
                    "node_cpu_guest_seconds_total",
                    &[("cpu", cpu), ("mode", mode)],
                    *value,
                );
            }
        }
    }
    Ok(())
}
