//! `node_filesystem_*` for the mounts of `/proc/1/mounts`, with statvfs on each mount point
//! under the root filesystem path, as node-exporter's filesystem collector with the Debian
//! package's default excludes.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::Host;
use super::text::{Exposition, Kind};

/// Debian's node-exporter 1.5 `--collector.filesystem.mount-points-exclude` default.
static EXCLUDED_MOUNT_POINTS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
    )
    .ok()
});

/// node-exporter 1.5's `--collector.filesystem.fs-types-exclude` default.
static EXCLUDED_TYPES: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|\
         iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|\
         squashfs|sysfs|tracefs)$",
    )
    .ok()
});

/// One mount to report.
struct Mount {
    device: String,
    mount_point: String,
    fs_type: String,
    read_only: bool,
}

/// The families, with their help, in the order they are written.
const FAMILIES: [(&str, &str); 7] = [
    ("node_filesystem_size_bytes", "Filesystem size in bytes."),
    (
        "node_filesystem_free_bytes",
        "Filesystem free space in bytes.",
    ),
    (
        "node_filesystem_avail_bytes",
        "Filesystem space available to non-root users in bytes.",
    ),
    ("node_filesystem_files", "Filesystem total file nodes."),
    (
        "node_filesystem_files_free",
        "Filesystem total free file nodes.",
    ),
    ("node_filesystem_readonly", "Filesystem read-only status."),
    (
        "node_filesystem_device_error",
        "Whether an error occurred while getting statistics for the given device.",
    ),
];

pub(super) fn collect(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let mounts = mounts(&host.read_proc("1/mounts")?);
    let stats: Vec<(Mount, Option<[f64; 5]>)> = mounts
        .into_iter()
        .map(|mount| {
            let path = host.rootfs_path(&mount.mount_point);
            let stat = rustix::fs::statvfs(&path).ok().map(|s| {
                let block = s.f_bsize as f64;
                [
                    s.f_blocks as f64 * block,
                    s.f_bfree as f64 * block,
                    s.f_bavail as f64 * block,
                    s.f_files as f64,
                    s.f_ffree as f64,
                ]
            });
            (mount, stat)
        })
        .collect();
    for (index, (name, help)) in FAMILIES.iter().enumerate() {
        out.family(name, help, Kind::Gauge);
        for (mount, stat) in &stats {
            let labels = [
                ("device", mount.device.as_str()),
                ("fstype", mount.fs_type.as_str()),
                ("mountpoint", mount.mount_point.as_str()),
            ];
            let value = match (index, stat) {
                (0..=4, Some(values)) => values[index],
                (0..=4, None) => continue,
                (5, _) => f64::from(u8::from(mount.read_only)),
                _ => f64::from(u8::from(stat.is_none())),
            };
            out.sample(name, &labels, value);
        }
    }
    Ok(())
}

/// The mounts to report: not excluded, each (device, mount point) once.
fn mounts(text: &str) -> Vec<Mount> {
    let excluded =
        |re: &LazyLock<Option<Regex>>, text: &str| re.as_ref().is_some_and(|re| re.is_match(text));
    let mut seen = BTreeSet::new();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, mount_point, fs_type, options) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            let mount_point = unescape_octal(mount_point);
            if excluded(&EXCLUDED_MOUNT_POINTS, &mount_point) || excluded(&EXCLUDED_TYPES, fs_type)
            {
                return None;
            }
            seen.insert((device.to_owned(), mount_point.clone()))
                .then(|| Mount {
                    device: device.to_owned(),
                    mount_point,
                    fs_type: fs_type.to_owned(),
                    read_only: options.split(',').any(|option| option == "ro"),
                })
        })
        .collect()
}

/// `/proc/mounts` writes spaces, tabs and backslashes in paths as `\040`-style octal.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|digits| {
                std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| u8::from_str_radix(d, 8).ok())
            });
        if let Some(byte) = octal {
            out.push(byte);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
