//! The built-in host collectors over a directory laid out like `/proc` and `/sys`, with files
//! captured from the build machine (tests/fixtures/host): exact values, node-exporter's
//! names, labels and units, the mount excludes, and a collector whose files are missing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sightline_scraper::exposition::{Entry, Format, Parser};
use sightline_scraper::host::{Host, HostCollector};

fn fixture() -> PathBuf {
    PathBuf::from("tests/fixtures/host")
}

fn host_at(root: &Path) -> Host {
    Host {
        procfs: root.join("proc"),
        sysfs: root.join("sys"),
        rootfs: root.join("rootfs"),
        udev_data: root.join("udev"),
    }
}

/// `name{labels}` → value, labels sorted as written.
fn render(host: Host) -> BTreeMap<String, f64> {
    let text = HostCollector::new(host).render();
    let mut samples = BTreeMap::new();
    let mut parser = Parser::new(&text, Format::PrometheusText);
    while let Some(entry) = parser.next_entry() {
        if let Entry::Sample(sample) = entry.unwrap() {
            let labels: Vec<String> = sample
                .labels
                .iter()
                .map(|l| format!("{}={:?}", l.name, l.value))
                .collect();
            samples.insert(
                format!("{}{{{}}}", sample.name, labels.join(",")),
                sample.value,
            );
        }
    }
    samples
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples.get(key).unwrap_or_else(|| {
        panic!(
            "no sample {key}; have {:#?}",
            samples.keys().collect::<Vec<_>>()
        )
    })
}

#[test]
fn collectors_read_the_captured_files_exactly() {
    let samples = render(host_at(&fixture()));
    let exact = [
        (r#"node_cpu_seconds_total{cpu="0",mode="idle"}"#, 8381.12),
        (r#"node_cpu_seconds_total{cpu="0",mode="steal"}"#, 5.18),
        ("node_memory_MemTotal_bytes{}", 24_683_792.0 * 1024.0),
        ("node_load1{}", 2.80),
        ("node_load15{}", 1.85),
        (
            r#"node_disk_read_bytes_total{device="vda"}"#,
            47_696_506.0 * 512.0,
        ),
        (r#"node_disk_io_time_seconds_total{device="vda"}"#, 179.628),
        (
            r#"node_disk_reads_completed_total{device="vda"}"#,
            792_947.0,
        ),
        (
            r#"node_network_receive_bytes_total{device="eth0"}"#,
            351_318_478.0,
        ),
        (
            r#"node_network_transmit_bytes_total{device="eth0"}"#,
            422_416.0,
        ),
        ("node_pressure_io_stalled_seconds_total{}", 42.781361),
        ("node_pressure_io_waiting_seconds_total{}", 76.890646),
        ("node_vmstat_pgmajfault{}", 68_711.0),
        ("node_filefd_allocated{}", 811.0),
        ("node_filefd_maximum{}", 2_466_290.0),
        ("node_nf_conntrack_entries_limit{}", 262_144.0),
        (
            r#"node_filesystem_readonly{device="tmpfs",fstype="tmpfs",mountpoint="/srv/ro"}"#,
            1.0,
        ),
        (
            r#"node_filesystem_readonly{device="/dev/vda",fstype="ext4",mountpoint="/"}"#,
            0.0,
        ),
        (
            r#"node_filesystem_device_error{device="/dev/sdb1",fstype="ext4",mountpoint="/srv/missing"}"#,
            1.0,
        ),
        (
            r#"node_filesystem_device_error{device="/dev/vda",fstype="ext4",mountpoint="/"}"#,
            0.0,
        ),
    ];
    for (key, expected) in exact {
        let got = value(&samples, key);
        assert!((got - expected).abs() < 1e-6, "{key}: {got} != {expected}");
    }
    let uname = format!(
        r##"node_uname_info{{domainname="(none)",machine="{}",nodename="vm",release="6.18.44-fc-v1252",sysname="Linux",version="#1 SMP PREEMPT_DYNAMIC @0"}}"##,
        std::env::consts::ARCH
    );
    assert_eq!(value(&samples, &uname), 1.0);
    // Statted under the root filesystem path; a missing mount point has no size.
    assert!(
        value(
            &samples,
            r#"node_filesystem_size_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"}"#
        ) > 0.0
    );
    assert!(!samples.keys().any(
        |k| k.contains(r#"mountpoint="/srv/missing""#) && k.starts_with("node_filesystem_size")
    ));
    // Excluded: the loopback device, the proc mount; partitions of diskstats.
    assert!(!samples.keys().any(|k| k.contains(r#"device="lo""#)));
    assert!(!samples.keys().any(|k| k.contains(r#"mountpoint="/proc""#)));
    // Every collector succeeded.
    let failed: Vec<_> = samples
        .iter()
        .filter(|(k, v)| k.starts_with("node_scrape_collector_success") && **v != 1.0)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn disks_carry_udevs_model_serial_path_and_wwn() {
    let root = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    };
    for dir in ["proc", "sys", "rootfs"] {
        copy(&fixture().join(dir), root.path());
    }
    std::fs::create_dir(root.path().join("udev")).unwrap();
    // As udev writes it for a virtio disk (vda is 254:0 in the captured diskstats).
    std::fs::write(
        root.path().join("udev/b254:0"),
        "S:disk/by-path/pci-0000:00:04.0\nI:2817645\nE:ID_PATH=pci-0000:00:04.0\n\
         E:ID_MODEL=QEMU_HARDDISK\nE:ID_SERIAL_SHORT=QM00001\nE:ID_REVISION=2.5+\n\
         E:ID_WWN=0x5000c500a1b2c3d4\nG:systemd\n",
    )
    .unwrap();
    let samples = render(host_at(root.path()));
    assert_eq!(
        value(
            &samples,
            r#"node_disk_info{device="vda",major="254",minor="0",model="QEMU_HARDDISK",path="pci-0000:00:04.0",revision="2.5+",serial="QM00001",wwn="0x5000c500a1b2c3d4"}"#
        ),
        1.0
    );
}

#[test]
fn a_collector_whose_files_are_missing_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    };
    copy(&fixture(), &dir.path().join("host"));
    let root = dir.path().join("host");
    std::fs::remove_dir_all(root.join("proc/pressure")).unwrap();
    let samples = render(host_at(&root));
    assert_eq!(
        value(
            &samples,
            r#"node_scrape_collector_success{collector="pressure"}"#
        ),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            r#"node_scrape_collector_success{collector="cpu"}"#
        ),
        1.0
    );
    assert!(!samples.keys().any(|k| k.starts_with("node_pressure_")));
    assert!(samples.contains_key("node_memory_MemTotal_bytes{}"));
}
