//! `node_disk_*` from `/proc/diskstats`, as node-exporter's diskstats collector with its
//! default device exclude (partitions, ram, loop and floppy devices).

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::Host;
use super::text::{Exposition, Kind};

/// node-exporter 1.5's `--collector.diskstats.device-exclude` default.
static EXCLUDED: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$").ok());

/// Bytes per sector in `/proc/diskstats`.
const SECTOR: f64 = 512.0;

/// The metric, its help, its kind, the diskstats field (after major, minor, name) and the
/// factor turning the field into the metric's unit.
const FIELDS: [(&str, &str, Kind, usize, f64); 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        Kind::Counter,
        0,
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        Kind::Counter,
        1,
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        Kind::Counter,
        2,
        SECTOR,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        Kind::Counter,
        3,
        0.001,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        Kind::Counter,
        4,
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        Kind::Counter,
        5,
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        Kind::Counter,
        6,
        SECTOR,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        Kind::Counter,
        7,
        0.001,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        Kind::Gauge,
        8,
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        Kind::Counter,
        9,
        0.001,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted number of seconds spent doing I/Os.",
        Kind::Counter,
        10,
        0.001,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        Kind::Counter,
        11,
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        Kind::Counter,
        12,
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        Kind::Counter,
        13,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        Kind::Counter,
        14,
        0.001,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully.",
        Kind::Counter,
        15,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        Kind::Counter,
        16,
        0.001,
    ),
];

/// The `E:` properties udev recorded for block device `major:minor` (its database file
/// `b<major>:<minor>`); none when udev is absent (containers, this build machine), as in
/// node-exporter, whose labels are then empty.
fn udev_properties(host: &Host, major: &str, minor: &str) -> HashMap<String, String> {
    let path = host.udev_data.join(format!("b{major}:{minor}"));
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|line| line.strip_prefix("E:")?.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

pub(super) fn collect(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let text = host.read_proc("diskstats")?;
    let disks: Vec<(&str, &str, &str, Vec<f64>)> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (major, minor, device) = (fields.next()?, fields.next()?, fields.next()?);
            let excluded = EXCLUDED.as_ref().is_some_and(|re| re.is_match(device));
            let values = fields.filter_map(|v| v.parse().ok()).collect();
            (!excluded).then_some((major, minor, device, values))
        })
        .collect();
    out.family(
        "node_disk_info",
        "Info of /sys/block/<block_device>.",
        Kind::Gauge,
    );
    for (major, minor, device, _) in &disks {
        let udev = udev_properties(host, major, minor);
        let property = |key: &str| udev.get(key).map_or("", String::as_str);
        let labels = [
            ("device", *device),
            ("major", *major),
            ("minor", *minor),
            ("model", property("ID_MODEL")),
            ("path", property("ID_PATH")),
            ("revision", property("ID_REVISION")),
            ("serial", property("ID_SERIAL_SHORT")),
            ("wwn", property("ID_WWN")),
        ];
        out.sample("node_disk_info", &labels, 1.0);
    }
    for (name, help, kind, field, factor) in FIELDS {
        out.family(name, help, kind);
        for (_, _, device, values) in &disks {
            if let Some(value) = values.get(field) {
                out.sample(name, &[("device", device)], value * factor);
            }
        }
    }
    Ok(())
}
