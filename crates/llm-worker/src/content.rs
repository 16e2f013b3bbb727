//! What is summarised (content types) and how (styles).

/// The kind of content, from `contentType`/`content_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// A web article or blog post.
    Article,
    /// A video or audio transcript.
    Transcript,
    /// A video's transcript, caption and hashtags together.
    VideoCombined,
    /// A tweet / X post.
    Tweet,
    /// A Reddit post.
    Reddit,
    /// A social media caption.
    Caption,
    /// A comment.
    Comment,
    /// Anything else.
    Text,
}

impl ContentType {
    /// Parses a content type name; unknown names are plain [`Self::Text`].
    pub fn parse(name: &str) -> Self {
        match name.trim().to_ascii_lowercase().as_str() {
            "article" | "webpage" | "web" | "blog" | "post" => Self::Article,
            "transcript" | "video" | "audio" | "youtube" => Self::Transcript,
            "video_combined" | "videocombined" | "video-combined" | "combined" => {
                Self::VideoCombined
            }
            "tweet" | "twitter" | "x" => Self::Tweet,
            "reddit" => Self::Reddit,
            "caption" | "tiktok" | "instagram" => Self::Caption,
            "comment" => Self::Comment,
            _ => Self::Text,
        }
    }

    /// The name recorded in `result_data.metadata.content_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Article => "article",
            Self::Transcript => "transcript",
            Self::VideoCombined => "video_combined",
            Self::Tweet => "tweet",
            Self::Reddit => "reddit",
            Self::Caption => "caption",
            Self::Comment => "comment",
            Self::Text => "text",
        }
    }

    /// How the prompt names the content.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Article => "article",
            Self::Transcript => "video transcript",
            Self::VideoCombined => "short video (its caption, transcript and hashtags)",
            Self::Tweet => "social media post",
            Self::Reddit => "Reddit post",
            Self::Caption => "social media caption",
            Self::Comment => "comment",
            Self::Text => "text",
        }
    }

    /// Fewest words worth summarising. Short-form content is short by
    /// nature: a 12-word caption is valid, a single word is not.
    pub fn min_words(self) -> usize {
        match self {
            Self::Article => 20,
            _ => 3,
        }
    }
}

/// The summary's form, from `options.style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Two or three sentences.
    Brief,
    /// A paragraph or two covering the main points.
    Detailed,
    /// Bullet points.
    Bullets,
}

impl Style {
    /// Parses a style name.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "brief" | "short" => Some(Self::Brief),
            "detailed" | "long" => Some(Self::Detailed),
            "bullets" | "bullet" | "bullet_points" | "bullet-points" => Some(Self::Bullets),
            _ => None,
        }
    }

    /// The name recorded in `result_data.metadata.style`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Brief => "brief",
            Self::Detailed => "detailed",
            Self::Bullets => "bullets",
        }
    }
}
