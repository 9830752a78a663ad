//! The instruction sets aekit's hand-vectorised loops are compiled for, the
//! best the CPU offers, and the `AEKIT_ISA` switch (`avx512`, `avx2` or
//! `portable`) that holds a process to a lower one, so that every path can
//! be tested and timed on any machine.

use std::sync::OnceLock;

/// Which instruction set a loop runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    Portable,
    Avx2Fma,
    Avx512,
}

impl Isa {
    /// The best the CPU offers.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2Fma;
            }
        }
        Isa::Portable
    }

    /// What this process uses: the best the CPU offers, at most what
    /// `AEKIT_ISA` names (read once; a name it does not know is ignored
    /// with a note on stderr).
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let best = Isa::detect();
            match std::env::var("AEKIT_ISA") {
                Ok(s) => match Isa::parse(&s) {
                    Some(want) => want.min(best),
                    None => {
                        eprintln!("note: AEKIT_ISA={s} is not avx512, avx2 or portable; using {best}");
                        best
                    }
                },
                Err(_) => best,
            }
        })
    }

    /// `avx512`, `avx2` or `portable`.
    pub fn parse(s: &str) -> Option<Isa> {
        match s.trim() {
            "avx512" => Some(Isa::Avx512),
            "avx2" => Some(Isa::Avx2Fma),
            "portable" => Some(Isa::Portable),
            _ => None,
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2Fma => "avx2",
            Isa::Portable => "portable",
        })
    }
}
