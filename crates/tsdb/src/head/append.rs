//! Appending to the head: a transaction that checks each sample as it is
//! added, writes the batch to the WAL on commit, and only then makes it
//! visible.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use vigil_model::{AppendError, Appender, CommitError, Labels, SeriesRef, Value};

use super::series::{Admit, AdmitError, MmappedChunk};
use super::{Head, SeriesHandle};
use crate::error::TsdbError;
use crate::record::{self, SampleRecord, SeriesRecord};

/// One accepted, uncommitted sample.
#[derive(Debug)]
struct Pending {
    series: SeriesHandle,
    t: i64,
    v: f64,
    ooo: bool,
}

/// An append transaction on the [`Head`]. Commit with
/// [`Appender::commit`]; dropping it rolls the batch back.
#[derive(Debug)]
pub struct HeadAppender<'h> {
    head: &'h Head,
    pending: Vec<Pending>,
    /// Series this batch created; they are logged to the WAL on commit and
    /// on rollback alike, because they exist in the head either way.
    created: Vec<SeriesRecord>,
    done: bool,
}

impl<'h> HeadAppender<'h> {
    pub(super) fn new(head: &'h Head) -> Self {
        HeadAppender {
            head,
            pending: Vec::new(),
            created: Vec::new(),
            done: false,
        }
    }

