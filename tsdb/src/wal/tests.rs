//! Writer and reader together: round trips, damage, reopening.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::segment::{HEADER_LEN, list_segments};
use super::*;
use crate::Error;

fn series(i: u64) -> Record {
    Record::Series(vec![RefSeries {
        series_ref: i,
        labels: vec![
            ("__name__".into(), format!("metric_{i}")),
            ("job".into(), "node".into()),
        ],
    }])
}

fn samples(i: u64) -> Record {
    Record::Samples(
        (0..8)
            .map(|j| RefSample {
                series_ref: i * 10 + j,
                timestamp: 1_700_000_000_000 + i as i64 * 15_000,
                value: i as f64 + j as f64 / 8.0,
            })
            .collect(),
    )
}

/// Alternating series and samples records, numbered from `from`.
fn records(from: u64, n: u64) -> Vec<Record> {
    (from..from + n)
        .map(|i| if i % 2 == 0 { series(i) } else { samples(i) })
        .collect()
}

fn options(segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        sync: SyncPolicy::EveryBatch,
    }
}

fn write(dir: &Path, opts: WalOptions, records: &[Record]) -> WalWriter {
    let mut w = WalWriter::open(dir, opts).unwrap();
    for r in records {
        w.append(r).unwrap();
    }
    w
}

fn replay(dir: &Path) -> (Vec<Record>, ReplayReport) {
    let mut reader = WalReader::open(dir).unwrap();
    let records = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    (records, reader.report().clone())
}

fn seg(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:08}"))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// A frame built independently of the writer, following FORMAT.md.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut crc_input = vec![kind];
    crc_input.extend_from_slice(payload);
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32c::crc32c(&crc_input).to_le_bytes());
    out.extend_from_slice(&crc_input);
    out
}

/// Offsets of the frames in a segment file.
fn frame_offsets(path: &Path) -> Vec<u64> {
    let bytes = fs::read(path).unwrap();
    let mut offsets = Vec::new();
    let mut at = HEADER_LEN as usize;
    while at < bytes.len() {
        offsets.push(at as u64);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 9 + len;
    }
    offsets
}

#[test]
fn round_trip_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let all = records(0, 60);
    let w = write(dir.path(), options(256), &all);
    let segments = list_segments(dir.path()).unwrap();
    assert!(segments.len() > 10, "{segments:?}");
    assert_eq!(segments, (0..=w.segment()).collect::<Vec<_>>());
    for &s in &segments[..segments.len() - 1] {
        let offsets = frame_offsets(&seg(dir.path(), s));
        assert!(file_len(&seg(dir.path(), s)) <= 256 || offsets.len() == 1);
    }
    drop(w);

    let (got, report) = replay(dir.path());
    assert_eq!(got, all);
    assert_eq!(
        report,
        ReplayReport {
            segments: segments.len(),
            records: 60,
            ..ReplayReport::default()
        }
    );
}

#[test]
fn record_larger_than_a_segment_gets_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let all = records(0, 5);
    let w = write(dir.path(), options(1), &all);
    assert_eq!(w.segment(), 4);
    assert_eq!(replay(dir.path()).0, all);
}

#[test]
fn empty_and_missing_directories_replay_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for path in [dir.path().to_path_buf(), dir.path().join("absent")] {
        let (got, report) = replay(&path);
        assert!(got.is_empty());
        assert_eq!(report, ReplayReport::default());
    }
    // A writer that wrote nothing leaves an empty (header-only) segment.
    drop(WalWriter::open(dir.path().join("wal"), options(256)).unwrap());
    let (got, report) = replay(&dir.path().join("wal"));
    assert!(got.is_empty());
    assert_eq!(report.segments, 1);
    assert!(report.corruptions.is_empty());
}

/// Writes 10 records to one segment; returns the segment path and the offset where the
/// last record starts.
fn ten_records(dir: &Path) -> (PathBuf, u64) {
    let all = records(0, 10);
    let mut w = write(dir, options(1 << 20), &all[..9]);
    let good = file_len(&seg(dir, 0));
    w.append(&all[9]).unwrap();
    (seg(dir, 0), good)
}

