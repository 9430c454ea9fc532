//! Small helpers over file content and names: byte search, digests,
//! modes in JSON, clean relative paths.

/// Searches a file for a byte string in fixed-size chunks (Mattermost's
/// binary is ~200 MB; it is never read whole into memory).
pub fn file_contains(f: &std::fs::File, needle: &[u8]) -> std::io::Result<bool> {
    use std::io::{Read, Seek};
    if needle.is_empty() {
        return Ok(true);
    }
    let finder = memchr::memmem::Finder::new(needle);
    let mut f = f;
    f.seek(std::io::SeekFrom::Start(0))?;
    // Bounded: a sparse terabyte planted at the path is not read forever.
    let mut f = f.take(crate::safe::limit::BINARY);
    let chunk = 1 << 20;
    let keep = needle.len() - 1;
    let mut buf = vec![0u8; chunk + keep];
    let mut have = 0;
    loop {
        let n = f.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(false);
        }
        have += n;
        if finder.find(&buf[..have]).is_some() {
            return Ok(true);
        }
        if have > keep {
            buf.copy_within(have - keep..have, 0);
            have = keep;
        }
    }
}

/// Lower-case hex, as md5sums, rpm and our records write digests.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The hex digest of everything `r` yields, read in fixed-size chunks.
pub fn hex_digest<D: md5::Digest>(mut r: impl std::io::Read) -> std::io::Result<String> {
    let mut h = D::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// File modes in JSON as the octal string people read (`"0755"`), the
/// one representation in every report and record.
pub mod octal {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{mode:04o}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let text = String::deserialize(d)?;
        u32::from_str_radix(&text, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| serde::de::Error::custom(format!("'{text}' is not an octal file mode")))
    }
}

/// A relative path with no empty, `.` or `..` component (so no leading
/// `/` either): what a manifest or a backup list may name below a base.
pub fn is_clean_relative(p: &str) -> bool {
    !p.is_empty() && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    #[test]
    fn digests_match_the_coreutils_tools() {
        assert_eq!(
            hex_digest::<md5::Md5>(&b"abc"[..]).unwrap(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hex_digest::<sha2::Sha256>(&b"abc"[..]).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }

    #[test]
    fn finds_bytes_across_chunk_boundaries() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("bin");
        let needle = b"github.com/mattermost/enterprise/";
        let mut data = vec![0u8; (1 << 20) - 10];
        data.extend_from_slice(needle);
        data.extend_from_slice(&[0u8; 100]);
        std::fs::write(&p, &data).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        assert!(file_contains(&f, needle).unwrap());
        assert!(!file_contains(&f, b"github.com/mattermost/enterprisX").unwrap());
    }
}
