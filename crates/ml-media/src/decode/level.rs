//! Signal level: [`rms_dbfs`] for silence detection and the loudness
//! normalisation applied when a task asks for it.

/// RMS level the normaliser aims for, in dBFS (speech at a comfortable level).
pub const NORMALIZE_TARGET_DBFS: f32 = -20.0;
/// Most gain the normaliser applies, in dB, so faint noise is not blown up.
pub const NORMALIZE_MAX_GAIN_DB: f32 = 30.0;
/// Highest peak the normaliser allows, in dBFS (no clipping).
pub const NORMALIZE_PEAK_CEILING_DBFS: f32 = -1.0;
/// Below this RMS the signal counts as digital silence and is left as is.
const SILENCE_FLOOR_DBFS: f32 = -90.0;

/// Root-mean-square level of `samples` in dBFS (0 dBFS = a full-scale
/// square wave; a full-scale sine is about -3 dBFS). Empty or all-zero
/// input gives `f32::NEG_INFINITY`.
pub fn rms_dbfs(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return f32::NEG_INFINITY;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms == 0.0 {
        f32::NEG_INFINITY
    } else {
        (20.0 * rms.log10()) as f32
    }
}

fn db_to_gain(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// RMS-based loudness normalisation, in place; returns the gain applied (dB).
///
/// The gain brings the RMS level to [`NORMALIZE_TARGET_DBFS`], but is
/// limited so that the peak stays at or below [`NORMALIZE_PEAK_CEILING_DBFS`]
/// and never exceeds [`NORMALIZE_MAX_GAIN_DB`]; digital silence is untouched.
/// Loud input is attenuated the same way. RMS rather than peak, because a
/// single click would otherwise decide the gain of a whole recording.
pub(crate) fn normalize(samples: &mut [f32]) -> f32 {
    let rms = rms_dbfs(samples);
    if rms <= SILENCE_FLOOR_DBFS {
        return 0.0;
    }
    let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let peak_db = 20.0 * peak.log10();
    let gain_db = (NORMALIZE_TARGET_DBFS - rms)
        .min(NORMALIZE_PEAK_CEILING_DBFS - peak_db)
        .min(NORMALIZE_MAX_GAIN_DB);
    let gain = db_to_gain(gain_db);
    for s in samples.iter_mut() {
        *s *= gain;
    }
    gain_db
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_of_known_signals() {
        assert_eq!(rms_dbfs(&[]), f32::NEG_INFINITY);
        assert_eq!(rms_dbfs(&[0.0; 100]), f32::NEG_INFINITY);
        assert!((rms_dbfs(&[1.0, -1.0, 1.0, -1.0])).abs() < 1e-6);
        assert!((rms_dbfs(&[0.1; 10]) + 20.0).abs() < 1e-4);
        let sine: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.1).sin()).collect();
        assert!((rms_dbfs(&sine) + 3.01).abs() < 0.05);
    }

    #[test]
    fn quiet_speech_is_raised_loud_is_lowered_silence_untouched() {
        let mut quiet: Vec<f32> = (0..1600).map(|i| (i as f32 * 0.05).sin() * 0.01).collect();
        let gain = normalize(&mut quiet);
        assert!(gain > 20.0, "{gain}");
        assert!((rms_dbfs(&quiet) - NORMALIZE_TARGET_DBFS).abs() < 0.1);

        // A click limits the gain: the peak stays under the ceiling.
        let mut clicky = vec![0.001f32; 1600];
        clicky[10] = 0.5;
        normalize(&mut clicky);
        let peak = clicky.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(20.0 * peak.log10() <= NORMALIZE_PEAK_CEILING_DBFS + 1e-3);

        let mut loud: Vec<f32> = (0..1600).map(|i| (i as f32 * 0.05).sin() * 0.99).collect();
        assert!(normalize(&mut loud) < 0.0);

        let mut silence = vec![0.0f32; 100];
        assert_eq!(normalize(&mut silence), 0.0);
    }
}
