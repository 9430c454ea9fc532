//! Upgrade paths, from the manifest's data: downgrades, required stops,
//! the previous-ESR rule and database minimums.

use serde::Serialize;
use upkeep_engine::release::ReleasePolicy;
use upkeep_pkg::version::ProductVersion;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Refusal {
    pub rule: String,
    pub message: String,
}

fn v(s: &str) -> ProductVersion {
    ProductVersion::parse(s).unwrap_or(ProductVersion {
        parts: vec![0],
        raw: s.to_string(),
    })
}

/// The required stops that apply between `from` and `to`.
pub fn stops_between(p: &ReleasePolicy, from: &ProductVersion, to: &ProductVersion) -> Vec<String> {
    p.required_stops
        .iter()
        .filter(|s| *from < v(&s.from_below) && *to >= v(&s.to_at_least))
        .map(|s| s.via.clone())
        .collect()
}

/// Checks one step of a chain. `Err` is the refusal; `Ok` carries warnings.
pub fn check_step(
    p: &ReleasePolicy,
    product: &str,
    from: &ProductVersion,
    to: &ProductVersion,
) -> Result<Vec<String>, Refusal> {
    if to < from && p.refuse_downgrade {
        return Err(Refusal {
            rule: "downgrade".into(),
            message: format!(
                "{product} {} is older than the installed {}: a database migrated by a newer version refuses to start on an older one. Restore a backup instead (upkeep-upgrade rollback {product})",
                to.raw, from.raw
            ),
        });
    }
    if to == from {
        return Err(Refusal {
            rule: "same-version".into(),
            message: format!("{product} {} is already installed", from.raw),
        });
    }
    if let Some(via) = stops_between(p, from, to).first() {
        return Err(Refusal {
            rule: "required-stop".into(),
            message: format!(
                "{product} {} -> {} must pass through {via}.x first: add a {via}.x archive to the chain (upkeep-upgrade apply {product} {via}.x-ARCHIVE {}-ARCHIVE)",
                from.raw, to.raw, to.raw
            ),
        });
    }
    let mut warnings = Vec::new();
    let prev_esr = p.esr.iter().map(|e| v(e)).filter(|e| e < to).max();
    if let Some(esr) = prev_esr {
        if *from < esr {
            let msg = format!(
                "{product} {} -> {}: upgrades are supported from the previous Extended Support Release ({}); consider stopping there first",
                from.raw,
                to.raw,
                esr.numeric()
            );
            if p.esr_refuse {
                return Err(Refusal {
                    rule: "previous-esr".into(),
                    message: msg,
                });
            }
            warnings.push(msg);
        }
    }
    Ok(warnings)
}

/// The database minimum for a target version: (database, minimum).
pub fn database_minimum(p: &ReleasePolicy, to: &ProductVersion) -> Option<(String, String)> {
    p.database_minimum
        .iter()
        .filter(|d| *to >= v(&d.from))
        .max_by(|a, b| v(&a.minimum).cmp(&v(&b.minimum)))
        .map(|d| (d.database.clone(), d.minimum.clone()))
}

pub fn check_database(
    p: &ReleasePolicy,
    product: &str,
    to: &ProductVersion,
    have: &ProductVersion,
) -> Result<(), Refusal> {
    if let Some((db, min)) = database_minimum(p, to) {
        if *have < v(&min) {
            return Err(Refusal {
                rule: "database-minimum".into(),
                message: format!(
                    "{product} {} needs {db} {min} or newer; the database is {}. Upgrade {db} first",
                    to.raw, have.raw
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use upkeep_engine::release::{DatabaseMinimum, RequiredStop};

    fn pol() -> ReleasePolicy {
        ReleasePolicy {
            refuse_downgrade: true,
            required_stops: vec![RequiredStop {
                from_below: "5.37".into(),
                to_at_least: "7.0".into(),
                via: "5.37".into(),
            }],
            esr: vec!["9.5".into(), "9.11".into()],
            esr_refuse: false,
            database_minimum: vec![
                DatabaseMinimum {
                    from: "10.6".into(),
                    database: "postgresql".into(),
                    minimum: "13".into(),
                },
                DatabaseMinimum {
                    from: "11.0".into(),
                    database: "postgresql".into(),
                    minimum: "14".into(),
                },
            ],
        }
    }

    fn pv(s: &str) -> ProductVersion {
        ProductVersion::parse(s).unwrap()
    }

    #[test]
    fn rules() {
        let p = pol();
        assert_eq!(
            check_step(&p, "x", &pv("9.5.1"), &pv("9.4.0"))
                .unwrap_err()
                .rule,
            "downgrade"
        );
        assert_eq!(
            check_step(&p, "x", &pv("5.20.0"), &pv("7.1.0"))
                .unwrap_err()
                .rule,
            "required-stop"
        );
        assert!(check_step(&p, "x", &pv("5.20.0"), &pv("5.37.2")).is_ok());
        assert!(check_step(&p, "x", &pv("5.37.2"), &pv("7.1.0")).is_ok());
        assert!(check_step(&p, "x", &pv("5.20.0"), &pv("6.0.0")).is_ok());
        assert_eq!(
            check_step(&p, "x", &pv("9.0.0"), &pv("9.11.0"))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(database_minimum(&p, &pv("11.1.0")).unwrap().1, "14");
        assert_eq!(database_minimum(&p, &pv("10.7.0")).unwrap().1, "13");
        assert!(database_minimum(&p, &pv("10.5.0")).is_none());
        assert!(check_database(&p, "x", &pv("11.0.0"), &pv("13.4")).is_err());
        assert!(check_database(&p, "x", &pv("11.0.0"), &pv("15.2")).is_ok());
    }
}
