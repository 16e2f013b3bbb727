//! Streaming mono resampling to 16 kHz with rubato's synchronous FFT
//! resampler: fed block by block while decoding, so a long file is never held
//! at its original rate, and with the resampler's start-up delay trimmed.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _};

use crate::decode::TARGET_RATE;
use crate::error::{DecodeError, SAMPLE_RATES};

/// Input frames per resampler call.
const CHUNK: usize = 1024;

/// Converts a mono stream at one rate to 16 kHz.
pub(crate) struct MonoResampler {
    from: u32,
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    out: Vec<f32>,
    to_trim: usize,
    input_total: u64,
}

impl MonoResampler {
    /// A resampler from `from` Hz; at 16 kHz samples pass through.
    ///
    /// # Errors
    /// [`DecodeError::SampleRate`] for a rate outside [`SAMPLE_RATES`].
    pub(crate) fn new(from: u32) -> Result<Self, DecodeError> {
        check_rate(from)?;
        let inner = if from == TARGET_RATE {
            None
        } else {
            Some(
                Fft::<f32>::new(
                    from as usize,
                    TARGET_RATE as usize,
                    CHUNK,
                    1,
                    FixedSync::Input,
                )
                .map_err(|e| error(from, &e))?,
            )
        };
        let to_trim = inner.as_ref().map_or(0, |r| r.output_delay());
        let scratch = vec![0.0; inner.as_ref().map_or(0, |r| r.output_frames_max())];
        Ok(Self {
            from,
            inner,
            pending: Vec::new(),
            scratch,
            out: Vec::new(),
            to_trim,
            input_total: 0,
        })
    }

    /// The input rate.
    pub(crate) fn rate(&self) -> u32 {
        self.from
    }

    /// Feeds mono samples at the input rate.
    pub(crate) fn push(&mut self, samples: &[f32]) -> Result<(), DecodeError> {
        self.input_total += samples.len() as u64;
        if self.inner.is_none() {
            self.out.extend_from_slice(samples);
            return Ok(());
        }
        self.pending.extend_from_slice(samples);
        let mut consumed = 0;
        while self.pending.len() - consumed >= self.next_input() {
            let n = self.next_input();
            consumed += self.process(consumed, n, None)?;
        }
        self.pending.drain(..consumed);
        Ok(())
    }

    fn next_input(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.input_frames_next())
    }

    /// Runs one resampler call on `pending[offset..offset + len]` (a
    /// shorter `partial` tail is padded with silence) and appends the output.
    fn process(
        &mut self,
        offset: usize,
        len: usize,
        partial: Option<usize>,
    ) -> Result<usize, DecodeError> {
        let from = self.from;
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let need = inner.input_frames_next();
        // The input buffer must hold a full chunk even for a partial call.
        let mut padded;
        let input: &[f32] = if len >= need {
            &self.pending[offset..offset + need]
        } else {
            padded = vec![0.0; need];
            padded[..len].copy_from_slice(&self.pending[offset..offset + len]);
            &padded
        };
        let input = InterleavedSlice::new(input, 1, need).map_err(|e| error(from, &e))?;
        let frames_out = self.scratch.len();
        let mut output = InterleavedSlice::new_mut(&mut self.scratch, 1, frames_out)
            .map_err(|e| error(from, &e))?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (used, produced) = inner
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| error(from, &e))?;
        let skip = self.to_trim.min(produced);
        self.to_trim -= skip;
        self.out.extend_from_slice(&self.scratch[skip..produced]);
        Ok(used.min(len))
    }

    /// Flushes the tail and returns all 16 kHz samples: exactly
    /// `ceil(input * 16000 / rate)` of them.
    pub(crate) fn finish(mut self) -> Result<Vec<f32>, DecodeError> {
        if self.inner.is_none() {
            return Ok(self.out);
        }
        let expected =
            (self.input_total * u64::from(TARGET_RATE)).div_ceil(u64::from(self.from)) as usize;
        let tail = self.pending.len();
        if tail > 0 {
            self.process(0, tail, Some(tail))?;
        }
        self.pending.clear();
        // Pump silence until the delayed end of the signal is out.
        let mut guard = 0;
        while self.out.len() < expected && guard < 64 {
            self.process(0, 0, Some(0))?;
            guard += 1;
        }
        self.out.truncate(expected);
        Ok(self.out)
    }
}

/// Refuses a sample rate outside [`SAMPLE_RATES`].
pub(crate) fn check_rate(rate: u32) -> Result<(), DecodeError> {
    if SAMPLE_RATES.contains(&rate) {
        Ok(())
    } else {
        Err(DecodeError::SampleRate { rate })
    }
}

fn error(from: u32, e: &dyn std::fmt::Display) -> DecodeError {
    DecodeError::Resample {
        from,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::f32::consts::TAU;

    use super::*;

    fn sine(rate: u32, hz: f32, secs: f32) -> Vec<f32> {
        let n = (rate as f32 * secs) as usize;
        (0..n)
            .map(|i| (TAU * hz * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn a_tone_keeps_its_length_phase_and_level() -> Result<(), DecodeError> {
        for rate in [8_000, 22_050, 44_100, 48_000] {
            let input = sine(rate, 440.0, 1.5);
            let mut resampler = MonoResampler::new(rate)?;
            // Uneven blocks, as decoders deliver them.
            for block in input.chunks(777) {
                resampler.push(block)?;
            }
            let out = resampler.finish()?;
            assert_eq!(out.len(), 24_000, "{rate} Hz");
            let want = sine(TARGET_RATE, 440.0, 1.5);
            // Away from the edges, the output is the same tone in phase.
            let err = out[1000..23_000]
                .iter()
                .zip(&want[1000..23_000])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 0.05, "{rate} Hz: max error {err}");
        }
        Ok(())
    }

    #[test]
    fn sixteen_khz_passes_through() -> Result<(), DecodeError> {
        let input = sine(TARGET_RATE, 300.0, 0.1);
        let mut resampler = MonoResampler::new(TARGET_RATE)?;
        resampler.push(&input)?;
        assert_eq!(resampler.finish()?, input);
        Ok(())
    }
}
