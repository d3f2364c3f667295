//! Building upload bodies the way crash handlers send them.

use std::io::Write;

/// A multipart body under construction.
pub struct Multipart {
    boundary: String,
    body: Vec<u8>,
    mixed: bool,
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

impl Multipart {
    /// A `multipart/form-data` body.
    pub fn new() -> Multipart {
        Multipart {
            boundary: "----MaydayTestBoundary7MA4YWxkTrZu0gW".to_owned(),
            body: Vec::new(),
            mixed: false,
        }
    }

    /// A `multipart/mixed` body (older Breakpad senders).
    pub fn mixed() -> Multipart {
        Multipart {
            mixed: true,
            ..Multipart::new()
        }
    }

    /// Adds a text part.
    pub fn text(mut self, name: &str, value: &str) -> Multipart {
        write!(
            self.body,
            "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n",
            self.boundary
        )
        .unwrap();
        self
    }

    /// Adds a file part (`application/octet-stream`).
    pub fn file(self, name: &str, filename: &str, bytes: &[u8]) -> Multipart {
        self.file_as(name, filename, "application/octet-stream", bytes)
    }

    /// Adds a file part with `content_type`.
    pub fn file_as(
        mut self,
        name: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Multipart {
        write!(
            self.body,
            "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
             Content-Type: {content_type}\r\n\r\n",
            self.boundary
        )
        .unwrap();
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// Adds the minidump part.
    pub fn dump(self, bytes: &[u8]) -> Multipart {
        self.file(mayday_report::upload::MINIDUMP_FIELD, "upload.dmp", bytes)
    }

    /// The `Content-Type` header value and the finished body.
    pub fn finish(mut self) -> (String, Vec<u8>) {
        write!(self.body, "--{}--\r\n", self.boundary).unwrap();
        let kind = if self.mixed { "mixed" } else { "form-data" };
        (
            format!("multipart/{kind}; boundary={}", self.boundary),
            self.body,
        )
    }
}

/// Gzip-compresses `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}
