//! Pretraining schedules: stacked, gradual, and hybrid f.

use serde::{Deserialize, Serialize};

/// A pretraining schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Schedule {
    Stacked,
    Gradual,
    /// Fraction f of each new layer's budget spent stacked (see module docs).
    Hybrid(f64),
}

impl Schedule {
    /// (stacked epochs, gradual epochs) for a new layer's budget of n epochs.
    pub fn split(&self, n: usize) -> (usize, usize) {
        let f = match *self {
            Schedule::Stacked => 1.0,
            Schedule::Gradual => 0.0,
            Schedule::Hybrid(f) => f,
        };
        (
            (2.0 * n as f64 * f).round() as usize,
            (n as f64 * (1.0 - f)).round() as usize,
        )
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "stacked" => Ok(Schedule::Stacked),
            "gradual" => Ok(Schedule::Gradual),
            _ => {
                let f = s
                    .strip_prefix("hybrid:")
                    .and_then(|f| f.parse::<f64>().ok())
                    .ok_or_else(|| format!("schedule `{s}` should be stacked, gradual or hybrid:F"))?;
                if (0.0..=1.0).contains(&f) {
                    Ok(Schedule::Hybrid(f))
                } else {
                    Err(format!("hybrid fraction {f} is not in [0, 1]"))
                }
            }
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Stacked => write!(f, "stacked"),
            Schedule::Gradual => write!(f, "gradual"),
            Schedule::Hybrid(x) => write!(f, "hybrid:{x}"),
        }
    }
}

impl TryFrom<String> for Schedule {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.to_string()
    }
}