    /// Number of samples in the batch.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when the batch has no samples.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn resolve(
        &mut self,
        sref: Option<SeriesRef>,
        labels: &Labels,
    ) -> Result<SeriesHandle, AppendError> {
        if let Some(SeriesRef(r)) = sref {
            if let Some(s) = self.head.series_by_ref(r) {
                // A reference from another storage could name another
                // series: trust it only when the labels agree.
                if labels.is_empty() || s.labels == *labels {
                    return Ok(s);
                }
            }
        }
        if labels.is_empty() {
            return Err(AppendError::EmptyLabels);
        }
        let (s, created) = self
            .head
            .get_or_create(labels)
            .map_err(AppendError::Limit)?;
        if created {
            self.created.push(SeriesRecord {
                sref: s.sref,
                labels: s.labels.clone(),
            });
        }
        Ok(s)
    }

    /// Writes the series this batch created to the WAL without samples.
    fn log_created_series(&mut self) -> Result<(), TsdbError> {
        if self.created.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        record::encode_series(&mut buf, &self.created);
        self.created.clear();
        self.head.wal.log(&[buf])?;
        Ok(())
    }

    fn clear_pending(&mut self) {
        for p in self.pending.drain(..) {
            p.series.state.lock().pending_t = i64::MIN;
        }
    }

    fn do_commit(&mut self) -> Result<(), TsdbError> {
        self.done = true;
        if self.pending.is_empty() {
            return self.log_created_series();
        }
        // 1. The WAL first: a batch is visible only once it is logged.
        let mut series_buf = Vec::new();
        if !self.created.is_empty() {
            record::encode_series(&mut series_buf, &self.created);
            self.created.clear();
        }
        let mut samples = Vec::with_capacity(self.pending.len());
        let mut ooo_samples = Vec::new();
        for p in &self.pending {
            let rec = SampleRecord {
                sref: p.series.sref,
                t: p.t,
                v: p.v,
            };
            if p.ooo {
                ooo_samples.push(rec);
            } else {
                samples.push(rec);
            }
        }
        let mut records: Vec<Vec<u8>> = Vec::with_capacity(3);
        if !series_buf.is_empty() {
            records.push(series_buf);
        }
        if !samples.is_empty() {
            let mut buf = Vec::new();
            record::encode_samples(&mut buf, &samples);
            records.push(buf);
        }
        if !ooo_samples.is_empty() {
            let mut buf = Vec::new();
            record::encode_samples_typed(&mut buf, &ooo_samples, record::TYPE_OOO_SAMPLES);
            records.push(buf);
        }
        let logged = self.head.wal.log(&records);
        if let Err(e) = logged {
            self.clear_pending();
            return Err(e.into());
        }
        // 2. Apply to the series.
        let head = self.head;
        let mut mint = i64::MAX;
        let mut maxt = i64::MIN;
        let mut appended = 0u64;
        let mut ooo_appended = 0u64;
        let mut result = Ok(());
        for p in self.pending.drain(..) {
            let sref = p.series.sref;
            let mut s = p.series.state.lock();
            s.pending_t = i64::MIN;
            if !p.ooo && p.t < head.min_valid_time() {
                // The head was persisted up to past this sample after it
                // was admitted (a flush): a block holds that range now, and
                // the head would drop the sample with it. Checked under
                // the series lock, which persistence takes to snapshot it.
                head.stats
                    .out_of_bounds_rejected
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if p.ooo {
                s.insert_ooo(p.t, p.v);
                ooo_appended += 1;
            } else if p.t > s.max_t || s.max_t == i64::MIN {
                if let Some((bytes, cmint, cmaxt)) = s.append_in_order(p.t, p.v, &head.cut) {
                    match head
                        .chunks
                        .write_chunk(sref, cmint, cmaxt, bytes[0], &bytes)
                    {
                        Ok(disk_ref) => {
                            s.push_mmapped(MmappedChunk {
                                disk_ref,
                                mint: cmint,
                                maxt: cmaxt,
                            });
                            head.stats.chunks_created.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            // The samples are safe in the WAL; the chunk is
                            // not readable until a restart replays them.
                            result = Err(TsdbError::from(e));
                        }
                    }
                }
                appended += 1;
            } else {
                // Another batch committed a newer sample meanwhile: this one
                // is now out of order. Prometheus drops it the same way.
                head.stats
                    .out_of_order_rejected
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            mint = mint.min(p.t);
            maxt = maxt.max(p.t);
        }
        head.stats
            .samples_appended
            .fetch_add(appended, Ordering::Relaxed);
        head.stats
            .ooo_samples_appended
            .fetch_add(ooo_appended, Ordering::Relaxed);
        if mint <= maxt {
            head.update_time_range(mint, maxt);
        }
        head.chunks.flush()?;
        result
    }
}

impl Appender for HeadAppender<'_> {
    fn append(
        &mut self,
        sref: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: Value,
    ) -> Result<SeriesRef, AppendError> {
        let Some(v) = v.as_f64() else {
            return Err(AppendError::UnsupportedValue);
        };
        let series = self.resolve(sref, labels)?;
        let out_ref = SeriesRef(series.sref);
        let mut s = series.state.lock();
        let bounds = self.head.bounds();
        let mut admit = s.admit(t, v, &bounds);
        if admit == Ok(Admit::OutOfOrder) {
            // An older sample may land on a timestamp the in-order chunks
            // already hold: the same value is a repeat, another a conflict.
            // So may a sample earlier in this batch.
            let pending = self
                .pending
                .iter()
                .rev()
                .find(|p| p.t == t && Arc::ptr_eq(&p.series, &series))
                .map(|p| p.v);
            if let Some(old) = pending.or_else(|| self.head.in_order_value_at(&s, t)) {
                admit = if old.to_bits() == v.to_bits() {
                    Ok(Admit::Duplicate)
                } else {
                    Err(AdmitError::Duplicate)
                };
            }
        }
        match admit {
            Ok(Admit::Duplicate) => Ok(out_ref),
            Ok(admit) => {
                let ooo = admit == Admit::OutOfOrder;
                if !ooo {
                    s.pending_t = t;
                    s.pending_v = v;
                }
                drop(s);
                self.pending.push(Pending { series, t, v, ooo });
                Ok(out_ref)
            }
            Err(e) => {
                let stats = &self.head.stats;
                Err(match e {
                    AdmitError::OutOfOrder => {
                        stats.out_of_order_rejected.fetch_add(1, Ordering::Relaxed);
                        AppendError::OutOfOrder
                    }
                    AdmitError::TooOld => {
                        stats.out_of_bounds_rejected.fetch_add(1, Ordering::Relaxed);
                        AppendError::TooOld
                    }
                    AdmitError::OutOfBounds => {
                        stats.out_of_bounds_rejected.fetch_add(1, Ordering::Relaxed);
                        AppendError::OutOfBounds
                    }
                    AdmitError::Duplicate => {
                        stats.duplicate_rejected.fetch_add(1, Ordering::Relaxed);
                        AppendError::DuplicateSampleForTimestamp
                    }
                })
            }
        }
    }

    fn commit(mut self) -> Result<(), CommitError> {
        self.do_commit().map_err(|e| CommitError::Storage(e.into()))
    }
}

impl Drop for HeadAppender<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.clear_pending();
        if let Err(e) = self.log_created_series() {
            tracing::warn!(error = %e, "could not log series of a rolled-back batch");
        }
    }
}