#[test]
fn torn_tail_is_truncated_at_the_last_good_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, good) = ten_records(dir.path());
    let full = file_len(&path);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(full - 3)
        .unwrap();

    let (got, report) = replay(dir.path());
    assert_eq!(got, records(0, 9));
    assert_eq!(
        report.corruptions,
        [Corruption {
            segment: 0,
            offset: good,
            dropped_bytes: full - 3 - good,
            kind: CorruptionKind::Truncated,
            truncated: true,
        }]
    );
    assert_eq!(report.dropped_bytes(), full - 3 - good);
    assert_eq!(file_len(&path), good);

    // Repaired: the next replay is clean.
    let (got, report) = replay(dir.path());
    assert_eq!(got, records(0, 9));
    assert!(report.corruptions.is_empty());
}

#[test]
fn torn_frame_header_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (path, good) = ten_records(dir.path());
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(good + 4)
        .unwrap();
    let (got, report) = replay(dir.path());
    assert_eq!(got, records(0, 9));
    assert_eq!(report.corruptions[0].kind, CorruptionKind::Truncated);
    assert_eq!(file_len(&path), good);
}

#[test]
fn flipped_byte_in_the_tail_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (path, good) = ten_records(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let middle = (good as usize + bytes.len()) / 2;
    bytes[middle] ^= 0x10;
    fs::write(&path, &bytes).unwrap();

    let (got, report) = replay(dir.path());
    assert_eq!(got, records(0, 9));
    assert_eq!(report.corruptions.len(), 1);
    assert_eq!(report.corruptions[0].kind, CorruptionKind::BadChecksum);
    assert_eq!(report.corruptions[0].offset, good);
    assert_eq!(file_len(&path), good);
}

#[test]
fn garbage_after_the_last_record_is_truncated() {
    for (garbage, kind) in [
        (vec![0xab; 100], CorruptionKind::Truncated),
        // A zero-filled tail, as some file systems leave after a crash.
        (vec![0; 4096], CorruptionKind::BadChecksum),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = ten_records(dir.path());
        let full = file_len(&path);
        append_bytes(&path, &garbage);

        let (got, report) = replay(dir.path());
        assert_eq!(got, records(0, 10));
        assert_eq!(report.corruptions.len(), 1);
        assert_eq!(report.corruptions[0].kind, kind);
        assert_eq!(report.dropped_bytes(), garbage.len() as u64);
        assert_eq!(file_len(&path), full);
    }
}

#[test]
fn reopening_after_a_torn_tail_continues_in_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (path, good) = ten_records(dir.path());
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(good + 20)
        .unwrap();
    assert_eq!(replay(dir.path()).0, records(0, 9));

    let w = write(dir.path(), options(1 << 20), &records(100, 5));
    assert_eq!(w.segment(), 1);
    drop(w);
    let (got, report) = replay(dir.path());
    assert_eq!(got, [records(0, 9), records(100, 5)].concat());
    assert_eq!(report.segments, 2);
    assert!(report.corruptions.is_empty());
}

#[test]
fn reopening_without_replay_never_hides_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let (path, good) = ten_records(dir.path());
    let full = file_len(&path);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(good + 20)
        .unwrap();
    drop(write(dir.path(), options(1 << 20), &records(100, 5)));

    // The torn segment is no longer the last: skipped past, and left as it is.
    let (got, report) = replay(dir.path());
    assert_eq!(got, [records(0, 9), records(100, 5)].concat());
    assert_eq!(report.corruptions.len(), 1);
    assert!(!report.corruptions[0].truncated);
    assert_eq!(file_len(&path), good + 20);
    assert!(full > good + 20);
}

#[test]
fn damage_in_an_earlier_segment_skips_only_the_rest_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let all = records(0, 30);
    drop(write(dir.path(), options(512), &all));
    let path = seg(dir.path(), 0);
    let offsets = frame_offsets(&path);
    assert!(offsets.len() >= 3, "{offsets:?}");
    let mut bytes = fs::read(&path).unwrap();
    bytes[offsets[1] as usize + 12] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    let (got, report) = replay(dir.path());
    let expected = [&all[..1], &all[offsets.len()..]].concat();
    assert_eq!(got, expected);
    assert_eq!(
        report.corruptions,
        [Corruption {
            segment: 0,
            offset: offsets[1],
            dropped_bytes: bytes.len() as u64 - offsets[1],
            kind: CorruptionKind::BadChecksum,
            truncated: false,
        }]
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "earlier segments are never modified"
    );
}

