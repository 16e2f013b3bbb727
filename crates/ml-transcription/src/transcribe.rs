//! One transcription: its own whisper.cpp state over the shared model.

use whisper_rs::{FullParams, SamplingStrategy, WhisperError};

use crate::model::Transcriber;
use crate::{SAMPLE_RATE, language};

/// whisper.cpp refuses input under one second: shorter clips are padded
/// with silence to this many samples.
const MIN_SAMPLES: usize = SAMPLE_RATE as usize * 11 / 10;

/// What the producer asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranscribeOptions {
    /// Spoken language (ISO 639-1, regional forms accepted); `None` detects
    /// it on multilingual models and means English on English-only ones.
    pub language: Option<String>,
    /// Initial prompt (names, spelling, style) for the decoder.
    pub prompt: Option<String>,
}

/// A timed piece of the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Start, seconds from the beginning of the audio.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The words (whitespace-trimmed).
    pub text: String,
}

/// The result of one transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// All segments' text, joined by spaces.
    pub text: String,
    /// Timed segments in order.
    pub segments: Vec<Segment>,
    /// The language transcribed (given or detected).
    pub language: String,
}

/// Called with whisper.cpp's progress in percent (0–100).
pub type Progress = Box<dyn FnMut(i32) + Send + 'static>;

/// Why a transcription failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscribeError {
    /// The language option names no language whisper knows.
    #[error("unknown language {0:?}: expected an ISO 639-1 code such as \"en\" or \"de\"")]
    UnknownLanguage(String),
    /// A non-English language was asked of an English-only model.
    #[error(
        "the model {model} is English-only and cannot transcribe language {language:?}; configure a multilingual model"
    )]
    EnglishOnly {
        /// The model's name.
        model: String,
        /// The language asked for.
        language: String,
    },
    /// No audio samples at all.
    #[error("no audio samples to transcribe")]
    Empty,
    /// whisper.cpp failed.
    #[error("whisper.cpp failed: {0}")]
    Whisper(#[from] WhisperError),
}

impl Transcriber {
    /// One second of silence through the encoder and decoder, so that the
    /// first task does not pay for first-use set-up.
    ///
    /// # Errors
    /// As [`Transcriber::transcribe`].
    pub fn warm_up(&self) -> Result<(), TranscribeError> {
        let silence = vec![0.0; SAMPLE_RATE as usize];
        self.transcribe(&silence, &TranscribeOptions::default(), None)
            .map(drop)
    }

    /// Transcribes 16 kHz mono `samples`. Blocks for the whole run (seconds
    /// to minutes): call it on a blocking thread. `progress` hears whisper's
    /// percent.
    ///
    /// (No abort callback: whisper.cpp 1.8.3's, set through whisper-rs,
    /// makes the encoder fail on short inputs. A worker that must stop
    /// mid-run exits and lets the broker redeliver.)
    ///
    /// # Errors
    /// [`TranscribeError`]: bad language option, no samples, or a
    /// whisper.cpp failure.
    pub fn transcribe(
        &self,
        samples: &[f32],
        options: &TranscribeOptions,
        progress: Option<Progress>,
    ) -> Result<Transcript, TranscribeError> {
        if samples.is_empty() {
            return Err(TranscribeError::Empty);
        }
        let language = self.language_for(options.language.as_deref())?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(i32::try_from(self.config.threads).unwrap_or(1));
        params.set_language(Some(language.unwrap_or("auto")));
        params.set_no_context(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        // whisper-rs panics on NUL bytes in the prompt.
        let prompt = options.prompt.as_deref().map(|p| p.replace('\0', ""));
        if let Some(prompt) = prompt.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            params.set_initial_prompt(prompt);
        }
        if let Some(progress) = progress {
            params.set_progress_callback_safe(progress);
        }

        let padded;
        let input = if samples.len() < MIN_SAMPLES {
            padded = pad(samples);
            padded.as_slice()
        } else {
            samples
        };
        let duration = samples.len() as f64 / f64::from(SAMPLE_RATE);
        let mut state = self.context.create_state()?;
        state.full(params, input)?;

        let segments: Vec<Segment> = state
            .as_iter()
            .filter_map(|segment| {
                let text = segment.to_str_lossy().ok()?.trim().to_owned();
                // Timestamps are in 10 ms units; padding may push the last
                // one past the real end.
                let start = (segment.start_timestamp() as f64 / 100.0).min(duration);
                let end = (segment.end_timestamp() as f64 / 100.0).clamp(start, duration);
                (!text.is_empty()).then_some(Segment { start, end, text })
            })
            .collect();
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let language = match language {
            Some(code) => code.to_owned(),
            None => language::code(state.full_lang_id_from_state())
                .unwrap_or("unknown")
                .to_owned(),
        };
        Ok(Transcript {
            text,
            segments,
            language,
        })
    }

    /// The language to force, or `None` to detect.
    fn language_for(
        &self,
        requested: Option<&str>,
    ) -> Result<Option<&'static str>, TranscribeError> {
        let requested = requested
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "auto");
        let code = match requested {
            Some(name) => Some(
                language::normalise(name)
                    .ok_or_else(|| TranscribeError::UnknownLanguage(name.to_owned()))?,
            ),
            None => None,
        };
        if self.is_multilingual() {
            return Ok(code);
        }
        match code {
            None | Some("en") => Ok(Some("en")),
            Some(other) => Err(TranscribeError::EnglishOnly {
                model: self.model_name().to_owned(),
                language: other.to_owned(),
            }),
        }
    }
}

/// `samples` followed by silence up to [`MIN_SAMPLES`].
fn pad(samples: &[f32]) -> Vec<f32> {
    let mut padded = Vec::with_capacity(MIN_SAMPLES);
    padded.extend_from_slice(samples);
    padded.resize(MIN_SAMPLES, 0.0);
    padded
}
