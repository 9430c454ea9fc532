//! Processor architectures as package managers name them, and as an ELF
//! header says them: a binary's `e_machine`, dpkg's `Architecture:` and
//! rpm's `%{ARCH}` brought to one name (Debian's, which is also Go's
//! `GOARCH` for the common ones: `amd64`, `arm64`).

/// Where `e_machine` sits in an ELF header, and how much of the header
/// [`elf_machine`] needs.
pub const ELF_HEAD: usize = 20;

/// `e_machine` of an ELF header (byte order from `EI_DATA`), or why the
/// bytes are not one.
pub fn elf_machine(head: &[u8]) -> Result<u16, &'static str> {
    if head.len() < ELF_HEAD || &head[..4] != b"\x7fELF" {
        return Err("is not an ELF binary");
    }
    let m = [head[18], head[19]];
    Ok(match head[5] {
        1 => u16::from_le_bytes(m),
        2 => u16::from_be_bytes(m),
        _ => return Err("has an unknown ELF byte order"),
    })
}

/// The architecture an ELF header is built for, by its Debian name, or why
/// it cannot be told.
pub fn elf_arch(head: &[u8]) -> Result<String, String> {
    let m = elf_machine(head).map_err(str::to_string)?;
    let class64 = head[4] == 2;
    let little = head[5] == 1;
    Ok(match (m, class64, little) {
        (62, true, _) => "amd64".into(),
        (62, false, _) => "x32".into(),
        (183, _, _) => "arm64".into(),
        (3, _, _) => "i386".into(),
        (40, _, _) => "arm".into(),
        (243, true, _) => "riscv64".into(),
        (21, _, true) => "ppc64el".into(),
        (21, _, false) => "ppc64".into(),
        (22, _, _) => "s390x".into(),
        (258, _, _) => "loong64".into(),
        (n, _, _) => format!("ELF machine {n}"),
    })
}

/// The ELF machine number of this host (`e_machine`), if known.
pub fn host_elf_machine() -> Option<u16> {
    Some(match std::env::consts::ARCH {
        "x86_64" => 62,
        "aarch64" => 183,
        "x86" => 3,
        "arm" => 40,
        "riscv64" => 243,
        "powerpc64" => 21,
        "s390x" => 22,
        "loongarch64" => 258,
        _ => return None,
    })
}

/// How people name an ELF machine in messages.
pub fn elf_machine_name(m: u16) -> String {
    match m {
        62 => "x86-64".into(),
        183 => "arm64".into(),
        3 => "i386".into(),
        40 => "arm".into(),
        243 => "riscv".into(),
        21 => "ppc64".into(),
        22 => "s390x".into(),
        258 => "loongarch".into(),
        n => format!("machine {n}"),
    }
}

/// A package's architecture (dpkg's or rpm's name) by its Debian name;
/// `None` for packages of no one architecture (`all`, `noarch`) or none given.
pub fn package_arch(name: &str) -> Option<String> {
    let n = name.trim();
    Some(
        match n {
            "" | "all" | "noarch" | "(none)" => return None,
            "x86_64" | "amd64" => "amd64",
            "aarch64" | "arm64" => "arm64",
            "i386" | "i486" | "i586" | "i686" => "i386",
            "armhf" | "armel" | "armv7hl" | "armv7l" | "armhfp" => "arm",
            "ppc64le" | "ppc64el" => "ppc64el",
            "loongarch64" | "loong64" => "loong64",
            other => other,
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, machine: u16) -> Vec<u8> {
        let mut h = vec![0x7f, b'E', b'L', b'F', class, data, 1];
        h.resize(18, 0);
        let m = if data == 2 {
            machine.to_be_bytes()
        } else {
            machine.to_le_bytes()
        };
        h.extend_from_slice(&m);
        h
    }

    #[test]
    fn elf_headers_name_their_architecture() {
        assert_eq!(elf_arch(&header(2, 1, 62)).as_deref(), Ok("amd64"));
        assert_eq!(elf_arch(&header(2, 1, 183)).as_deref(), Ok("arm64"));
        assert_eq!(elf_arch(&header(2, 2, 21)).as_deref(), Ok("ppc64"));
        assert_eq!(elf_arch(&header(2, 1, 21)).as_deref(), Ok("ppc64el"));
        assert_eq!(
            elf_arch(&header(2, 1, 9999)).as_deref(),
            Ok("ELF machine 9999")
        );
        assert_eq!(elf_machine(&header(2, 1, 183)), Ok(183));
        assert!(elf_machine(b"#!/bin/sh\n").is_err());
        assert!(elf_arch(&header(2, 1, 62)[..19]).is_err(), "cut short");
        assert!(elf_arch(&header(2, 3, 62)).is_err(), "unknown byte order");
    }

    #[test]
    fn package_architectures_come_to_one_name() {
        assert_eq!(package_arch("x86_64").as_deref(), Some("amd64"));
        assert_eq!(package_arch("aarch64").as_deref(), Some("arm64"));
        assert_eq!(package_arch("arm64").as_deref(), Some("arm64"));
        assert_eq!(package_arch("all"), None);
        assert_eq!(package_arch("noarch"), None);
    }
}