#[test]
fn missing_segment_is_counted_and_the_rest_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let all = records(0, 3);
    drop(write(dir.path(), options(1), &all));
    fs::remove_file(seg(dir.path(), 1)).unwrap();
    let (got, report) = replay(dir.path());
    assert_eq!(got, [all[0].clone(), all[2].clone()]);
    assert_eq!(report.missing_segments, 1);
    assert_eq!(report.segments, 2);
}

#[test]
fn damaged_segment_header_in_the_last_segment_is_truncated() {
    for (contents, kind) in [
        (&b"SLW"[..], CorruptionKind::Truncated),
        (&b"XXXX\x01\x00\x00"[..], CorruptionKind::BadMagic),
    ] {
        let dir = tempfile::tempdir().unwrap();
        drop(write(dir.path(), options(1 << 20), &records(0, 2)));
        fs::write(seg(dir.path(), 1), contents).unwrap();
        let (got, report) = replay(dir.path());
        assert_eq!(got, records(0, 2));
        assert_eq!(report.corruptions.len(), 1);
        assert_eq!(report.corruptions[0].segment, 1);
        assert_eq!(report.corruptions[0].offset, 0);
        assert_eq!(report.corruptions[0].kind, kind);
        assert_eq!(file_len(&seg(dir.path(), 1)), 0);
        assert!(replay(dir.path()).1.corruptions.is_empty());
    }
}

#[test]
fn unknown_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(write(dir.path(), options(1 << 20), &records(0, 2)));
    let path = seg(dir.path(), 0);
    let mut bytes = fs::read(&path).unwrap();
    bytes[4] = 2;
    fs::write(&path, &bytes).unwrap();

    let mut reader = WalReader::open(dir.path()).unwrap();
    match reader.next() {
        Some(Err(Error::UnsupportedWalVersion {
            version: 2,
            supported: 1,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert!(reader.next().is_none());
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn intact_frames_that_do_not_decode_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    drop(write(dir.path(), options(1 << 20), &records(0, 2)));
    let path = seg(dir.path(), 0);
    append_bytes(&path, &frame(9, b"a record type from the future"));
    append_bytes(&path, &frame(2, &[0, 0, 1, 2, 3])); // samples record cut short
    append_bytes(&path, &frame(2, &[]));
    let (got, report) = replay(dir.path());
    assert_eq!(got, [records(0, 2), vec![Record::Samples(vec![])]].concat());
    assert_eq!(report.skipped_records, 2);
    assert!(report.corruptions.is_empty());
}

#[test]
fn sync_policies() {
    assert_eq!(
        SyncPolicy::from_interval(Duration::ZERO),
        SyncPolicy::EveryBatch
    );
    assert_eq!(
        SyncPolicy::from_interval(Duration::from_secs(1)),
        SyncPolicy::default()
    );

    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        sync: SyncPolicy::Interval(Duration::from_secs(10)),
        ..WalOptions::default()
    };
    let mut w = WalWriter::open(dir.path(), opts).unwrap();
    let start = Instant::now();
    assert!(
        !w.sync_if_due(start + Duration::from_secs(60)).unwrap(),
        "nothing to sync"
    );
    w.append(&records(0, 1)[0]).unwrap();
    assert!(!w.sync_if_due(start).unwrap(), "not due yet");
    let later = start + Duration::from_secs(11);
    assert!(w.sync_if_due(later).unwrap());
    assert!(
        !w.sync_if_due(later + Duration::from_secs(60)).unwrap(),
        "already synced"
    );
    w.append(&records(1, 1)[0]).unwrap();
    assert!(!w.sync_if_due(later + Duration::from_secs(5)).unwrap());
    assert!(w.sync_if_due(later + Duration::from_secs(10)).unwrap());
    w.sync().unwrap();

    let mut every = WalWriter::open(dir.path().join("every"), options(1 << 20)).unwrap();
    every.append(&records(0, 1)[0]).unwrap();
    assert!(
        !every
            .sync_if_due(start + Duration::from_secs(3600))
            .unwrap()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_segment_bytes_never_fail_the_replay(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        with_header in any::<bool>(),
        last in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = if with_header { b"SLWL\x01".to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&body);
        fs::write(seg(dir.path(), 0), &bytes).unwrap();
        if !last {
            drop(write(dir.path(), options(1 << 20), &records(0, 1)));
        }
        let items: Vec<_> = WalReader::open(dir.path()).unwrap().collect();
        match items.last() {
            // Only a header naming another version may refuse, and that ends the replay.
            Some(Err(e)) => prop_assert!(matches!(e, Error::UnsupportedWalVersion { .. }), "{e}"),
            // Otherwise the intact segment after the damaged one is always replayed.
            Some(Ok(record)) if !last => prop_assert_eq!(record, &records(0, 1)[0]),
            _ => prop_assert!(last),
        }
        prop_assert!(items.iter().rev().skip(1).all(Result::is_ok));
    }
}

// ---- following the WAL while it is written (WalTail) ----------------------------------

#[test]
fn a_tail_reads_what_is_appended_as_it_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = write(dir.path(), options(1 << 20), &records(0, 4));
    let mut tail = WalTail::open(dir.path(), None).unwrap();
    assert_eq!(tail.read(100).unwrap(), records(0, 4));
    assert!(tail.read(100).unwrap().is_empty(), "nothing new yet");
    for record in records(4, 3) {
        writer.append(&record).unwrap();
    }
    assert_eq!(tail.read(2).unwrap(), records(4, 2), "at most `max`");
    assert_eq!(tail.read(100).unwrap(), records(6, 1));

    // Reopened at its position, it goes on from there.
    let position = tail.position();
    writer.append(&records(7, 1)[0]).unwrap();
    let mut reopened = WalTail::open(dir.path(), Some(position)).unwrap();
    assert_eq!(reopened.read(100).unwrap(), records(7, 1));
}

#[test]
fn a_tail_follows_new_segments_and_skips_deleted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let _writer = write(dir.path(), options(300), &records(0, 40));
    let segments = list_segments(dir.path()).unwrap();
    assert!(segments.len() > 4, "{segments:?}");
    let mut tail = WalTail::open(dir.path(), None).unwrap();
    assert_eq!(
        tail.read(1000).unwrap(),
        records(0, 40),
        "in order, across segments"
    );
    assert_eq!(tail.skipped_segments(), 0);

    // A checkpoint deleted the first two segments before this tail read them.
    let mut late = WalTail::open(dir.path(), None).unwrap();
    for seq in &segments[..2] {
        fs::remove_file(segment_path(dir.path(), *seq)).unwrap();
    }
    let rest = late.read(1000).unwrap();
    assert_eq!(late.skipped_segments(), 2);
    assert_eq!(rest.last(), records(0, 40).last(), "the rest is read");
    assert!(rest.len() < 40);
}

#[test]
fn a_tail_waits_at_a_frame_still_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let writer = write(dir.path(), options(1 << 20), &records(0, 2));
    drop(writer);
    let last = *list_segments(dir.path()).unwrap().last().unwrap();
    let path = segment_path(dir.path(), last);
    // A frame header announcing 100 bytes, and 10 of them: the writer is mid-write.
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    let mut partial = 100_u32.to_le_bytes().to_vec();
    partial.extend([0; 5]);
    partial.extend([7; 10]);
    file.write_all(&partial).unwrap();
    let length = fs::metadata(&path).unwrap().len();

    let mut tail = WalTail::open(dir.path(), None).unwrap();
    assert_eq!(tail.read(100).unwrap(), records(0, 2));
    let at = tail.position();
    assert!(tail.read(100).unwrap().is_empty());
    assert_eq!(tail.position(), at, "it waits before the partial frame");
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        length,
        "and writes nothing"
    );

    // The writer never finishes it but starts a new segment (a restart): the tail moves on.
    let _writer = write(dir.path(), options(1 << 20), &records(2, 1));
    assert_eq!(tail.read(100).unwrap(), records(2, 1));
    assert_eq!(tail.skipped_segments(), 1);
}
